//! The `hyperfleet` command: CLI wiring only.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hyperfleet::{Components, bench};
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
    /// Benchmark the queue with `noop` operations and print figures.
    Bench {
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 2000)]
        ops: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 200)]
        idle_samples: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
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

async fn serve(settings: Settings, components: Components, migrate: bool) -> anyhow::Result<()> {
    let mut running = hyperfleet::start(&settings, components, migrate).await?;
    if let Some(addr) = running.api_addr {
        tracing::info!(
            "Hyperfleet API listening on http://{addr}/ — API docs at http://{addr}/docs, spec at http://{addr}/openapi.json"
        );
        println!("Hyperfleet is up: point curl or a browser at http://{addr}/api/v1/vms (docs: http://{addr}/docs)");
    }
    let token = running.shutdown_token();
    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutdown requested: finishing running operations");
            running.stop().await
        }
        r = running.wait() => { token.cancel(); r }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref(), std::env::vars()).context("loading configuration")?;
    match cli.command {
        Command::Up => {
            init_logging(&settings);
            serve(settings, Components::ALL, true).await
        }
        Command::Api => {
            init_logging(&settings);
            serve(settings, Components { api: true, worker: false, scheduler: false }, false).await
        }
        Command::Worker { host } => {
            if let Some(host) = host {
                settings.worker.host = Some(host);
            }
            init_logging(&settings);
            serve(settings, Components { api: false, worker: true, scheduler: false }, false).await
        }
        Command::Scheduler => {
            init_logging(&settings);
            serve(settings, Components { api: false, worker: false, scheduler: true }, false).await
        }
        Command::Migrate => {
            init_logging(&settings);
            let store = hyperfleet_core::store::Store::connect(&settings.database_url(), 2).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CheckConfig => {
            print!("{}", settings.to_redacted_toml());
            Ok(())
        }
        Command::Openapi => {
            println!("{}", hyperfleet_api::spec_json()?);
            Ok(())
        }
        Command::Bench { database, ops, concurrency, idle_samples, json } => {
            let report = bench::run(bench::BenchArgs { database, ops, concurrency, idle_samples }).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
    }
}
