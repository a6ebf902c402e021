//! `/ui`: the overview — what runs and waits now, what finished in the last
//! day (a chart per quarter hour), which hosts answer, which alerts fire,
//! which checks and backups need a look, what fires next.

use std::sync::Arc;

use hyperfleet_core::app::{ChartBar, OVERVIEW_WINDOW, Overview};
use maud::{Markup, html};
use poem::{Request, Response, handler, http::StatusCode, web::Data};

use super::{
    events::Feed,
    health::check_states,
    hosts::{age, host_status},
    layout::{error_page, html_response, page, time},
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

/// The last day's finished operations, a stacked bar per quarter hour
/// (succeeded, failed, cancelled), as inline SVG: no script, styled by class.
fn chart(bars: &[ChartBar]) -> Markup {
    const W: usize = 6;
    const H: f64 = 80.0;
    let peak = bars.iter().map(ChartBar::total).max().unwrap_or(0).max(1) as f64;
    let width = bars.len() * W;
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (width) " " (H) } role="img" aria-label="operations finished per 15 minutes, last 24 h" {
                @for (i, b) in bars.iter().enumerate() {
                    @if b.total() > 0 {
                        g {
                            title { (time(b.start)) ": " (b.succeeded) " succeeded, " (b.failed) " failed, " (b.cancelled) " cancelled" }
                            @let mut top = H;
                            @for (class, n) in [("succeeded", b.succeeded), ("failed", b.failed), ("cancelled", b.cancelled)] {
                                @if n > 0 {
                                    @let h = (n as f64 / peak * H).max(1.0);
                                    @let y = { top -= h; top };
                                    rect class=(class) x=(i * W) y=(format!("{y:.1}")) width=(W - 1) height=(format!("{h:.1}")) {}
                                }
                            }
                        }
                    }
                }
            }
            figcaption {
                "Finished per 15 min, last 24 h (peak " (peak as i64) "): "
                span.succeeded { "succeeded" } ", " span.failed { "failed" } ", " span.cancelled { "cancelled" }
            }
        }
    }
}

fn render(o: &Overview) -> Markup {
    let hours = OVERVIEW_WINDOW.as_secs() / 3600;
    let online = o.hosts_online();
    html! {
        section {
            h2 { "Now" }
            div.tiles {
                (tile("queued", o.queued, Some("/ui/operations?status=queued"), "queued"))
                (tile("running", o.running, Some("/ui/operations?status=running"), "running"))
                (tile("retrying", o.retrying, Some("/ui/operations?status=retrying"), "retrying"))
                @let oldest = o.oldest_runnable.map_or_else(|| "—".to_owned(), |t| age(o.now, t).replace(" ago", ""));
                (tile("oldest runnable waits", oldest, None, "oldest-runnable"))
            }
        }
        section {
            h2 { "Last " (hours) " h" }
            div.tiles {
                (tile("failed", o.failed, Some("/ui/operations?status=failed"), "failed"))
                (tile("succeeded", o.succeeded, Some("/ui/operations?status=succeeded"), "succeeded"))
            }
            (chart(&o.chart))
        }
        section {
            h2 { "Hosts" }
            div.tiles {
                (tile("online", online, Some("/ui/hosts"), "hosts-online"))
                (tile("offline", o.hosts.len() - online, Some("/ui/hosts"), "hosts-offline"))
            }
            @if !o.hosts.is_empty() {
                ul.hosts {
                    @for h in &o.hosts {
                        li {
                            a href={ "/ui/hosts/" (h.name) } { (h.name) } " "
                            span class={ "hoststatus " (host_status(h, o.now)) } { (host_status(h, o.now)) }
                            " · heartbeat " (age(o.now, h.last_heartbeat))
                        }
                    }
                }
            }
        }
        section {
            h2 { "Firing alerts" }
            div.tiles {
                @for (severity, n) in &o.firing {
                    @let href = format!("/ui/alerts?status=firing&severity={}", severity.as_str());
                    (tile(severity.as_str(), n, Some(&href), &format!("alerts-{}", severity.as_str())))
                }
            }
        }
        section #checks {
            h2 { "Health checks in warn or error" }
            @if o.checks.is_empty() { p.empty { "All checks are ok." } } @else { (check_states(&o.checks)) }
        }
        section #next-fires {
            h2 { "Next schedule fires" }
            @if o.next_fires.is_empty() {
                p.empty { "No enabled schedule." }
            } @else {
                ul {
                    @for s in &o.next_fires {
                        li {
                            a href="/ui/schedules" { (s.name) } " (" (s.kind.as_str()) ") — "
                            @if let Some(t) = s.next_fire_at { (time(t)) }
                        }
                    }
                }
            }
        }
        section #backups-attention {
            h2 { "Backups to look at" }
            @if o.backups.is_empty() {
                p.empty { "Every backup's last verification is ok and recent." }
            } @else {
                ul {
                    @for b in &o.backups {
                        li {
                            span class={ "verification " (b.verification.as_str()) } { (b.verification.as_str()) } " "
                            a href={ "/ui/backups/" (b.record.id) } { (b.record.vm) " on " (b.record.host) }
                            " — " (time(b.record.created_at))
                        }
                    }
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
