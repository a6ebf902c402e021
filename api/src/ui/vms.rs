//! `/ui/vms`: the inventory a page at a time, filtered by host, state and a
//! part of the name with the rules `GET /api/v1/vms` uses; one VM with its
//! recent operations; and, for operators, power actions that submit the same
//! operations as the API. Destroy is confirmed on a page of its own, so it
//! asks even without JavaScript.

use hyperfleet_core::{
    Timestamp,
    auth::Role,
    operation::Operation,
    store::{OperationFilter, VmFilter, VmRecord},
    vm::{PowerParams, VmAction, VmName, VmState},
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form, Path, Query},
};

use super::{
    forms::{ActionForm, get, given, origin, paging},
    layout::{action_button, csrf_field, error_page, html_response, page, see_other, time},
    operations::row as operation_row,
    session::{self, UiSession},
};
use crate::{AppState, vms::vm_filter};

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    host: Option<String>,
    state: Option<String>,
    name: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn filter_of(q: &ListQuery) -> hyperfleet_core::Result<VmFilter> {
    let limit = given(&q.limit)
        .map(|l| {
            l.parse::<u32>().map_err(|_| hyperfleet_core::Error::invalid("invalid_limit", "`limit` must be 1-500"))
        })
        .transpose()?;
    let state = given(&q.state).map(|s| VmState::parse(&s)).transpose()?;
    vm_filter(given(&q.host), state, given(&q.name), limit, given(&q.cursor).as_deref())
}

/// The list's URL for `f` starting at `cursor` (every part is validated, so none needs escaping).
fn link(f: &VmFilter, cursor: Option<String>) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &f.host {
        parts.push(format!("host={h}"));
    }
    if let Some(s) = f.state {
        parts.push(format!("state={}", s.as_str()));
    }
    if let Some(n) = &f.name {
        parts.push(format!("name={n}"));
    }
    if f.limit != crate::vms::VM_PAGE.0 {
        parts.push(format!("limit={}", f.limit));
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={c}"));
    }
    if parts.is_empty() { "/ui/vms".to_owned() } else { format!("/ui/vms?{}", parts.join("&")) }
}

pub fn vm_href(host: &str, name: &str) -> String {
    format!("/ui/vms/{host}/{name}")
}

fn filters(f: &VmFilter) -> Markup {
    html! {
        form.filters method="get" action="/ui/vms" {
            label { "name contains " input type="text" name="name" value=[f.name.as_deref()]; }
            label { "host " input type="text" name="host" value=[f.host.as_deref()]; }
            label { "state " select name="state" {
                option value="" { "any" }
                @for s in VmState::ALL {
                    option value=(s.as_str()) selected[f.state == Some(*s)] { (s.as_str()) }
                }
            } }
            button type="submit" { "Filter" }
        }
    }
}

fn row(vm: &VmRecord) -> Markup {
    html! {
        tr data-vm=(vm.name) data-host=(vm.host) {
            td { a href=(vm_href(&vm.host, &vm.name)) { (vm.name) } }
            td { a href={ "/ui/hosts/" (vm.host) } { (vm.host) } }
            td { span class={ "state " (vm.state.as_str()) } { (vm.state.as_str()) } }
            td { (vm.state_reason) }
            td { (vm.vcpus) }
            td { (vm.memory_kib / 1024) " MiB" }
            td { (if vm.autostart { "yes" } else { "no" }) }
            td { (time(vm.updated_at)) }
        }
    }
}

/// The VM table, shared with the host page.
pub fn table(vms: &[VmRecord]) -> Markup {
    html! {
        table.vms {
            thead { tr {
                th { "name" } th { "host" } th { "state" } th { "reason" } th { "vCPUs" } th { "memory" }
                th { "autostart" } th { "seen" }
            } }
            tbody { @for vm in vms { (row(vm)) } }
        }
    }
}

#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>, query: Option<Query<ListQuery>>) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    get(req, state, "VMs", async |_| {
        let filter = filter_of(&query)?;
        let found = state.app.list_vms(&filter).await?;
        Ok(html! {
            (filters(&filter))
            @if found.items.is_empty() { p.empty { "No VMs match." } } @else { (table(&found.items)) }
            (paging(found.next_cursor.map(|next| link(&filter, Some(next.to_string()))), "Next →"))
        })
    })
    .await
}

/// Which actions make sense in `state` (the worker checks again when it runs).
fn actions_for(state: VmState) -> &'static [VmAction] {
    match state {
        VmState::Running | VmState::Blocked => {
            &[VmAction::Shutdown, VmAction::Reboot, VmAction::Suspend, VmAction::Destroy]
        }
        VmState::Paused | VmState::Pmsuspended => &[VmAction::Resume, VmAction::Destroy],
        VmState::Shutoff | VmState::Crashed => &[VmAction::Start],
        VmState::Shutdown | VmState::Nostate => &[VmAction::Destroy],
    }
}

fn power_actions(who: &UiSession, vm: &VmRecord) -> Markup {
    let base = vm_href(&vm.host, &vm.name);
    html! {
        @if who.can(Role::Operator) {
            div.actions {
                @for a in actions_for(vm.state) {
                    // Destroy asks on a page of its own (with or without JavaScript).
                    @let confirm = if *a == VmAction::Destroy { String::new() } else { format!("{} {}?", a.as_str(), vm.name) };
                    (action_button(who, Role::Operator, &format!("{base}/{}", a.as_str()), a.as_str(), &confirm))
                }
                (super::backups::create_form(who, &vm.host, &vm.name))
            }
        }
    }
}

fn render(who: &UiSession, vm: &VmRecord, recent: &[Operation], now: Timestamp) -> Markup {
    let all_ops = format!("/ui/operations?host={}&vm={}", vm.host, vm.name);
    html! {
        (power_actions(who, vm))
        dl.facts {
            dt { "state" } dd { span class={ "state " (vm.state.as_str()) } { (vm.state.as_str()) } " (" (vm.state_reason) ")" }
            dt { "host" } dd { a href={ "/ui/hosts/" (vm.host) } { (vm.host) } }
            dt { "UUID" } dd { code { (vm.uuid) } }
            dt { "vCPUs" } dd { (vm.vcpus) }
            dt { "memory" } dd { (vm.memory_kib / 1024) " MiB" }
            dt { "autostart" } dd { (if vm.autostart { "yes" } else { "no" }) }
            dt { "persistent" } dd { (if vm.persistent { "yes" } else { "no" }) }
            dt { "seen" } dd { (time(vm.updated_at)) }
        }
        h2 { "Recent operations" }
        @if recent.is_empty() {
            p.empty { "No operations on this VM." }
        } @else {
            table.operations {
                thead { tr {
                    th { "id" } th { "kind" } th { "target" } th { "status" } th { "attempts" }
                    th { "requested by" } th { "created" } th { "last error" }
                } }
                tbody { @for op in recent { (operation_row(op, false, now)) } }
            }
        }
        p {
            a href=(all_ops) { "All operations on this VM →" } " · "
            a href={ "/ui/backups?host=" (vm.host) "&vm=" (vm.name) } { "Backups →" }
        }
    }
}

async fn read_vm(state: &AppState, host: &str, name: &str) -> hyperfleet_core::Result<(VmRecord, Vec<Operation>)> {
    let name = VmName::parse(name)?;
    let vm = state.app.vm(name.as_str(), Some(host)).await?;
    let filter =
        OperationFilter { host: Some(vm.host.clone()), vm: Some(vm.name.clone()), limit: 10, ..Default::default() };
    Ok((vm, state.app.list_operations(&filter).await?.items))
}

#[handler]
pub async fn detail(
    req: &Request,
    Path((host, name)): Path<(String, String)>,
    Data(state): Data<&AppState>,
) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    match read_vm(state, &host, &name).await {
        Ok((vm, recent)) => html_response(
            StatusCode::OK,
            page(&format!("VM {}", vm.name), Some(&who), render(&who, &vm, &recent, state.app.now())),
        ),
        Err(e) => error_page(Some(&who), e),
    }
}

fn confirm_destroy(who: &UiSession, vm: &VmRecord) -> Response {
    let action = format!("{}/destroy", vm_href(&vm.host, &vm.name));
    let body = html! {
        p.message { "Destroy powers " strong { (vm.name) } " on " (vm.host) " off at once, like pulling the plug." }
        form.inline method="post" action=(action) {
            (csrf_field(who))
            input type="hidden" name="confirmed" value="yes";
            button.danger type="submit" { "Destroy " (vm.name) }
        }
        " "
        a href=(vm_href(&vm.host, &vm.name)) { "Keep it running" }
    };
    html_response(StatusCode::OK, page("Destroy VM?", Some(who), body))
}

#[handler]
pub async fn power(
    req: &Request,
    Path((host, name, action)): Path<(String, String, String)>,
    Data(state): Data<&AppState>,
    form: Option<Form<ActionForm>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let who = match session::check_post(req, state, form.csrf.as_deref(), Role::Operator).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let parsed = (|| Ok::<_, hyperfleet_core::Error>((VmAction::parse(&action)?, VmName::parse(&name)?)))();
    let (action, vm_name) = match parsed {
        Ok(p) => p,
        Err(e) => return error_page(Some(&who), e),
    };
    if action == VmAction::Destroy && form.confirmed.as_deref() != Some("yes") {
        return match state.app.vm(vm_name.as_str(), Some(&host)).await {
            Ok(vm) => confirm_destroy(&who, &vm),
            Err(e) => error_page(Some(&who), e),
        };
    }
    match state.app.vm_power(&vm_name, Some(&host), action, PowerParams::default(), origin(state, &who)).await {
        Ok(submitted) => see_other(&format!("/ui/operations/{}", submitted.operation.id)),
        Err(e) => error_page(Some(&who), e),
    }
}
