//! `/ui/backups`: backups newest first with their verification state
//! (filtered by host, VM and verification in the query string), one
//! backup's verification history, and for operators "verify now" and
//! "back up now" — the API's `backup_verify` and `backup_create`.

use hyperfleet_core::{
    BackupId,
    app::BackupView,
    auth::Role,
    backup::{VerificationState, VerifyLevel, VerifyParams},
    store::{BackupFilter, VerificationRecord},
    vm::{HostName, VmName},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form, Path, Query},
};

use super::{
    forms::{get, given, origin, paging, post},
    layout::{csrf_field, error_page, html_response, page, time},
    session::{self, UiSession},
};
use crate::AppState;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    host: Option<String>,
    vm: Option<String>,
    verification: Option<String>,
    cursor: Option<String>,
}

struct Filter {
    store: BackupFilter,
    verification: Option<VerificationState>,
}

fn filter_of(q: &ListQuery) -> hyperfleet_core::Result<Filter> {
    Ok(Filter {
        store: BackupFilter {
            host: given(&q.host).map(|h| HostName::parse(&h)).transpose()?.map(HostName::into_string),
            vm: given(&q.vm).map(|v| VmName::parse(&v).map(|n| n.as_str().to_owned())).transpose()?,
            cursor: given(&q.cursor).map(|c| BackupId::parse(&c)).transpose()?,
            limit: 50,
            ..Default::default()
        },
        verification: given(&q.verification).map(|v| VerificationState::parse(&v)).transpose()?,
    })
}

fn link(f: &Filter, cursor: BackupId) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &f.store.host {
        parts.push(format!("host={h}"));
    }
    if let Some(v) = &f.store.vm {
        parts.push(format!("vm={v}"));
    }
    if let Some(v) = f.verification {
        parts.push(format!("verification={}", v.as_str()));
    }
    parts.push(format!("cursor={cursor}"));
    format!("/ui/backups?{}", parts.join("&"))
}

fn filters(f: &Filter) -> Markup {
    html! {
        form.filters method="get" action="/ui/backups" {
            label { "host " input type="text" name="host" value=[f.store.host.as_deref()]; }
            label { "VM " input type="text" name="vm" value=[f.store.vm.as_deref()]; }
            label { "verification " select name="verification" {
                option value="" { "any" }
                @for v in VerificationState::ALL {
                    option value=(v.as_str()) selected[f.verification == Some(*v)] { (v.as_str()) }
                }
            } }
            button type="submit" { "Filter" }
        }
    }
}

fn size(bytes: Option<i64>) -> String {
    bytes.map_or_else(|| "—".to_owned(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
}

fn row(b: &BackupView) -> Markup {
    let r = &b.record;
    html! {
        tr data-backup=(r.id) {
            td { a href={ "/ui/backups/" (r.id) } { (time(r.created_at)) } }
            td { a href=(super::vms::vm_href(&r.host, &r.vm)) { (r.vm) } }
            td { (r.host) }
            td { span class={ "backup " (r.state.as_str()) } { (r.state.as_str()) } }
            td { (r.method.map_or("—", |m| m.as_str())) }
            td { (size(r.size_bytes)) }
            td { span class={ "verification " (b.verification.as_str()) } { (b.verification.as_str()) } }
        }
    }
}

#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>, query: Option<Query<ListQuery>>) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    get(req, state, "Backups", async |_| {
        let filter = filter_of(&query)?;
        let found = state.app.backups(filter.store.clone(), filter.verification).await?;
        Ok(html! {
        (filters(&filter))
        @if found.items.is_empty() {
            p.empty { "No backups match." }
        } @else {
            table.backups {
                thead { tr {
                    th { "taken" } th { "VM" } th { "host" } th { "state" } th { "method" } th { "size" }
                    th { "verification" }
                } }
                tbody { @for b in &found.items { (row(b)) } }
            }
        }
        (paging(found.next_cursor.map(|next| link(&filter, next)), "Older →"))
        })
    })
    .await
}

fn verify_form(who: &UiSession, id: BackupId) -> Markup {
    html! {
        @if who.can(Role::Operator) {
            form.inline method="post" action={ "/ui/backups/" (id) "/verify" } {
                (csrf_field(who))
                select name="level" {
                    @for l in VerifyLevel::ALL { option value=(l.as_str()) { (l.as_str()) } }
                }
                " "
                button type="submit" { "Verify now" }
            }
        }
    }
}

fn history(items: &[VerificationRecord]) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "Never verified." }
        } @else {
            table.verifications {
                thead { tr { th { "finished" } th { "level" } th { "result" } th { "code" } th { "operation" } } }
                tbody {
                    @for v in items {
                        tr {
                            td { (time(v.finished_at)) }
                            td { (v.level.as_str()) }
                            td { span class={ "verify " (v.result.as_str()) } { (v.result.as_str()) } }
                            td { (v.code.as_deref().unwrap_or("")) }
                            td { a href={ "/ui/operations/" (v.operation_id) } { (v.operation_id) } }
                        }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn detail(req: &Request, Path(id): Path<String>, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let read = async { state.app.backup(BackupId::parse(&id)?).await };
    let (b, verifications) = match read.await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&who), e),
    };
    let r = &b.record;
    let body = html! {
        div.actions { (verify_form(&who, r.id)) }
        dl.facts {
            dt { "VM" } dd { a href=(super::vms::vm_href(&r.host, &r.vm)) { (r.vm) } " on " (r.host) }
            dt { "state" } dd { (r.state.as_str()) }
            dt { "verification" } dd { (b.verification.as_str()) }
            dt { "method" } dd { (r.method.map_or("—", |m| m.as_str())) }
            dt { "size" } dd { (size(r.size_bytes)) }
            dt { "directory" } dd { code { (r.dir) } }
            @if let Some(h) = &r.manifest_sha256 { dt { "manifest sha256" } dd { code { (h) } } }
            @if let Some(e) = &r.error { dt { "error" } dd.error { (e) } }
            dt { "taken" } dd { (time(r.created_at)) }
            dt { "operation" } dd { a href={ "/ui/operations/" (r.operation_id) } { (r.operation_id) } }
        }
        h2 { "Verification history" }
        (history(&verifications))
    };
    html_response(StatusCode::OK, page("Backup", Some(&who), body))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct VerifyForm {
    csrf: Option<String>,
    level: Option<String>,
}

#[handler]
pub async fn verify(
    req: &Request,
    Path(id): Path<String>,
    Data(state): Data<&AppState>,
    form: Option<Form<VerifyForm>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Operator, async |who| {
        let id = BackupId::parse(&id)?;
        let level = given(&form.level).map(|l| VerifyLevel::parse(&l)).transpose()?.unwrap_or(VerifyLevel::Checksum);
        let params = VerifyParams { backup_id: None, level, boot_marker: None, boot_timeout_s: None };
        let s = state.app.backup_verify(id, params, origin(state, who)).await?;
        Ok(format!("/ui/operations/{}", s.operation.id))
    })
    .await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    host: Option<String>,
    vm: Option<String>,
}

/// The "back up now" button of a VM's page.
pub fn create_form(who: &UiSession, host: &str, vm: &str) -> Markup {
    html! {
        @if who.can(Role::Operator) {
            form.inline method="post" action="/ui/backups/create" {
                (csrf_field(who))
                input type="hidden" name="host" value=(host);
                input type="hidden" name="vm" value=(vm);
                button type="submit" { "Back up now" }
            }
        }
    }
}

#[handler]
pub async fn create(req: &Request, Data(state): Data<&AppState>, form: Option<Form<CreateForm>>) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    post(req, state, form.csrf.as_deref(), Role::Operator, async |who| {
        let vm = VmName::parse(form.vm.as_deref().unwrap_or_default())?;
        let host = given(&form.host).map(|h| HostName::parse(&h)).transpose()?;
        let s = state.app.backup_create(&vm, host.as_ref().map(HostName::as_str), origin(state, who)).await?;
        Ok(format!("/ui/operations/{}", s.operation.id))
    })
    .await
}
