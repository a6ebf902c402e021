//! Hyperfleet's worker: bound to one hypervisor host (its libvirt URI), it
//! takes operations from its host's queue and the shared queue, runs each as a
//! job (`jobs/`), and records every attempt in the ledger. Alongside, it keeps
//! its host registration and heartbeat, refreshes the VM inventory, and reaps
//! operations whose worker died (an expired lease).

pub mod alerts;
pub mod backup;
mod completer;
mod health;
mod isos;
pub mod jobs;
pub mod libvirt;
mod runner;
pub mod system;
mod transport;

use std::{sync::Arc, time::Duration};

use hyperfleet_core::{app::App, backoff::Backoff, queue, settings::Settings, store::Store};
use tokio_util::sync::CancellationToken;

pub use runner::Runner;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub host: String,
    pub libvirt_uri: String,
    pub slots: hyperfleet_core::settings::SlotSettings,
    pub lease: Duration,
    pub inventory_interval: Duration,
    pub shutdown_grace: Duration,
    pub poll_interval: Duration,
    pub heartbeat: Duration,
    pub dirs: system::WatchedDirs,
    pub backoff: Backoff,
    pub health: hyperfleet_core::settings::HealthSettings,
    pub retention: hyperfleet_core::settings::RetentionSettings,
    /// Channels that `alert.deliver` operations send through.
    pub alerts: hyperfleet_core::settings::AlertSettings,
    /// Base of the links in notifications.
    pub public_url: String,
    /// `[backups]`, with `dir` resolved.
    pub backups: hyperfleet_core::settings::BackupSettings,
}

impl WorkerConfig {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            host: s.worker_host(),
            libvirt_uri: s.worker.libvirt_uri.clone(),
            slots: s.worker.slots,
            lease: Duration::from_secs(s.worker.lease_s),
            inventory_interval: Duration::from_secs(s.worker.inventory_interval_s.max(1)),
            shutdown_grace: Duration::from_secs(s.worker.shutdown_grace_s),
            poll_interval: Duration::from_millis(s.worker.poll_interval_ms.max(5)),
            heartbeat: Duration::from_secs(s.worker.heartbeat_s),
            dirs: system::WatchedDirs {
                data_dir: Some(s.data_dir.clone()),
                image_dirs: s.worker.image_dirs.clone(),
                iso_dir: s.worker.iso_dir.clone(),
            },
            backoff: s.retry.backoff,
            health: s.health.clone(),
            retention: s.retention.clone(),
            alerts: s.alerts.clone(),
            public_url: s.public_url(),
            backups: hyperfleet_core::settings::BackupSettings {
                dir: Some(s.backups.dir_in(&s.data_dir)),
                ..s.backups.clone()
            },
        }
    }
}

const REAP_EVERY: Duration = Duration::from_secs(2);

/// How often the counter increments appended meanwhile are folded into the
/// counters (see `Store::fold_counters`): a few thousand rows at a busy
/// queue's pace.
const FOLD_COUNTERS_EVERY: Duration = Duration::from_secs(2);

/// Runs a worker until `shutdown` is cancelled, then drains it.
pub async fn run(store: Store, cfg: WorkerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let worker_id = format!("{}-{}-{}", cfg.host, std::process::id(), ulid::Ulid::new());
    let hypervisor = Arc::new(libvirt::Hypervisor::new(&cfg.libvirt_uri, &cfg.host));
    let version = format!("hyperfleet {}", env!("CARGO_PKG_VERSION"));
    let heartbeat_s = cfg.heartbeat.as_secs().max(1) as i32;
    store.register_host(&cfg.host, &cfg.libvirt_uri, &worker_id, &version, heartbeat_s).await?;
    refresh_inventory(&store, &hypervisor, &cfg.host).await;
    sweep_boot_tests(&cfg).await;
    tracing::info!(host = cfg.host, worker = worker_id, uri = cfg.libvirt_uri, "worker started");

    // Its plans (`backup.verify` without a backup) and health checks derive `outdated` from the setting.
    let app = App::new(store.clone())
        .with_retention(cfg.retention.clone())
        .with_reverify_after_days(cfg.backups.reverify_after_days);
    let runner = Runner::new(app.clone(), hypervisor.clone(), worker_id.clone(), &cfg);
    let transport_stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for q in [queue::host_queue(&cfg.host), queue::SHARED_QUEUE.to_owned()] {
        tasks.spawn(transport::serve(store.clone(), q, runner.clone(), cfg.poll_interval, transport_stop.clone()));
    }
    runner.claim_at_submit();
    let background = CancellationToken::new();
    let relay = store.clone();
    let relay_stop = background.clone();
    tokio::spawn(async move { relay_stop.run_until_cancelled(relay.relay_wakes()).await });
    tokio::spawn(housekeeping(app, hypervisor, cfg.clone(), worker_id.clone(), background.clone()));
    // Hashing a large ISO takes minutes: it runs on its own, never in the way of heartbeats.
    tokio::spawn(iso_catalogue(store.clone(), cfg.clone(), background.clone()));

    shutdown.cancelled().await;
    tracing::info!(grace = ?cfg.shutdown_grace, "worker stopping: no new work; waiting for running operations");
    transport_stop.cancel();
    while tasks.join_next().await.is_some() {}
    runner.shutdown(cfg.shutdown_grace).await;
    background.cancel();
    if let Err(e) = store.host_stopped(&cfg.host, &worker_id).await {
        // Only cosmetic: without it the host shows offline after three missed beats.
        tracing::warn!(error = %e, "could not record the clean stop");
    }
    tracing::info!("worker stopped");
    Ok(())
}

async fn housekeeping(
    app: App,
    hypervisor: Arc<libvirt::Hypervisor>,
    cfg: WorkerConfig,
    worker_id: String,
    stop: CancellationToken,
) {
    let mut heartbeat = tokio::time::interval(cfg.heartbeat);
    let mut inventory = tokio::time::interval(cfg.inventory_interval);
    let mut reap = tokio::time::interval(REAP_EVERY);
    let mut fold = tokio::time::interval(FOLD_COUNTERS_EVERY);
    let store = app.store().clone();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = heartbeat.tick() => {
                let (lib, hyp) = hypervisor.versions().await.unwrap_or((0, 0));
                let dirs = cfg.dirs.clone();
                let info = tokio::task::spawn_blocking(move || {
                    system::collect(&dirs, &system::version_text(lib), &system::version_text(hyp))
                })
                .await
                .ok();
                let problem = store.serving.problem();
                if let Err(e) = store.heartbeat(&cfg.host, &worker_id, info.as_ref(), problem.as_deref()).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
            _ = inventory.tick() => {
                refresh_inventory(&store, &hypervisor, &cfg.host).await;
            }
            _ = reap.tick() => match app.reap(&cfg.backoff).await {
                Ok(r) if r.abandoned > 0 => tracing::info!(abandoned = r.abandoned, "reaped"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaper failed"),
            },
            _ = fold.tick() => if let Err(e) = store.fold_counters().await {
                // Nothing is lost: the increments stay, counted when read, for the next fold.
                tracing::warn!(error = %e, "folding the counter increments failed");
            },
        }
    }
}

/// Keeps the host's ISO catalogue current, one scan at a time, until `stop`
/// (which also interrupts a hash in progress).
async fn iso_catalogue(store: Store, cfg: WorkerConfig, stop: CancellationToken) {
    let Some(dir) = cfg.dirs.iso_dir.clone() else { return };
    let scanner = Arc::new(isos::IsoScanner::default());
    let mut every = tokio::time::interval(cfg.inventory_interval);
    while stop.run_until_cancelled(every.tick()).await.is_some() {
        let (scanner, host, dir, halt) = (scanner.clone(), cfg.host.clone(), dir.clone(), stop.clone());
        match tokio::task::spawn_blocking(move || scanner.scan(&host, &dir, &halt)).await {
            Ok(Ok(isos)) => {
                if let Err(e) = store.replace_isos(&cfg.host, &isos).await {
                    tracing::warn!(error = %e, "could not store the ISO catalogue");
                }
            }
            Ok(Err(e)) if stop.is_cancelled() => tracing::debug!(error = %e, "ISO scan stopped"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not scan the ISO directory"),
            Err(e) => tracing::warn!(error = %e, "ISO scan panicked"),
        }
    }
}

/// What a killed worker's boot tests left: their domains (libvirt destroys
/// them with the connection, unless it was down meanwhile) and overlays.
async fn sweep_boot_tests(cfg: &WorkerConfig) {
    let Some(root) = cfg.backups.dir.clone() else { return };
    let uri = cfg.libvirt_uri.clone();
    match tokio::task::spawn_blocking(move || backup::boot::sweep(&uri, &root)).await {
        Ok((0, 0)) => {}
        Ok((domains, dirs)) => tracing::warn!(domains, dirs, "removed boot tests left by an earlier worker"),
        Err(e) => tracing::warn!(error = %e, "boot test sweep panicked"),
    }
}

async fn refresh_inventory(store: &Store, hypervisor: &libvirt::Hypervisor, host: &str) {
    let observed = hyperfleet_core::Timestamp::now();
    match hypervisor.list().await {
        Ok(vms) => {
            if let Err(e) = store.replace_inventory(host, &vms, observed).await {
                tracing::warn!(error = %e, "could not store the inventory");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list domains"),
    }
}
