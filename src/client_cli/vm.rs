//! `hyperfleet vm list|show|start|shutdown|reboot|destroy|suspend|resume`.

use hyperfleet_client::types::{self, OperationView, PowerRequest, ShutdownRequest};

use super::{
    Conn, Ctx, Exit, Failure, Outcome,
    render::{table, time},
    wait::{WaitArgs, accepted},
};

#[derive(Debug, clap::Args)]
pub struct VmArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: VmCommand,
}

/// Which VM: its name, and its host when the name exists on several.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The VM's name.
    pub name: String,
    /// The VM's host (needed when the name exists on several hosts).
    #[arg(long)]
    pub host: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum VmCommand {
    /// Every VM in the inventory.
    List,
    /// One VM.
    Show(Target),
    /// Start a VM.
    Start(Power),
    /// Ask the guest to shut down; with --force, destroy it after the timeout.
    Shutdown {
        #[command(flatten)]
        target: Target,
        /// Seconds the guest has to reach SHUTOFF (server default 120).
        #[arg(long, value_name = "S")]
        timeout: Option<u32>,
        /// Destroy the VM if it has not shut down when the timeout expires.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Reboot a VM.
    Reboot(Power),
    /// Power a VM off at once (the guest is not asked).
    Destroy(Power),
    /// Pause a running VM.
    Suspend(Power),
    /// Resume a paused VM.
    Resume(Power),
}

#[derive(Debug, clap::Args)]
pub struct Power {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Sends one power action (each has its own generated builder type).
macro_rules! power {
    ($call:expr, $p:expr) => {{
        let mut call = $call.name($p.target.name.as_str()).body(PowerRequest {});
        if let Some(h) = &$p.target.host {
            call = call.host(h.as_str());
        }
        (call.send().await?.into_inner(), $p.wait)
    }};
}

/// Refuses a name or host the spec's pattern does not allow, saying which,
/// before anything is sent (the builders would only say "conversion failed").
fn check(target: &Target) -> Outcome {
    let name = types::VmGetName::try_from(target.name.as_str())
        .map_err(|e| Failure::new(Exit::Usage, format!("VM name `{}`: {e}", target.name)));
    let host = target
        .host
        .as_deref()
        .map(|h| types::VmGetHost::try_from(h).map_err(|e| Failure::new(Exit::Usage, format!("host `{h}`: {e}"))));
    name.map(drop)?;
    host.transpose().map(drop)
}

pub async fn run(args: VmArgs, default_url: String) -> Outcome {
    let ctx = Ctx::connect(&args.conn, default_url)?;
    match &args.command {
        VmCommand::List => {}
        VmCommand::Show(t) | VmCommand::Shutdown { target: t, .. } => check(t)?,
        VmCommand::Start(p)
        | VmCommand::Reboot(p)
        | VmCommand::Destroy(p)
        | VmCommand::Suspend(p)
        | VmCommand::Resume(p) => check(&p.target)?,
    }
    let c = &ctx.client;
    let (op, wait): (OperationView, WaitArgs) = match args.command {
        VmCommand::List => return list(&ctx).await,
        VmCommand::Show(t) => return show(&ctx, t).await,
        VmCommand::Shutdown { target, timeout, force, wait } => {
            let timeout_s = timeout
                .map(|s| {
                    std::num::NonZeroU32::new(s)
                        .ok_or_else(|| Failure::new(Exit::Usage, "--timeout must be at least 1 second"))
                })
                .transpose()?;
            let body = ShutdownRequest { force: force.then_some(true), timeout_s };
            let mut call = c.vm_shutdown().name(target.name.as_str()).body(body);
            if let Some(h) = &target.host {
                call = call.host(h.as_str());
            }
            (call.send().await?.into_inner(), wait)
        }
        VmCommand::Start(p) => power!(c.vm_start(), p),
        VmCommand::Reboot(p) => power!(c.vm_reboot(), p),
        VmCommand::Destroy(p) => power!(c.vm_destroy(), p),
        VmCommand::Suspend(p) => power!(c.vm_suspend(), p),
        VmCommand::Resume(p) => power!(c.vm_resume(), p),
    };
    accepted(&ctx, op, wait.limit()).await
}

async fn list(ctx: &Ctx) -> Outcome {
    let vms = ctx.client.vm_list().send().await?.into_inner();
    if ctx.json {
        return ctx.print_json(&vms);
    }
    let rows: Vec<Vec<String>> = vms
        .items
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.host.clone(),
                v.state.to_string(),
                v.vcpus.to_string(),
                format!("{} MiB", v.memory_kib / 1024),
                if v.autostart { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    table(&["NAME", "HOST", "STATE", "VCPUS", "MEMORY", "AUTOSTART"], &rows);
    Ok(())
}

async fn show(ctx: &Ctx, t: Target) -> Outcome {
    let mut call = ctx.client.vm_get().name(t.name.as_str());
    if let Some(h) = &t.host {
        call = call.host(h.as_str());
    }
    let v = call.send().await?.into_inner();
    if ctx.json {
        return ctx.print_json(&v);
    }
    let reason = if v.state_reason.is_empty() { String::new() } else { format!(" ({})", v.state_reason) };
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("name        {}", v.name);
    println!("host        {}", v.host);
    println!("state       {}{reason}", v.state);
    println!("uuid        {}", v.uuid);
    println!("vcpus       {}", v.vcpus);
    println!("memory      {} MiB", v.memory_kib / 1024);
    println!("autostart   {}", yes(v.autostart));
    println!("persistent  {}", yes(v.persistent));
    println!("updated     {}", time(&v.updated_at));
    Ok(())
}
