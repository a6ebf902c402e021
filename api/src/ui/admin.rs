//! `/ui/admin` (admin role only, like the API's admin endpoints): tokens —
//! create shows the secret on the answer page once, revoke asks first —, the
//! audit log with "verify chain", and the alert channels with their
//! secrets redacted (a webhook's path, often the credential, is hidden).

use hyperfleet_core::{
    Error, Timestamp, TokenId,
    app::Actor,
    auth::{Role, parse_token_lifetime},
    store::{AuditEvent, ChainCheck, TokenRecord},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form, Path, Query},
};

use super::{
    forms::{ActionForm, given, post},
    layout::{csrf_field, error_page, html_response, message_page, page, time},
    session::{self, UiSession},
};
use crate::{AppState, request_id::current_request_id};

/// Audit events shown (the API's `audit_list` reads further back).
const AUDIT_SHOWN: u32 = 100;

/// The session, if it is an admin's; else the answer to give.
async fn admin(req: &Request, state: &AppState) -> Result<UiSession, Response> {
    let who = session::current(req, state).await?;
    if !who.can(Role::Admin) {
        let message =
            format!("Token `{}` has role {}; this page needs admin.", who.principal.name, who.principal.role.as_str());
        return Err(message_page(StatusCode::FORBIDDEN, Some(&who), &message));
    }
    Ok(who)
}

fn token_state(t: &TokenRecord, now: Timestamp) -> &'static str {
    match (t.revoked_at, t.expires_at) {
        (Some(_), _) => "revoked",
        (None, Some(e)) if e <= now => "expired",
        _ => "active",
    }
}

fn tokens(who: &UiSession, list: &[TokenRecord], now: Timestamp) -> Markup {
    html! {
        form.filters method="post" action="/ui/admin/tokens" {
            (csrf_field(who))
            label { "name " input type="text" name="name" required pattern="[A-Za-z0-9._-]{1,64}"; }
            label { "role " select name="role" { @for r in Role::ALL { option value=(r.as_str()) { (r.as_str()) } } } }
            label { "expires in " input type="text" name="expires_in" placeholder="30d, 12h, 90m"; }
            button type="submit" { "Create token" }
        }
        table.tokens {
            thead { tr {
                th { "name" } th { "role" } th { "prefix" } th { "created" } th { "last used" } th { "expires" }
                th { "state" } th {}
            } }
            tbody {
                @for t in list {
                    tr data-token=(t.id) {
                        td { (t.name) }
                        td { (t.role.as_str()) }
                        td { code { (t.prefix) } }
                        td { (time(t.created_at)) " by " (t.created_by) }
                        td { (t.last_used_at.map(time).unwrap_or_else(|| "never".into())) }
                        td { (t.expires_at.map(time).unwrap_or_else(|| "never".into())) }
                        td { (token_state(t, now)) }
                        td {
                            @if t.revoked_at.is_none() {
                                form.inline method="post" action={ "/ui/admin/tokens/" (t.id) "/revoke" }
                                    data-confirm={ "Revoke " (t.name) "? Its sessions end too." } {
                                    (csrf_field(who))
                                    button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn audit(list: &[AuditEvent], check: Option<&ChainCheck>) -> Markup {
    html! {
        form.inline method="get" action="/ui/admin" {
            input type="hidden" name="verify" value="1";
            button type="submit" { "Verify chain" }
        }
        @match check {
            Some(ChainCheck::Intact { events }) => p.ok #chain { "Chain intact: " (events) " events, every seal and link holds." },
            Some(ChainCheck::Broken { id, reason }) => p.problem #chain { "Chain broken at event " (id) ": " (reason) },
            None => {}
        }
        table.audit {
            thead { tr { th { "#" } th { "at" } th { "actor" } th { "action" } th { "target" } } }
            tbody {
                @for e in list {
                    tr { td { (e.id) } td { (time(e.at)) } td { (e.actor) } td { (e.action) } td { (e.target) } }
                }
            }
        }
    }
}

async fn channels(state: &AppState) -> hyperfleet_core::Result<Markup> {
    let mut rows = Vec::new();
    for c in &state.alerts.channels {
        rows.push((c, state.app.channel_stats(&c.name).await?));
    }
    Ok(html! {
        @if rows.is_empty() {
            p.empty { "No channel is configured." }
        } @else {
            table.channels {
                thead { tr {
                    th { "channel" } th { "type" } th { "from severity" } th { "sends to" } th { "delivered" }
                    th { "failed" } th { "suppressed" } th { "last" }
                } }
                tbody {
                    @for (c, s) in &rows {
                        tr {
                            td { (c.name) }
                            td { (c.kind().as_str()) }
                            td { (c.min_severity.as_str()) }
                            td { code { (c.target()) } }
                            td { (s.delivered) }
                            td { (s.failed) }
                            td { (s.suppressed) }
                            td {
                                @if let (Some(st), Some(at)) = (s.last_status, s.last_at) { (st.as_str()) " " (time(at)) }
                            }
                        }
                    }
                }
            }
        }
    })
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct AdminQuery {
    verify: Option<String>,
}

async fn render(state: &AppState, who: &UiSession, verify: bool, created: Option<(&TokenRecord, &str)>) -> Response {
    let read = async {
        let check = if verify { Some(state.app.verify_audit_chain(None).await?) } else { None };
        Ok::<_, Error>((
            state.app.tokens().await?,
            state.app.audit_events(AUDIT_SHOWN).await?,
            check,
            channels(state).await?,
        ))
    };
    let (list, events, check, channel_table) = match read.await {
        Ok(r) => r,
        Err(e) => return error_page(Some(who), e),
    };
    let body = html! {
        @if let Some((t, secret)) = created {
            div.created role="status" {
                p { "Token " strong { (t.name) } " (" (t.role.as_str()) ") was created. Copy it now: it is not shown again." }
                pre.secret { (secret) }
            }
        }
        h2 { "Tokens" }
        (tokens(who, &list, state.app.now()))
        h2 { "Audit log" }
        (audit(&events, check.as_ref()))
        h2 { "Alert channels" }
        (channel_table)
    };
    html_response(StatusCode::OK, page("Admin", Some(who), body))
}

#[handler]
pub async fn show(req: &Request, Data(state): Data<&AppState>, query: Option<Query<AdminQuery>>) -> Response {
    let who = match admin(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let verify = query.and_then(|Query(q)| q.verify).is_some_and(|v| v == "1");
    render(state, &who, verify, None).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    name: Option<String>,
    role: Option<String>,
    expires_in: Option<String>,
}

#[handler]
pub async fn create_token(req: &Request, Data(state): Data<&AppState>, form: Option<Form<CreateForm>>) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let who = match session::check_post(req, state, form.csrf.as_deref(), Role::Admin).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let create = async {
        let role = Role::parse(given(&form.role).as_deref().unwrap_or_default())?;
        let expires_in = given(&form.expires_in).map(|e| parse_token_lifetime(&e)).transpose()?;
        let name = given(&form.name).unwrap_or_default();
        let rid = current_request_id();
        state
            .app
            .create_token(Actor { name: &who.principal.name, request_id: Some(&rid) }, &name, role, expires_in)
            .await
    };
    match create.await {
        // The secret is on this answer only (never in a redirect's URL); `no-store` keeps it out of caches.
        Ok((record, secret)) => render(state, &who, false, Some((&record, &secret))).await,
        Err(e) => error_page(Some(&who), e),
    }
}

#[handler]
pub async fn revoke_token(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Admin, async |who| {
        let id = TokenId::parse(&id)?;
        let rid = current_request_id();
        state.app.revoke_token(Actor { name: &who.principal.name, request_id: Some(&rid) }, id).await?;
        Ok("/ui/admin".to_owned())
    })
    .await
}
