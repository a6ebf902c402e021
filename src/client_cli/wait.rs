//! `--wait` and `ops watch`: follow an operation until it finishes. On a
//! terminal a spinner shows its status and attempt; otherwise each change is
//! one plain line on standard error. The end is printed once: the result on
//! standard output (0), or why it failed on standard error (non-zero).

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use hyperfleet_client::types::{OperationStatus, OperationView};
use uuid::Uuid;

use super::{
    Ctx, Exit, Failure, Outcome,
    render::{failure_line, is_finished, progress, success_lines, what},
};

const POLL: Duration = Duration::from_millis(250);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// How progress is shown while waiting.
enum Show {
    Spinner { frame: usize },
    Lines { last: Option<String> },
    Quiet,
}

impl Show {
    fn new(json: bool) -> Self {
        if json {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Spinner { frame: 0 }
        } else {
            Self::Lines { last: None }
        }
    }

    fn update(&mut self, op: &OperationView, waited: Duration) {
        let now = format!("{}: {}", what(op), progress(op));
        match self {
            Self::Spinner { frame } => {
                *frame = (*frame + 1) % FRAMES.len();
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{} {now} ({}s)", FRAMES[*frame], waited.as_secs());
                let _ = err.flush();
            }
            Self::Lines { last } => {
                if last.as_deref() != Some(now.as_str()) {
                    eprintln!("{now}");
                    *last = Some(now);
                }
            }
            Self::Quiet => {}
        }
    }

    fn clear(&self) {
        if let Self::Spinner { .. } = self {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// Follows operation `id` for at most `limit`, then reports how it ended.
pub async fn follow(ctx: &Ctx, id: Uuid, limit: Duration) -> Outcome {
    let started = Instant::now();
    let mut show = Show::new(ctx.json);
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let op = loop {
        let op = ctx.client.operation_get().id(id).send().await.map_err(|e| {
            show.clear();
            Failure::from(e)
        })?;
        let op = op.into_inner();
        if is_finished(op.status) {
            show.clear();
            break op;
        }
        show.update(&op, started.elapsed());
        if started.elapsed() >= limit {
            show.clear();
            if ctx.json {
                ctx.print_json(&op)?;
            }
            return Err(Failure::new(
                Exit::StillRunning,
                format!(
                    "still {} after {} s ({}, operation {id}); follow it with `hyperfleet ops watch {id}`",
                    progress(&op),
                    limit.as_secs(),
                    what(&op)
                ),
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = &mut interrupted => {
                show.clear();
                return Err(Failure::new(
                    Exit::StillRunning,
                    format!("stopped waiting; operation {id} goes on (`hyperfleet ops watch {id}`)"),
                ));
            }
        }
    };
    report(ctx, &op)
}

/// Prints how a finished operation ended; a failure or cancellation is an error.
pub fn report(ctx: &Ctx, op: &OperationView) -> Outcome {
    if ctx.json {
        ctx.print_json(op)?;
    } else if op.status == OperationStatus::Succeeded {
        for line in success_lines(op) {
            println!("{line}");
        }
    }
    match op.status {
        OperationStatus::Succeeded => Ok(()),
        _ => Err(Failure::new(Exit::Failed, failure_line(op))),
    }
}

/// After a request that queued `op`: follow it when asked, else say it is queued.
pub async fn accepted(ctx: &Ctx, op: OperationView, wait: Option<Duration>) -> Outcome {
    match wait {
        Some(limit) => follow(ctx, op.id, limit).await,
        None if ctx.json => ctx.print_json(&op),
        None => {
            println!("{}: {} (operation {})", what(&op), progress(&op), op.id);
            for w in &op.warnings {
                println!("warning: {w}");
            }
            Ok(())
        }
    }
}

/// `--wait` and `--wait-timeout`, shared by every command that queues work.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Wait until the operation finishes; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds (exit 3; the operation goes on).
    #[arg(long, value_name = "S", default_value_t = 600, requires = "wait")]
    pub wait_timeout: u64,
}

impl WaitArgs {
    pub fn limit(&self) -> Option<Duration> {
        self.wait.then(|| Duration::from_secs(self.wait_timeout))
    }
}
