//! `hyperfleet schedules list|trigger`.

use hyperfleet_client::types::ScheduleView;
use uuid::Uuid;

use super::{
    Conn, Ctx, Exit, Failure, Outcome,
    render::{opt_time, table},
    wait::{WaitArgs, accepted},
};

#[derive(Debug, clap::Args)]
pub struct SchedulesArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: SchedulesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SchedulesCommand {
    /// Every schedule with its next and last fire.
    List,
    /// Fire a schedule now (its operation is queued like a scheduled one).
    Trigger {
        /// The schedule's id or name.
        schedule: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

pub async fn run(args: SchedulesArgs, default_url: String) -> Outcome {
    let ctx = Ctx::connect(&args.conn, default_url)?;
    let schedules = || async { Ok::<_, Failure>(ctx.client.schedule_list().send().await?.into_inner().items) };
    match args.command {
        SchedulesCommand::List => {
            let items = schedules().await?;
            if ctx.json {
                return ctx.print_json(&items);
            }
            table(
                &["ID", "NAME", "KIND", "HOST", "CRON", "ENABLED", "NEXT FIRE", "LAST FIRE", "LAST OUTCOME"],
                &items.iter().map(row).collect::<Vec<_>>(),
            );
            Ok(())
        }
        SchedulesCommand::Trigger { schedule, wait } => {
            let id = match Uuid::parse_str(&schedule) {
                Ok(id) => id,
                Err(_) => {
                    schedules().await?.into_iter().find(|s| s.name == schedule).map(|s| s.id).ok_or_else(|| {
                        Failure::new(Exit::Refused, format!("no schedule with id or name `{schedule}`"))
                    })?
                }
            };
            let op = ctx.client.schedule_trigger().id(id).send().await?.into_inner();
            accepted(&ctx, op, wait.limit()).await
        }
    }
}

fn row(s: &ScheduleView) -> Vec<String> {
    vec![
        s.id.to_string(),
        s.name.clone(),
        s.kind.to_string(),
        s.host.clone().unwrap_or_else(|| "every host".into()),
        format!("{} ({})", s.cron, s.timezone),
        if s.enabled { "yes" } else { "no" }.to_owned(),
        opt_time(s.next_fire_at.as_ref()),
        opt_time(s.last_fire_at.as_ref()),
        s.last_outcome.map_or_else(|| "-".to_owned(), |o| o.to_string()),
    ]
}
