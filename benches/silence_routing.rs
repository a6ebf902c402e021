//! `cargo bench --bench silence_routing -- --database URL [--silences N] [--events N]`:
//! routing latency per alert event against N regex silences (see
//! `hyperfleet::bench_silences`). Prints one JSON object.

fn main() -> anyhow::Result<()> {
    let mut database = None;
    let (mut silences, mut events) = (100, 500);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--database" => database = Some(value()?),
            "--silences" => silences = value()?.parse()?,
            "--events" => events = value()?.parse()?,
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            _ => anyhow::bail!(
                "usage: silence_routing --database URL [--silences N (100)] [--events N (500)]; unknown `{arg}`"
            ),
        }
    }
    let database = database.ok_or_else(|| anyhow::anyhow!("--database URL is required (a scratch database)"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(hyperfleet::bench_silences::run(&database, silences, events))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
