//! `hyperfleet bench-ledger`: fills a ledger with finished operations (one
//! `INSERT … SELECT`), starts the API on loopback, logs in to the dashboard,
//! and times the pages and API lists an operator opens first: the overview,
//! the first operations page, the page of each filter, and
//! `GET /api/v1/operations`. Not a test: it prints figures.
//!
//! Each figure is the wall time of one request over loopback, which is the
//! server's time plus a fraction of a millisecond; requests run one at a
//! time after a warm-up, and the median and the slowest are reported.

use std::time::{Duration, Instant};

use anyhow::Context;
use hyperfleet_core::{
    app::{Actor, App},
    auth::Role,
    settings::Settings,
};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct LedgerBenchArgs {
    pub database: String,
    pub ops: i64,
    /// The fill spreads its operations over this many days before now.
    pub days: i64,
    pub samples: usize,
    /// Time an already filled database without adding rows.
    pub no_fill: bool,
}

#[derive(Debug, Serialize)]
pub struct Timing {
    pub what: String,
    pub path: String,
    pub rows: usize,
    pub p50_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct LedgerBenchReport {
    pub backend: &'static str,
    pub ops_in_ledger: i64,
    pub fill_s: f64,
    pub timings: Vec<Timing>,
}

/// What is timed: (label, path). The filters are every one the operations page offers.
const TARGETS: &[(&str, &str)] = &[
    ("overview", "/ui"),
    ("operations, first page", "/ui/operations"),
    ("operations ?status=failed", "/ui/operations?status=failed"),
    ("operations ?status=cancelled", "/ui/operations?status=cancelled"),
    ("operations ?status=queued (none)", "/ui/operations?status=queued"),
    ("operations ?kind=backup.verify", "/ui/operations?kind=backup.verify"),
    ("operations ?host=bench-hv3", "/ui/operations?host=bench-hv3"),
    ("operations ?vm=vm7", "/ui/operations?vm=vm7"),
    ("operations ?status=failed&kind=vm.reboot", "/ui/operations?status=failed&kind=vm.reboot"),
    ("operations ?status=failed&vm=vm3", "/ui/operations?status=failed&vm=vm3"),
    ("VMs, first page", "/ui/vms"),
    ("VMs ?host=bench-hv3&state=running", "/ui/vms?host=bench-hv3&state=running"),
    ("VMs ?name=vm19", "/ui/vms?name=vm19"),
    ("one VM with its recent operations", "/ui/vms/bench-hv0/vm7"),
    ("API list ?limit=50", "/api/v1/operations?limit=50"),
    ("API list ?status=failed", "/api/v1/operations?status=failed"),
    ("API list ?kind=vm.start", "/api/v1/operations?kind=vm.start"),
    ("API list ?host=bench-hv3", "/api/v1/operations?host=bench-hv3"),
    ("API list ?vm=vm7", "/api/v1/operations?vm=vm7"),
    ("API VM list (first 100)", "/api/v1/vms"),
    ("API VM list ?limit=500", "/api/v1/vms?limit=500"),
];

/// VMs the fill adds to the inventory (the "one host with 2,000 VMs", over seven hosts).
const VMS: i64 = 2_003;

pub async fn run(args: LedgerBenchArgs) -> anyhow::Result<LedgerBenchReport> {
    let mut settings = crate::bench::bench_settings(Settings::load(None, std::iter::empty())?, &args.database, 1)?;
    settings.api.rate_limit_per_s = 100_000;
    settings.api.rate_limit_burst = 100_000;
    let components = crate::Components { api: true, worker: false, scheduler: false };
    let boot = crate::Bootstrap { migrate: true, ..Default::default() };
    let running = crate::start(&settings, components, boot).await?;
    let store = running.store.clone();
    let addr = running.api_addr.context("the API did not start")?;

    let started = Instant::now();
    if !args.no_fill {
        store.bench_fill_operations(args.ops, args.days * 86_400_000).await.context("filling the ledger")?;
        store.bench_fill_vms(VMS).await.context("filling the inventory")?;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let ops_in_ledger = store.operations_count().await?;

    let app = App::new(store.clone()).with_audit_key(settings.audit_key()?);
    let actor = Actor { name: "bench-ledger", request_id: None };
    let name = format!("bench-ledger-{}", ulid::Ulid::new());
    let (_, token) = app.create_token(actor, &name, Role::Viewer, Some(Duration::from_secs(3600))).await?;

    let base = format!("http://{addr}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let login =
        http.post(format!("{base}/ui/login")).header("origin", &base).form(&[("token", token.as_str())]).send().await?;
    anyhow::ensure!(login.status() == 303, "dashboard login answered {}", login.status());
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("login set no cookie")?
        .to_owned();

    let mut timings = Vec::new();
    for (what, path) in TARGETS {
        let get = || {
            let req = http.get(format!("{base}{path}"));
            if path.starts_with("/api/") { req.bearer_auth(&token) } else { req.header("cookie", &cookie) }
        };
        let mut rows = 0;
        for _ in 0..3 {
            let resp = get().send().await?;
            anyhow::ensure!(resp.status() == 200, "{path} answered {}", resp.status());
            let body = resp.text().await?;
            rows = body
                .matches("<tr data-")
                .count()
                .max(body.matches("\"id\":").count())
                .max(body.matches("\"uuid\":").count());
        }
        let mut samples = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            let t = Instant::now();
            let resp = get().send().await?;
            let status = resp.status();
            resp.bytes().await?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == 200, "{path} answered {status}");
        }
        let max = samples.iter().copied().fold(0.0, f64::max);
        timings.push(Timing {
            what: (*what).to_owned(),
            path: (*path).to_owned(),
            rows,
            p50_ms: crate::bench::percentile(&samples, 50.0),
            max_ms: (max * 100.0).round() / 100.0,
        });
    }
    running.stop().await?;
    Ok(LedgerBenchReport { backend: store.kind().as_str(), ops_in_ledger, fill_s, timings })
}
