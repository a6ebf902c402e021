//! `/ui`: the overview — what runs and waits now, what finished in the last
//! day, which hosts answer, which alerts fire.

use std::sync::Arc;

use hyperfleet_core::app::{OVERVIEW_WINDOW, Overview};
use maud::{Markup, html};
use poem::{Request, Response, handler, http::StatusCode, web::Data};

use super::{
    events::Feed,
    layout::{error_page, html_response, page},
    session,
};
use crate::AppState;

fn tile(label: &str, value: impl std::fmt::Display, href: Option<&str>, id: &str) -> Markup {
    html! {
        div.tile id=(id) {
            span.value { (value) }
            @if let Some(href) = href { a.label href=(href) { (label) } } @else { span.label { (label) } }
        }
    }
}

fn render(o: &Overview) -> Markup {
    let hours = OVERVIEW_WINDOW.as_secs() / 3600;
    html! {
        section {
            h2 { "Now" }
            div.tiles {
                (tile("queued", o.queued, Some("/ui/operations?status=queued"), "queued"))
                (tile("running", o.running, Some("/ui/operations?status=running"), "running"))
                (tile("retrying", o.retrying, Some("/ui/operations?status=retrying"), "retrying"))
            }
        }
        section {
            h2 { "Last " (hours) " h" }
            div.tiles {
                (tile("failed", o.failed, Some("/ui/operations?status=failed"), "failed"))
                (tile("succeeded", o.succeeded, Some("/ui/operations?status=succeeded"), "succeeded"))
            }
        }
        section {
            h2 { "Hosts" }
            div.tiles {
                (tile("online", o.hosts_online, None, "hosts-online"))
                (tile("offline", o.hosts_offline, None, "hosts-offline"))
            }
        }
        section {
            h2 { "Firing alerts" }
            div.tiles {
                @for (severity, n) in &o.firing {
                    (tile(severity.as_str(), n, None, &format!("alerts-{}", severity.as_str())))
                }
            }
        }
    }
}

#[handler]
pub async fn page_handler(req: &Request, Data(state): Data<&AppState>, Data(feed): Data<&Arc<Feed>>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    // Taken before reading: the page has seen every change up to here.
    let position = feed.position();
    match state.app.overview().await {
        Ok(o) => {
            let body = html! { div #overview data-live="overview" data-feed=(position) { (render(&o)) } };
            html_response(StatusCode::OK, page("Overview", Some(&who), body))
        }
        Err(e) => error_page(Some(&who), e),
    }
}

/// `GET /ui/fragments/overview`: the overview's body alone, for a live page to swap in.
#[handler]
pub async fn fragment(req: &Request, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    match state.app.overview().await {
        Ok(o) => html_response(StatusCode::OK, render(&o)),
        Err(e) => error_page(Some(&who), e),
    }
}
