//! Wiring of Hyperfleet's processes. The crates do the work; this ties them
//! to one configuration, one database and one shutdown signal.

pub mod bench;
pub mod bench_alerts;
pub mod bench_backups;
pub mod bench_ledger;
pub mod bench_silences;
pub mod boot_sector;
mod private_files;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use hyperfleet_api::{AppState, Limits};
use hyperfleet_core::{
    app::{Actor, App},
    auth::Role,
    settings::Settings,
    store::Store,
    time::Clock,
};
use hyperfleet_worker::WorkerConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Which components a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Components {
    pub api: bool,
    pub worker: bool,
    pub scheduler: bool,
}

impl Components {
    pub const ALL: Self = Self { api: true, worker: true, scheduler: true };
}

/// How a process starts: migrate first, and create the first admin token when
/// the database has none (what `hyperfleet up` does on its first start).
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    pub migrate: bool,
    pub first_admin_token: bool,
    /// Where "now" comes from: the system clock, or a test's adjustable one.
    pub clock: Clock,
    /// Queue one health run of this worker's host at start, so that the
    /// health page is not empty until the first scheduled run (`up` does).
    pub first_health_run: bool,
}

/// A started Hyperfleet: where its API listens, and how to stop it.
#[derive(Debug)]
pub struct Running {
    pub api_addr: Option<SocketAddr>,
    /// Where the unauthenticated metrics listener (`metrics.listen`) bound, if it runs.
    pub metrics_addr: Option<SocketAddr>,
    pub store: Store,
    /// The admin token created on first start, if this start created one (shown once).
    pub initial_admin_token: Option<String>,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Running {
    /// Asks every component to stop (as SIGTERM does) and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until every component has stopped; the first error wins.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        let mut first_err = None;
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.shutdown.cancel();
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    self.shutdown.cancel();
                    first_err.get_or_insert(e.into());
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Connects, migrates when asked, and starts `components`.
pub async fn start(settings: &Settings, components: Components, boot: Bootstrap) -> anyhow::Result<Running> {
    private_files::prepare(&settings.database_url())?;
    let store = Store::connect(&settings.database_url(), settings.database.pool())
        .await
        .context("connecting to the database")?
        .with_clock(boot.clock.clone());
    let mut core = App::new(store.clone())
        .with_retention(settings.retention.clone())
        .with_reverify_after_days(settings.backups.reverify_after_days);
    if components.api || components.scheduler || boot.first_admin_token {
        core = core.with_audit_key(settings.audit_key().context("reading the audit key")?);
    }
    if boot.migrate {
        store.migrate().await.context("migrating the database")?;
    }
    if boot.migrate && components.scheduler && settings.scheduler.default_schedules {
        core.ensure_default_schedules().await.context("creating the default schedules")?;
    }
    let mut initial_admin_token = None;
    if boot.first_admin_token && store.token_count().await? == 0 {
        let first = Actor { name: "hyperfleet up", request_id: None };
        let (_, secret) = core.create_token(first, "admin", Role::Admin, None).await?;
        initial_admin_token = Some(secret);
    }
    if boot.first_health_run && components.worker {
        let origin = hyperfleet_core::app::Origin {
            requested_by: "hyperfleet up".into(),
            request_id: None,
            idempotency_key: None,
            max_attempts: settings.retry.max_attempts as i32,
        };
        core.queue_health_run(&settings.worker_host(), origin).await.context("queueing the first health run")?;
    }
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut api_addr = None;
    if components.api {
        let listener = tokio::net::TcpListener::bind(settings.api.listen)
            .await
            .with_context(|| format!("binding {}", settings.api.listen))?;
        let addr = listener.local_addr()?;
        api_addr = Some(addr);
        let state = AppState::new(
            core.clone(),
            settings.retry.max_attempts as i32,
            settings.api.rate_limit_per_s,
            settings.api.rate_limit_burst,
        )
        .with_alerts(settings.alerts.clone())
        .with_auth_failure_limit(settings.api.auth_failures_per_s, settings.api.auth_failure_burst)
        .with_shutdown(shutdown.clone());
        let limits = Limits {
            body_bytes: settings.api.body_limit_bytes,
            request_timeout: Duration::from_secs(settings.api.request_timeout_s.max(1)),
            body_timeout: Duration::from_secs(settings.api.body_timeout_s.max(1)),
        };
        let connections = hyperfleet_api::server::ConnectionLimits {
            header_timeout: Duration::from_secs(settings.api.header_timeout_s.max(1)),
            idle_timeout: Duration::from_secs(settings.api.idle_timeout_s.max(1)),
            max_connections: settings.api.max_connections as usize,
            http2_max_streams: settings.api.http2_max_streams.max(1),
        };
        let app = hyperfleet_api::app(state, limits);
        let stop = shutdown.clone();
        let tls = match &settings.api.tls {
            Some(tls) => Some(tls_config(tls)?),
            None => None,
        };
        tasks.spawn(async move {
            use hyperfleet_api::server::serve;
            use poem::listener::AcceptorExt;
            let acceptor = poem::listener::TcpAcceptor::from_std(listener.into_std()?)?;
            let grace = Duration::from_secs(10);
            match tls {
                Some(config) => {
                    let acceptor = acceptor.rustls(futures_util::stream::iter([config]));
                    serve(acceptor, app, connections, stop, grace).await?;
                }
                None => serve(acceptor, app, connections, stop, grace).await?,
            }
            Ok(())
        });
    }
    let mut metrics_addr = None;
    if let (true, Some(listen)) = (components.api, settings.metrics.listen) {
        let listener = tokio::net::TcpListener::bind(listen.0)
            .await
            .with_context(|| format!("binding metrics.listen {}", listen.0))?;
        let addr = listener.local_addr()?;
        tracing::info!("metrics listener (no authentication) on http://{addr}/metrics");
        metrics_addr = Some(addr);
        let endpoint = hyperfleet_api::metrics_listener(core.clone());
        // A scraper or two: few connections, so an unauthenticated client
        // cannot hold many scrapes' worth of queries open at once.
        let connections = hyperfleet_api::server::ConnectionLimits {
            header_timeout: Duration::from_secs(settings.api.header_timeout_s.max(1)),
            idle_timeout: Duration::from_secs(settings.api.idle_timeout_s.max(1)),
            max_connections: 16,
            http2_max_streams: 4,
        };
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let acceptor = poem::listener::TcpAcceptor::from_std(listener.into_std()?)?;
            hyperfleet_api::server::serve(acceptor, endpoint, connections, stop, Duration::from_secs(2)).await?;
            Ok(())
        });
    }
    if components.worker {
        let mut cfg = WorkerConfig::from_settings(settings);
        // Links in notifications point at this API when it listens on an ephemeral port.
        if let (None, Some(addr)) = (&settings.alerts.public_url, api_addr) {
            let scheme = if settings.api.tls.is_some() { "https" } else { "http" };
            cfg.public_url = format!("{scheme}://{addr}");
        }
        tasks.spawn(hyperfleet_worker::run(store.clone(), cfg, shutdown.clone()));
    }
    if components.scheduler {
        tasks.spawn(hyperfleet_scheduler::run(
            core.clone(),
            std::sync::Arc::new(settings.alerts.clone()),
            shutdown.clone(),
        ));
    }
    Ok(Running { api_addr, metrics_addr, store, initial_admin_token, shutdown, tasks })
}

/// The rustls configuration for `[api.tls]`, read once at start.
fn tls_config(tls: &hyperfleet_core::settings::TlsSettings) -> anyhow::Result<poem::listener::RustlsConfig> {
    let cert = std::fs::read(&tls.cert).with_context(|| format!("reading api.tls.cert {}", tls.cert.display()))?;
    let key = std::fs::read(&tls.key).with_context(|| format!("reading api.tls.key {}", tls.key.display()))?;
    Ok(poem::listener::RustlsConfig::new().fallback(poem::listener::RustlsCertificate::new().cert(cert).key(key)))
}
