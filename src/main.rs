//! The `hyperfleet` command: CLI wiring only.

mod alert_cli;
mod audit_cli;
mod client_cli;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hyperfleet::{Bootstrap, Components, bench};
use hyperfleet_core::settings::Settings;

#[derive(Debug, Parser)]
#[command(name = "hyperfleet", version, about = "Management plane for libvirt/KVM hypervisor fleets")]
struct Cli {
    /// TOML configuration file; `HYPERFLEET__SECTION__KEY` environment variables override it.
    #[arg(long, global = true, env = "HYPERFLEET_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything in one process: API, worker and scheduler (migrates first).
    Up,
    /// The HTTP API only.
    Api,
    /// A worker bound to one hypervisor host.
    Worker {
        /// This worker's host name (overrides `worker.host`).
        #[arg(long)]
        host: Option<String>,
    },
    /// The scheduler only.
    Scheduler,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage API tokens directly in the database (to bootstrap; same config as the server).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Benchmark the alert pipeline (raise → router → delivery to a loopback webhook) and print figures.
    BenchAlerts {
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 1000)]
        alerts: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Instead: route `--alerts` events one at a time against this many
        /// silences of 16 regex matchers each, timed per event.
        #[arg(long)]
        silences: Option<usize>,
    },
    /// Fill a ledger with finished operations and time the dashboard's pages and the API's lists over it.
    BenchLedger {
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 1_000_000)]
        ops: i64,
        /// Spread the operations over this many days before now.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Timed requests per page.
        #[arg(long, default_value_t = 20)]
        samples: usize,
        /// Time the database as it is, adding no operations.
        #[arg(long)]
        no_fill: bool,
    },
    /// Raise a manual alert through the API (`alert_manager.sh <level> <title> <message>`).
    Alert(alert_cli::AlertArgs),
    /// VMs through the API: list, show, and power actions (`--wait` follows them).
    Vm(client_cli::vm::VmArgs),
    /// The operation ledger through the API: list, show, watch, cancel, retry.
    Ops(client_cli::ops::OpsArgs),
    /// Every host's health checks through the API.
    Health(client_cli::health::HealthArgs),
    /// Schedules through the API: list, trigger.
    Schedules(client_cli::schedules::SchedulesArgs),
    /// Benchmark the queue with `noop` operations and print figures.
    Bench {
        #[arg(long)]
        database: String,
        /// `submit`: through the submit path while the worker runs them;
        /// `drain`: all inserted by one statement, then drained.
        #[arg(long, value_enum, default_value_t = bench::Mode::Submit)]
        mode: bench::Mode,
        /// How many operations (drain: up to 1,000,000 and more).
        #[arg(long, default_value_t = 2000)]
        ops: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 200)]
        idle_samples: usize,
        /// First write this many finished operations (with attempt rows): the ledger's history.
        #[arg(long, default_value_t = 0)]
        prefill_finished: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark backup + checksum verification of a 1 GiB qcow2 disk beside `cp` and `sha256sum`, and the boot test.
    BenchBackups {
        /// Scratch space (libvirt's QEMU user must reach it for the boot test).
        #[arg(long, default_value = "/var/tmp")]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        #[arg(long, default_value = "qemu:///system")]
        libvirt_uri: String,
        /// Skip the boot test.
        #[arg(long)]
        no_boot: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (alone, on standard output). It is not shown again.
    Create {
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// Lifetime such as 30d, 12h or 90m.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id or name.
    Revoke { token: String },
}

pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<hyperfleet_core::store::Store> {
    let store =
        hyperfleet_core::store::Store::connect(&settings.database_url(), hyperfleet_core::store::PoolConfig::new(2))
            .await?;
    store.migrate().await?;
    Ok(store)
}

async fn token_command(settings: &Settings, command: TokenCommand) -> anyhow::Result<()> {
    use hyperfleet_core::{app::Actor, auth};
    let store = open_store(settings).await?;
    let app = hyperfleet_core::app::App::new(store.clone()).with_audit_key(settings.audit_key()?);
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "root".into()));
    let by = Actor { name: &actor, request_id: None };
    match command {
        TokenCommand::Create { name, role, expires_in } => {
            let role = auth::Role::parse(&role)?;
            let expires_in = expires_in.as_deref().map(auth::parse_token_lifetime).transpose()?;
            let (_, secret) = app.create_token(by, &name, role, expires_in).await?;
            println!("{secret}");
        }
        TokenCommand::List => {
            println!("{:<38} {:<20} {:<9} {:<13} {:<28} STATE", "ID", "NAME", "ROLE", "PREFIX", "CREATED");
            let now = hyperfleet_core::Timestamp::now();
            for t in store.tokens().await? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked".to_owned(),
                    (None, Some(e)) if e <= now => "expired".to_owned(),
                    (None, Some(e)) => format!("expires {e}"),
                    (None, None) => "active".to_owned(),
                };
                println!(
                    "{:<38} {:<20} {:<9} {:<13} {:<28} {state}",
                    t.id,
                    t.name,
                    t.role,
                    t.prefix,
                    t.created_at.to_string()
                );
            }
        }
        TokenCommand::Revoke { token } => {
            let id = match hyperfleet_core::TokenId::parse(&token) {
                Ok(id) => id,
                Err(_) => store
                    .tokens()
                    .await?
                    .into_iter()
                    .find(|t| t.name == token)
                    .map(|t| t.id)
                    .with_context(|| format!("no token with id or name `{token}`"))?,
            };
            let t = app.revoke_token(by, id).await?;
            println!("revoked {} ({})", t.name, t.id);
        }
    }
    Ok(())
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HYPERFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn serve(settings: Settings, components: Components, boot: Bootstrap) -> anyhow::Result<()> {
    let mut running = hyperfleet::start(&settings, components, boot).await?;
    if let Some(addr) = running.api_addr {
        let scheme = if settings.api.tls.is_some() { "https" } else { "http" };
        // The first admin token goes to standard output alone, never through
        // the log: logs are shipped and kept where secrets must not be.
        let token = if running.initial_admin_token.is_some() {
            "; the first admin token is on standard output"
        } else {
            "; use a token from `hyperfleet token create`"
        };
        tracing::info!("Hyperfleet API listening on {scheme}://{addr}/ (docs: {scheme}://{addr}/docs){token}");
        println!(
            "Hyperfleet is up: open {scheme}://{addr}/ in a browser for the dashboard (log in with an API token), \
             or point curl at {scheme}://{addr}/api/v1 (API docs: {scheme}://{addr}/docs)"
        );
        if let Some(t) = &running.initial_admin_token {
            println!("Admin token (shown once, store it now; it also logs in to the dashboard): {t}");
            println!("  curl -H \"Authorization: Bearer $TOKEN\" {scheme}://{addr}/api/v1/vms");
        }
    }
    let token = running.shutdown_token();
    // Past the grace period, handing back and closing take a few bounded
    // writes; this is the backstop should they not end.
    let stop_limit = std::time::Duration::from_secs(settings.worker.shutdown_grace_s + 15);
    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutdown requested: finishing running operations");
            match tokio::time::timeout(stop_limit, running.stop()).await {
                Ok(stopped) => stopped,
                Err(_) => anyhow::bail!(
                    "stopping took longer than {stop_limit:?}; exiting anyway (leases expire and the reaper retries)"
                ),
            }
        }
        r = running.wait() => { token.cancel(); r }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Both rustls back ends are linked (through different dependencies); pick one
    // for the clients that ask for the process default (SMTP STARTTLS/TLS, webhooks).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref(), std::env::vars()).context("loading configuration")?;
    match cli.command {
        Command::Up => {
            init_logging(&settings);
            serve(
                settings,
                Components::ALL,
                Bootstrap { migrate: true, first_admin_token: true, first_health_run: true, ..Default::default() },
            )
            .await
        }
        Command::Api => {
            init_logging(&settings);
            serve(settings, Components { api: true, worker: false, scheduler: false }, Bootstrap::default()).await
        }
        Command::Worker { host } => {
            if let Some(host) = host {
                settings.worker.host = Some(host);
            }
            init_logging(&settings);
            serve(settings, Components { api: false, worker: true, scheduler: false }, Bootstrap::default()).await
        }
        Command::Scheduler => {
            init_logging(&settings);
            serve(settings, Components { api: false, worker: false, scheduler: true }, Bootstrap::default()).await
        }
        Command::Migrate => {
            init_logging(&settings);
            let store = hyperfleet_core::store::Store::connect(
                &settings.database_url(),
                hyperfleet_core::store::PoolConfig::new(2),
            )
            .await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CheckConfig => {
            print!("{}", settings.to_redacted_toml());
            Ok(())
        }
        Command::Token { command } => token_command(&settings, command).await,
        Command::Audit { command } => audit_cli::run(&settings, command).await,
        Command::BenchAlerts { database, alerts, concurrency, silences: None } => {
            let report = hyperfleet::bench_alerts::run(&database, alerts, concurrency).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::BenchAlerts { database, alerts, silences: Some(silences), .. } => {
            let report = hyperfleet::bench_silences::run(&database, silences, alerts).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::BenchLedger { database, ops, days, samples, no_fill } => {
            let args = hyperfleet::bench_ledger::LedgerBenchArgs { database, ops, days, samples, no_fill };
            println!("{}", serde_json::to_string_pretty(&hyperfleet::bench_ledger::run(args).await?)?);
            Ok(())
        }
        Command::Alert(args) => alert_cli::run(args, settings.public_url()).await,
        Command::Vm(args) => client_cli::exit(client_cli::vm::run(args, settings.public_url()).await),
        Command::Ops(args) => client_cli::exit(client_cli::ops::run(args, settings.public_url()).await),
        Command::Health(args) => client_cli::exit(client_cli::health::run(args, settings.public_url()).await),
        Command::Schedules(args) => client_cli::exit(client_cli::schedules::run(args, settings.public_url()).await),
        Command::Openapi => {
            println!("{}", hyperfleet_api::spec_json()?);
            Ok(())
        }
        Command::BenchBackups { dir, size_mib, libvirt_uri, no_boot } => {
            let args = hyperfleet::bench_backups::BackupBenchArgs { dir, size_mib, libvirt_uri, no_boot };
            println!("{}", serde_json::to_string_pretty(&hyperfleet::bench_backups::run(args).await?)?);
            Ok(())
        }
        Command::Bench { database, mode, ops, concurrency, idle_samples, prefill_finished, json } => {
            let args = bench::BenchArgs { database, mode, ops, concurrency, idle_samples, prefill_finished };
            let report = bench::run(args).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
    }
}
