//! `hyperfleet health`: every host's checks as the fleet monitor holds them.

use hyperfleet_client::types::HealthStatus;

use super::{
    Conn, Ctx, Exit, Failure, Outcome,
    render::{opt_time, table, time},
};

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Exit by the overall status, like the seed's health check: 0 ok, 1 warn, 2 error.
    #[arg(long)]
    pub check: bool,
}

pub async fn run(args: HealthArgs, default_url: String) -> Outcome {
    let ctx = Ctx::connect(&args.conn, default_url)?;
    let mut health = ctx.client.health_get().send().await?.into_inner();
    if let Some(host) = &args.host {
        health.hosts.retain(|h| &h.host == host);
        health.events.retain(|e| &e.host == host);
        if health.hosts.is_empty() {
            return Err(Failure::new(Exit::Refused, format!("no health checks of host `{host}` yet")));
        }
        health.status = health.hosts.iter().map(|h| h.status).max_by_key(|s| rank(*s)).unwrap_or(HealthStatus::Ok);
    }
    if ctx.json {
        ctx.print_json(&health)?;
    } else {
        println!("fleet: {}", health.status);
        let mut rows = Vec::new();
        for h in &health.hosts {
            for c in &h.checks {
                let pending = match (&c.pending, &c.pending_since) {
                    (Some(p), since) => format!("{p} since {}", opt_time(since.as_ref())),
                    (None, _) => String::new(),
                };
                rows.push(vec![h.host.clone(), c.check.clone(), c.status.to_string(), time(&c.since), pending]);
            }
        }
        if rows.is_empty() {
            println!("no health run has finished yet");
        } else {
            table(&["HOST", "CHECK", "STATUS", "SINCE", "PENDING"], &rows);
        }
        if !health.events.is_empty() {
            println!();
            println!("latest changes:");
            for e in health.events.iter().take(10) {
                println!(
                    "  {} {} {}: {} -> {}: {}",
                    time(&e.at),
                    e.host,
                    e.check,
                    e.from_status,
                    e.to_status,
                    e.message
                );
            }
        }
    }
    match (args.check, health.status) {
        (false, _) | (true, HealthStatus::Ok) => Ok(()),
        // The status is already printed; the line only says why the exit code.
        (true, HealthStatus::Warn) => Err(Failure::new(Exit::HealthWarn, "health: warn")),
        (true, HealthStatus::Error) => Err(Failure::new(Exit::HealthError, "health: error")),
    }
}

fn rank(s: HealthStatus) -> u8 {
    match s {
        HealthStatus::Ok => 0,
        HealthStatus::Warn => 1,
        HealthStatus::Error => 2,
    }
}
