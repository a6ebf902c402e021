//! `hyperfleet alert <severity> <title> <message>`: raises a manual alert
//! through the API — the seed's `alert_manager.sh <level> <title> <message>`
//! call shape, so its callers port in one line.

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    /// critical, warning or info.
    pub severity: String,
    pub title: String,
    pub message: String,
    /// Alerts with the same key are one alert while it fires (default: source, host and title).
    #[arg(long)]
    pub dedup_key: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    /// A label, `name=value`; repeatable.
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub labels: Vec<String>,
    /// The API's base URL (default: `alerts.public_url`, else `http://<api.listen>`).
    #[arg(long, env = "HYPERFLEET_URL")]
    pub url: Option<String>,
    /// An operator token.
    #[arg(long, env = "HYPERFLEET_TOKEN", hide_env_values = true)]
    pub token: String,
}

pub async fn run(args: AlertArgs, default_url: String) -> anyhow::Result<()> {
    // Refused here, with the known values, rather than sent.
    if let Err(e) = hyperfleet_core::alert::Severity::parse(&args.severity) {
        anyhow::bail!("{}: {e}", e.code());
    }
    let mut labels = serde_json::Map::new();
    for label in &args.labels {
        let (name, value) = label.split_once('=').with_context(|| format!("--label `{label}`: expected NAME=VALUE"))?;
        labels.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let mut body = json!({ "severity": args.severity, "title": args.title, "message": args.message });
    if let Some(key) = args.dedup_key {
        body["dedup_key"] = json!(key);
    }
    if let Some(host) = args.host {
        body["host"] = json!(host);
    }
    if !labels.is_empty() {
        body["labels"] = Value::Object(labels);
    }
    let base = args.url.unwrap_or(default_url);
    let url = format!("{}/api/v1/alerts", base.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&args.token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let code = answer["code"].as_str().unwrap_or("?");
        let message = answer["message"].as_str().unwrap_or("");
        bail!("{status}: {code}: {message}");
    }
    let what = if status.as_u16() == 201 { "raised" } else { "updated" };
    println!(
        "{what} alert {} ({} {}, occurrences {})",
        answer["id"].as_str().unwrap_or("?"),
        answer["severity"].as_str().unwrap_or("?"),
        answer["status"].as_str().unwrap_or("?"),
        answer["occurrences"]
    );
    Ok(())
}
