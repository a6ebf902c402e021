//! `hyperfleet audit checkpoint|verify`: the audit chain from the command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use hyperfleet_core::{app::App, audit::Checkpoint, settings::Settings, store::ChainCheck};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the chain's head (sequence, seal, and the checkpoint's own seal)
    /// as JSON: keep it outside the database, to verify against later.
    Checkpoint,
    /// Walk the chain and report the first broken link; exits 1 if broken.
    Verify {
        /// A checkpoint printed earlier: also detects rows cut off the end
        /// and a replaced head since then.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
}

pub async fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<()> {
    let store = crate::open_store(settings).await?;
    let app = App::new(store).with_audit_key(settings.audit_key().context("reading the audit key")?);
    match command {
        AuditCommand::Checkpoint => {
            println!("{}", serde_json::to_string(&app.audit_checkpoint().await?)?);
            Ok(())
        }
        AuditCommand::Verify { checkpoint } => {
            let checkpoint: Option<Checkpoint> = match checkpoint {
                Some(file) => {
                    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    Some(
                        serde_json::from_str(&text)
                            .with_context(|| format!("{} is not a checkpoint", file.display()))?,
                    )
                }
                None => None,
            };
            match app.verify_audit_chain(checkpoint.as_ref()).await? {
                ChainCheck::Intact { events } => {
                    let against = checkpoint.map(|c| format!(", checkpoint {} holds", c.sequence)).unwrap_or_default();
                    println!("audit chain intact: {events} events{against}");
                    Ok(())
                }
                ChainCheck::Broken { id, reason } => {
                    println!("audit chain BROKEN at event {id}: {reason}");
                    std::process::exit(1);
                }
            }
        }
    }
}
