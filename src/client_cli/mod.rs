//! The API client commands — `vm`, `ops`, `health`, `schedules` — for a shell
//! or a script. They speak to a running API through `hyperfleet-client`, the
//! client progenitor generates from the committed `openapi/hyperfleet.json`,
//! so every call the CLI makes is one the contract promises.
//!
//! Where to connect: `--url`/`--token`, else `HYPERFLEET_URL`/`HYPERFLEET_TOKEN`,
//! else the client config file (`url`, `token` or `token_file`, `ca_cert`), else the
//! server config's own address for the URL. Text for people by default,
//! `--json` (the API's own shapes) for scripts; every failure is one line on
//! standard error and an exit code that says what kind of failure it was.

mod config;
pub mod health;
pub mod ops;
mod render;
pub mod schedules;
pub mod vm;
mod wait;

use std::time::Duration;

use hyperfleet_client::{Client, Error, types::ErrorBody};

/// Where and as whom to connect, and how to print; accepted after any subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// The API's base URL (else the client config file's `url`, else the server config's `api.listen`).
    #[arg(long, env = "HYPERFLEET_URL", global = true)]
    pub url: Option<String>,
    /// A bearer token (else the client config file's `token` or `token_file`).
    #[arg(long, env = "HYPERFLEET_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// The client config file (TOML: `url`, `token` or `token_file`)
    /// [default: $XDG_CONFIG_HOME/hyperfleet/client.toml].
    #[arg(long, env = "HYPERFLEET_CLIENT_CONFIG", global = true)]
    pub client_config: Option<std::path::PathBuf>,
    /// PEM certificates to trust besides the system's (an API with a private CA).
    #[arg(long, env = "HYPERFLEET_CA_CERT", global = true, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Print JSON (the API's own shapes) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What a non-zero exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the operation failed or was cancelled (the line names its error class).
    Failed,
    /// 2: the command line or the client configuration is wrong; nothing was sent.
    Usage,
    /// 3: `--wait` gave up while the operation was still going (it goes on).
    StillRunning,
    /// 4: the API answered with an error (the line has its code and message).
    Refused,
    /// 5: the API could not be reached or answered something unreadable.
    Unreachable,
    /// `health --check`: 1 warn, 2 error (the seed's health-check exit codes).
    HealthWarn,
    HealthError,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Self::Failed | Self::HealthWarn => 1,
            Self::Usage | Self::HealthError => 2,
            Self::StillRunning => 3,
            Self::Refused => 4,
            Self::Unreachable => 5,
        }
    }
}

/// A failure: one line for standard error, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub line: String,
}

impl Failure {
    pub fn new(exit: Exit, line: impl Into<String>) -> Self {
        Self { exit, line: line.into() }
    }
}

pub type Outcome = Result<(), Failure>;

impl From<Error<ErrorBody>> for Failure {
    fn from(e: Error<ErrorBody>) -> Self {
        match e {
            Error::ErrorResponse(answer) => {
                let status = answer.status().as_u16();
                let body = answer.into_inner();
                Self::new(Exit::Refused, format!("{status} {}: {}", body.code, one_line(&body.message)))
            }
            Error::InvalidRequest(message) => Self::new(Exit::Usage, format!("invalid request: {message}")),
            Error::CommunicationError(e) | Error::ResponseBodyError(e) | Error::InvalidUpgrade(e) => {
                Self::new(Exit::Unreachable, format!("cannot reach the API: {}", chain(&e)))
            }
            Error::UnexpectedResponse(r) => {
                Self::new(Exit::Unreachable, format!("unexpected answer from the API: HTTP {}", r.status()))
            }
            Error::InvalidResponsePayload(_, e) => {
                Self::new(Exit::Unreachable, format!("unreadable answer from the API: {e}"))
            }
            Error::Custom(message) => Self::new(Exit::Unreachable, message),
        }
    }
}

/// An error and its causes on one line (reqwest's own message is terse).
fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    one_line(&line)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A connected client and how to print.
pub struct Ctx {
    pub client: Client,
    pub json: bool,
}

impl Ctx {
    /// Connects as `conn` says; `default_url` is the server config's address.
    pub fn connect(conn: &Conn, default_url: String) -> Result<Self, Failure> {
        let file = config::ClientConfig::load(conn.client_config.as_deref())?;
        let url = conn.url.clone().or(file.url).unwrap_or(default_url);
        let token = match conn.token.clone() {
            Some(t) => t,
            None => file.token.ok_or_else(|| {
                Failure::new(
                    Exit::Usage,
                    "no API token: set HYPERFLEET_TOKEN, pass --token, or put `token` or `token_file` in the client \
                     config file",
                )
            })?,
        };
        let mut auth =
            hyperfleet_client::reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| Failure::new(Exit::Usage, "the API token holds characters a header cannot carry"))?;
        auth.set_sensitive(true);
        let mut headers = hyperfleet_client::reqwest::header::HeaderMap::new();
        headers.insert(hyperfleet_client::reqwest::header::AUTHORIZATION, auth);
        let mut http = hyperfleet_client::reqwest::Client::builder();
        if let Some(path) = conn.ca_cert.as_ref().or(file.ca_cert.as_ref()) {
            let bad = |e: String| Failure::new(Exit::Usage, format!("CA certificates {}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs = hyperfleet_client::reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(chain(&e)))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            http = http.tls_certs_merge(certs);
        }
        let http = http
            .default_headers(headers)
            .user_agent(concat!("hyperfleet-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::new(Exit::Usage, format!("HTTP client: {}", chain(&e))))?;
        Ok(Self { client: Client::new_with_client(url.trim_end_matches('/'), http), json: conn.json })
    }

    /// Prints `value` as pretty JSON on standard output.
    pub fn print_json(&self, value: &impl serde::Serialize) -> Outcome {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::new(Exit::Unreachable, format!("cannot render JSON: {e}")))?;
        println!("{text}");
        Ok(())
    }
}

/// Ends a client command: nothing more on success, else the failure's line on
/// standard error and the process exits with its code.
pub fn exit(outcome: Outcome) -> anyhow::Result<()> {
    match outcome {
        Ok(()) => Ok(()),
        Err(f) => {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            eprintln!("hyperfleet: {}", f.line);
            std::process::exit(i32::from(f.exit.code()))
        }
    }
}
