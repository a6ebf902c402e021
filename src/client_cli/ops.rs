//! `hyperfleet ops list|show|watch|cancel|retry`: the ledger from a shell.

use hyperfleet_client::types::{self, OperationView};
use uuid::Uuid;

use super::{
    Conn, Ctx, Exit, Failure, Outcome,
    render::{opt_time, progress, table, time, what},
    wait::{WaitArgs, accepted, follow},
};

#[derive(Debug, clap::Args)]
pub struct OpsArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: OpsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum OpsCommand {
    /// Operations, newest first, one page at a time.
    List(ListArgs),
    /// One operation with every attempt.
    Show {
        /// The operation's id.
        id: Uuid,
    },
    /// Follow an operation until it finishes (exit 0 only if it succeeded).
    Watch {
        /// The operation's id.
        id: Uuid,
        /// Give up after this many seconds (exit 3; the operation goes on).
        #[arg(long, value_name = "S", default_value_t = 600)]
        timeout: u64,
    },
    /// Cancel a queued or retrying operation (a running one stops at its next check).
    Cancel {
        /// The operation's id.
        id: Uuid,
    },
    /// Queue a new attempt of a failed or cancelled operation.
    Retry {
        /// The failed or cancelled operation's id.
        id: Uuid,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// queued, running, retrying, succeeded, failed or cancelled.
    #[arg(long, value_parser = status)]
    pub status: Option<types::OperationStatus>,
    /// An operation kind such as vm.start or health.run.
    #[arg(long, value_parser = kind)]
    pub kind: Option<types::OperationKind>,
    #[arg(long)]
    pub vm: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    /// Only operations created at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only operations created before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Page size (1-500).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<Uuid>,
}

/// `--status`: read as the server reads it (its error names every value),
/// then as the generated type.
fn status(text: &str) -> Result<types::OperationStatus, String> {
    let known = hyperfleet_core::operation::OperationStatus::parse(text).map_err(|e| e.to_string())?;
    known.as_str().parse().map_err(|_| format!("`{text}` is not in the spec this client was built from"))
}

/// `--kind`, likewise.
fn kind(text: &str) -> Result<types::OperationKind, String> {
    let known = hyperfleet_core::operation::OperationKind::parse(text).map_err(|e| e.to_string())?;
    known.as_str().parse().map_err(|_| format!("`{text}` is not in the spec this client was built from"))
}

pub async fn run(args: OpsArgs, default_url: String) -> Outcome {
    let ctx = Ctx::connect(&args.conn, default_url)?;
    match args.command {
        OpsCommand::List(l) => list(&ctx, l).await,
        OpsCommand::Show { id } => {
            let op = ctx.client.operation_get().id(id).send().await?.into_inner();
            if ctx.json { ctx.print_json(&op) } else { show(&op) }
        }
        OpsCommand::Watch { id, timeout } => follow(&ctx, id, std::time::Duration::from_secs(timeout)).await,
        OpsCommand::Cancel { id } => {
            let op = ctx.client.operation_cancel().id(id).send().await?.into_inner();
            if ctx.json {
                return ctx.print_json(&op);
            }
            if op.status == types::OperationStatus::Cancelled {
                println!("cancelled: {} (operation {})", what(&op), op.id);
                return Ok(());
            }
            println!("cancel requested: {} is {} (operation {})", what(&op), progress(&op), op.id);
            Ok(())
        }
        OpsCommand::Retry { id, wait } => {
            let op = ctx.client.operation_retry().id(id).send().await?.into_inner();
            accepted(&ctx, op, wait.limit()).await
        }
    }
}

async fn list(ctx: &Ctx, l: ListArgs) -> Outcome {
    let limit = std::num::NonZeroU32::new(l.limit)
        .filter(|n| n.get() <= 500)
        .ok_or_else(|| Failure::new(Exit::Usage, "--limit must be 1-500"))?;
    let mut call = ctx.client.operation_list().limit(limit);
    if let Some(s) = l.status {
        call = call.status(s);
    }
    if let Some(k) = l.kind {
        call = call.kind(k);
    }
    if let Some(vm) = &l.vm {
        call = call.vm(vm.as_str());
    }
    if let Some(h) = &l.host {
        call = call.host(h.as_str());
    }
    if let Some(t) = l.since {
        call = call.since(t);
    }
    if let Some(t) = l.until {
        call = call.until(t);
    }
    if let Some(c) = l.cursor {
        call = call.cursor(c);
    }
    let page = call.send().await?.into_inner();
    if ctx.json {
        return ctx.print_json(&page);
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|op| {
            vec![
                op.id.to_string(),
                op.kind.to_string(),
                op.status.to_string(),
                format!("{}/{}", op.attempt_count, op.max_attempts),
                op.host.clone().unwrap_or_else(|| "-".into()),
                op.vm.clone().unwrap_or_else(|| "-".into()),
                time(&op.created_at),
            ]
        })
        .collect();
    table(&["ID", "KIND", "STATUS", "ATTEMPTS", "HOST", "VM", "CREATED"], &rows);
    if let Some(next) = &page.next_cursor {
        eprintln!("more: --cursor {next}");
    }
    Ok(())
}

fn show(op: &OperationView) -> Outcome {
    println!("operation   {}", op.id);
    println!("what        {}", what(op));
    println!("status      {}", progress(op));
    println!("requested   by {} at {}", op.requested_by, time(&op.created_at));
    if let Some(retry_of) = op.retry_of {
        println!("retry of    {retry_of}");
    }
    if let Some(schedule) = op.schedule_id {
        println!("schedule    {schedule}");
    }
    if let Some(next) = &op.next_attempt_at {
        println!("next try    {}", time(next));
    }
    if let Some(t) = &op.finished_at {
        println!("finished    {}", time(t));
    }
    if let Some(class) = op.error_class {
        println!("error       {class}: {}", op.last_error.as_deref().unwrap_or(""));
    }
    if let Some(by) = &op.cancelled_by {
        println!("cancelled   by {by}");
    }
    println!("params      {}", op.params);
    if let Some(result) = op.result.as_ref().filter(|r| !r.is_null()) {
        println!("result      {result}");
    }
    for w in &op.warnings {
        println!("warning     {w}");
    }
    if !op.attempts.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = op
            .attempts
            .iter()
            .map(|a| {
                let outcome = a.outcome.map_or_else(|| "running".to_owned(), |o| o.to_string());
                let why = match (a.error_class, &a.message) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.to_string(),
                    (None, Some(m)) => m.clone(),
                    (None, None) => String::new(),
                };
                vec![
                    a.attempt.to_string(),
                    a.host.clone(),
                    a.worker.clone(),
                    time(&a.started_at),
                    opt_time(a.finished_at.as_ref()),
                    outcome,
                    why,
                ]
            })
            .collect();
        table(&["#", "HOST", "WORKER", "STARTED", "FINISHED", "OUTCOME", "ERROR"], &rows);
    }
    Ok(())
}
