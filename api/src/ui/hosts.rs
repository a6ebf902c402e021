//! `/ui/hosts`: every host's worker (heartbeat, version, VMs by state) and
//! one host's system facts, running operations, and health checks with
//! their transitions.

use std::collections::BTreeMap;

use hyperfleet_core::{
    Timestamp,
    operation::{Operation, OperationStatus},
    store::{HealthEventRecord, HealthStateRecord, HostRecord, OperationFilter, SystemInfo, VmRecord},
    vm::VmState,
};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Path},
};

use super::{
    health::{check_states, transitions},
    layout::{error_page, html_response, page, time},
    operations::row as operation_row,
    session,
};
use crate::AppState;

/// How a host's worker looks now, in words.
pub fn host_status(h: &HostRecord, now: Timestamp) -> &'static str {
    match (h.online(now), h.problem.is_some(), h.stopped_at.is_some()) {
        (true, true, _) => "degraded",
        (true, false, _) => "online",
        (false, _, true) => "stopped",
        (false, _, false) => "offline",
    }
}

pub fn age(now: Timestamp, t: Timestamp) -> String {
    let s = (now.0 - t.0).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn counts_text(counts: Option<&BTreeMap<VmState, i64>>) -> String {
    match counts {
        None => "none".to_owned(),
        Some(c) => c.iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect::<Vec<_>>().join(", "),
    }
}

type Counts = BTreeMap<String, BTreeMap<VmState, i64>>;

fn by_host(rows: Vec<(String, VmState, i64)>) -> Counts {
    let mut counts = Counts::new();
    for (host, state, n) in rows {
        counts.entry(host).or_default().insert(state, n);
    }
    counts
}

#[handler]
pub async fn list(req: &Request, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    let read =
        async { Ok::<_, hyperfleet_core::Error>((state.app.hosts().await?, state.app.vm_state_counts().await?)) };
    let (hosts, counts) = match read.await {
        Ok((h, c)) => (h, by_host(c)),
        Err(e) => return error_page(Some(&who), e),
    };
    let now = state.app.now();
    let body = html! {
        @if hosts.is_empty() {
            p.empty { "No worker has registered yet." }
        } @else {
            table.hosts {
                thead { tr { th { "host" } th { "status" } th { "heartbeat" } th { "version" } th { "VMs" } } }
                tbody {
                    @for h in &hosts {
                        tr data-host=(h.name) {
                            td { a href={ "/ui/hosts/" (h.name) } { (h.name) } }
                            td { span class={ "hoststatus " (host_status(h, now)) } { (host_status(h, now)) } }
                            td { (age(now, h.last_heartbeat)) }
                            td { (h.version) }
                            td { (counts_text(counts.get(&h.name))) }
                        }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, page("Hosts", Some(&who), body))
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn system(s: &SystemInfo) -> Markup {
    html! {
        dl.facts {
            dt { "hostname" } dd { (s.hostname) }
            dt { "CPUs" } dd { (s.cpus) ", load " (format!("{:.2}", s.load_avg_1m)) }
            dt { "memory" } dd { (gib(s.memory_used_bytes)) " used of " (gib(s.memory_total_bytes)) }
            @for d in &s.disks {
                dt { (d.role) } dd { code { (d.path) } " " (gib(d.used_bytes)) " used of " (gib(d.total_bytes)) }
            }
            dt { "libvirt" } dd { (s.libvirt_version) }
            dt { "hypervisor" } dd { (s.hypervisor_version) }
            dt { "uptime" } dd { (s.uptime_s / 3600) " h" }
            dt { "reported" } dd { (time(s.reported_at)) }
        }
    }
}

struct HostPage {
    host: HostRecord,
    counts: Option<BTreeMap<VmState, i64>>,
    running: Vec<Operation>,
    checks: Vec<HealthStateRecord>,
    events: Vec<HealthEventRecord>,
    vms: Vec<VmRecord>,
    more_vms: bool,
}

async fn read_host(state: &AppState, name: &str) -> hyperfleet_core::Result<HostPage> {
    let host = state.app.host(name).await?;
    let counts = by_host(state.app.vm_state_counts().await?).remove(name);
    let running = OperationFilter {
        status: Some(OperationStatus::Running),
        host: Some(host.name.clone()),
        limit: 50,
        ..Default::default()
    };
    let running = state.app.list_operations(&running).await?.items;
    let checks = state.app.health_states(Some(name)).await?;
    let events = state.app.host_health_events(name, 20).await?;
    let vms = hyperfleet_core::store::VmFilter { host: Some(host.name.clone()), limit: 20, ..Default::default() };
    let vms = state.app.list_vms(&vms).await?;
    Ok(HostPage { host, counts, running, checks, events, more_vms: vms.next_cursor.is_some(), vms: vms.items })
}

fn render(p: &HostPage, now: Timestamp) -> Markup {
    let h = &p.host;
    html! {
        dl.facts {
            dt { "status" } dd { span class={ "hoststatus " (host_status(h, now)) } { (host_status(h, now)) } }
            @if let Some(problem) = &h.problem { dt { "problem" } dd.error { (problem) } }
            dt { "heartbeat" } dd { (time(h.last_heartbeat)) " (" (age(now, h.last_heartbeat)) ", every " (h.heartbeat_s) " s)" }
            dt { "worker" } dd { code { (h.worker_id) } " version " (h.version) " since " (time(h.started_at)) }
            dt { "VMs" } dd { (counts_text(p.counts.as_ref())) }
        }
        h2 { "System" }
        @match &h.system {
            Some(s) => (system(&s.0)),
            None => p.empty { "The worker has not reported system facts yet." },
        }
        h2 { "Running operations" }
        @if p.running.is_empty() {
            p.empty { "None." }
        } @else {
            table.operations { tbody { @for op in &p.running { (operation_row(op, false, now)) } } }
        }
        h2 { "Health checks" }
        (check_states(&p.checks))
        h3 { "Transitions" }
        (transitions(&p.events))
        h2 { "VMs" }
        @if p.vms.is_empty() { p.empty { "None." } } @else { (super::vms::table(&p.vms)) }
        @if p.more_vms { p { a href={ "/ui/vms?host=" (h.name) } { "All VMs on " (h.name) " →" } } }
    }
}

#[handler]
pub async fn detail(req: &Request, Path(name): Path<String>, Data(state): Data<&AppState>) -> Response {
    let who = match session::current(req, state).await {
        Ok(who) => who,
        Err(answer) => return answer,
    };
    match read_host(state, &name).await {
        Ok(p) => {
            let title = format!("Host {}", p.host.name);
            html_response(StatusCode::OK, page(&title, Some(&who), render(&p, state.app.now())))
        }
        Err(e) => error_page(Some(&who), e),
    }
}
