//! The one end-to-end harness: `TestApp::spawn` starts the real application
//! (the binary's own `start`) on port 0 against a fresh database — a SQLite
//! temp file or a new PostgreSQL database — with libvirt's test driver, and
//! returns typed request helpers. Worker processes of the real binary can be
//! started and killed against the same database.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use hyperfleet::{Components, Running};
use hyperfleet_core::settings::Settings;
use serde_json::{Value, json};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
fn pg_admin_url() -> String {
    std::env::var("HYPERFLEET_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("hyperfleet.db").display()),
        Backend::Postgres => {
            let name = format!("hf_test_{}", ulid::Ulid::new().to_string().to_lowercase());
            let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_admin_url()))
                .await
                .expect("PostgreSQL must run for the tests (the README's test command starts it)");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
            format!("{}/{name}", pg_admin_url())
        }
    }
}

/// A libvirt test-driver URI with a private state: one domain per name given,
/// all running. (`test:///default` is shared by the whole process.)
pub fn private_libvirt(dir: &std::path::Path, domains: &[&str]) -> String {
    private_libvirt_named(dir, "libvirt-test.xml", domains)
}

/// [`private_libvirt`] in a file of its own, for several hosts in one test.
pub fn private_libvirt_named(dir: &std::path::Path, file: &str, domains: &[&str]) -> String {
    let mut xml = String::from("<node>\n");
    for (i, name) in domains.iter().enumerate() {
        xml.push_str(&format!(
            "<domain type='test'><name>{name}</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e{i:04x}</uuid>\
             <memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>\n"
        ));
    }
    xml.push_str("</node>\n");
    let path = dir.join(file);
    std::fs::write(&path, xml).unwrap();
    format!("test://{}", path.display())
}

#[derive(Debug, Clone)]
pub struct Options {
    pub worker: bool,
    pub libvirt_uri: Option<String>,
    pub host: String,
    pub lease_s: u64,
    pub backoff_base_ms: u64,
    pub max_attempts: u32,
    /// More `HYPERFLEET__…` settings, for the in-process app and worker processes.
    pub env: Vec<(String, String)>,
    /// Run the scheduler (schedules, the alert router, the fleet monitor) in the app.
    pub scheduler: bool,
    /// A TOML config file's text (for what variables cannot say, like `[[alerts.channels]]`).
    pub config: Option<String>,
    /// Where the SQLite database and `data_dir` live (default: the test's temp dir).
    pub data_dir: Option<PathBuf>,
    /// The in-process app's clock: an adjustable one lets a test move time
    /// forward instead of rewriting timestamps in the database.
    pub clock: Option<hyperfleet_core::time::Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            worker: true,
            libvirt_uri: None,
            host: "hv1".into(),
            lease_s: 10,
            backoff_base_ms: 200,
            max_attempts: 5,
            env: Vec::new(),
            scheduler: false,
            config: None,
            data_dir: None,
            clock: None,
        }
    }
}

pub struct TestApp {
    pub address: String,
    /// The admin token `start` created on first start, sent by default.
    pub token: String,
    pub database_url: String,
    /// The unauthenticated metrics listener's address, when `metrics.listen` is set.
    pub metrics_address: Option<String>,
    pub options: Options,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    running: Option<Running>,
    children: Vec<Child>,
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(backend, options.data_dir.as_deref().unwrap_or(dir.path())).await;
        Self::spawn_at(dir, database_url, options).await
    }

    /// Starts the app on `database_url` (an empty database), with `dir` as its scratch space.
    pub async fn spawn_at(dir: tempfile::TempDir, database_url: String, options: Options) -> Self {
        let libvirt_uri = options.libvirt_uri.clone().unwrap_or_else(|| private_libvirt(dir.path(), &["test", "web"]));
        let options = Options { libvirt_uri: Some(libvirt_uri), ..options };
        let settings = settings_for(&database_url, &options, dir.path());
        let components = Components { api: true, worker: options.worker, scheduler: options.scheduler };
        let clock = options.clock.clone().unwrap_or_default();
        let boot = hyperfleet::Bootstrap { migrate: true, first_admin_token: true, clock, ..Default::default() };
        let running = hyperfleet::start(&settings, components, boot).await.expect("starting the app");
        let address = format!("http://{}", running.api_addr.unwrap());
        let token = running.initial_admin_token.clone().expect("first start creates an admin token");
        let metrics_address = running.metrics_addr.map(|a| format!("http://{a}"));
        let app = Self {
            address,
            token,
            database_url,
            metrics_address,
            options,
            dir,
            client: reqwest::Client::new(),
            running: Some(running),
            children: Vec::new(),
        };
        if app.options.worker {
            app.wait_for(|| async {
                app.get("/api/v1/vms").await.body["items"].as_array().is_some_and(|v| !v.is_empty())
            })
            .await;
        }
        app
    }

    /// The application layer over this app's database, with its audit key:
    /// for tests that call use cases directly.
    pub async fn core(&self) -> hyperfleet_core::app::App {
        let settings = settings_for(&self.database_url, &self.options, self.dir.path());
        let store =
            hyperfleet_core::store::Store::connect(&self.database_url, hyperfleet_core::store::PoolConfig::new(2))
                .await
                .unwrap();
        hyperfleet_core::app::App::new(store).with_audit_key(settings.audit_key().unwrap())
    }

    pub async fn request(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Response {
        self.request_as(Some(&self.token), method, path, body, headers).await
    }

    /// A request with `token` (or none).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self.client.request(method.parse().unwrap(), format!("{}{path}", self.address));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_owned());
        }
        let resp = req.send().await.expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Response { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request("POST", path, Some(&body.to_string()), &[]).await
    }

    /// Enqueues a `noop` and returns its id.
    pub async fn noop(&self, sleep_ms: u64, fail_times: u32) -> String {
        let r = self.post("/api/v1/diagnostics/noop", json!({"sleep_ms": sleep_ms, "fail_times": fail_times})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn operation(&self, id: &str) -> Value {
        let r = self.get(&format!("/api/v1/operations/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// Waits (with a deadline, no fixed sleeps) until the operation's status is one of `statuses`.
    pub async fn wait_status(&self, id: &str, statuses: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let op = self.operation(id).await;
            if statuses.contains(&op["status"].as_str().unwrap()) {
                return op;
            }
            assert!(Instant::now() < deadline, "operation never reached {statuses:?}: {op:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for<F, Fut>(&self, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond().await {
            assert!(Instant::now() < deadline, "condition not met within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every item of the list at `path` (which may hold a query), `limit` a
    /// page, following `next_cursor`; each page at most `limit` long.
    pub async fn every_page(&self, path: &str, limit: u32) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (mut items, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let r = self.get(&url).await;
            assert_eq!(r.status, 200, "{url}: {}", r.body);
            let page = r.body["items"].as_array().unwrap();
            assert!(page.len() <= limit as usize, "{url}: {} items", page.len());
            items.extend(page.iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// Every operation in the ledger (all pages).
    pub async fn all_operations(&self) -> Vec<Value> {
        self.every_page("/api/v1/operations", 500).await
    }

    /// The state of `vm` in the inventory.
    pub async fn vm_state(&self, vm: &str) -> String {
        let r = self.get(&format!("/api/v1/vms/{vm}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["state"].as_str().unwrap().to_owned()
    }

    /// Starts a worker process of the real binary against this app's database.
    pub fn spawn_worker_process(&mut self) -> u32 {
        let options = self.options.clone();
        self.spawn_worker_process_with(&options)
    }

    /// Starts a worker process with its own options (host, libvirt URI, …).
    pub fn spawn_worker_process_with(&mut self, options: &Options) -> u32 {
        self.spawn_process(&["worker"], options)
    }

    /// Starts `hyperfleet <args>` against this app's database.
    pub fn spawn_process(&mut self, args: &[&str], options: &Options) -> u32 {
        let settings_env = env_for(&self.database_url, options, self.dir.path());
        let log = std::fs::File::create(self.dir.path().join(format!("worker-{}.log", self.children.len()))).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hyperfleet"));
        if let Some(path) = config_file(options, self.dir.path()) {
            command.env("HYPERFLEET_CONFIG", path);
        }
        let child = command
            .args(args)
            .envs(settings_env)
            .env("HYPERFLEET_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning a worker process");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// SIGTERMs process `pid` and waits at most `limit` for it to exit: its
    /// exit status and how long it took, or `None` if it was still running
    /// (then it is SIGKILLed).
    pub fn terminate_within(&mut self, pid: u32, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let started = Instant::now();
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        let child = self.children.iter_mut().find(|c| c.id() == pid).unwrap();
        while started.elapsed() < limit {
            if let Some(status) = child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// SIGKILLs the worker process `pid`.
    pub fn kill_worker(&mut self, pid: u32) {
        if let Some(child) = self.children.iter_mut().find(|c| c.id() == pid) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERMs the worker process `pid` and waits for it to exit.
    /// SIGTERM, then the exit status; a worker that did not exit cleanly has
    /// its log printed, for the test that fails on it.
    pub fn terminate_worker(&mut self, pid: u32) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        let n = self.children.iter().position(|c| c.id() == pid).unwrap();
        let status = self.children[n].wait().unwrap();
        if !status.success() {
            let log = std::fs::read_to_string(self.worker_log(n)).unwrap_or_default();
            eprintln!("worker {n} exited with {status}; its log:\n{log}");
        }
        status
    }

    pub fn worker_log(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("worker-{n}.log"))
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn env_for(database_url: &str, o: &Options, dir: &std::path::Path) -> Vec<(String, String)> {
    [
        ("HYPERFLEET__DATA_DIR", o.data_dir.as_deref().unwrap_or(dir).display().to_string()),
        ("HYPERFLEET__DATABASE__URL", database_url.to_owned()),
        ("HYPERFLEET__DATABASE__MAX_CONNECTIONS", "8".into()),
        ("HYPERFLEET__API__LISTEN", "127.0.0.1:0".into()),
        ("HYPERFLEET__WORKER__HOST", o.host.clone()),
        ("HYPERFLEET__WORKER__LIBVIRT_URI", o.libvirt_uri.clone().unwrap_or_default()),
        ("HYPERFLEET__WORKER__LEASE_S", o.lease_s.to_string()),
        ("HYPERFLEET__WORKER__POLL_INTERVAL_MS", "100".into()),
        ("HYPERFLEET__WORKER__SHUTDOWN_GRACE_S", "10".into()),
        ("HYPERFLEET__RETRY__MAX_ATTEMPTS", o.max_attempts.to_string()),
        ("HYPERFLEET__RETRY__BASE_MS", o.backoff_base_ms.to_string()),
        ("HYPERFLEET__RETRY__MAX_MS", (o.backoff_base_ms * 16).to_string()),
        ("HYPERFLEET__WORKER__HEARTBEAT_S", "1".into()),
        ("HYPERFLEET__WORKER__INVENTORY_INTERVAL_S", "1".into()),
        ("HYPERFLEET__SCHEDULER__DEFAULT_SCHEDULES", "false".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(o.env.iter().cloned())
    .collect()
}

fn settings_for(database_url: &str, o: &Options, dir: &std::path::Path) -> Settings {
    let config = config_file(o, dir);
    Settings::load(config.as_deref(), env_for(database_url, o, dir)).expect("test settings")
}

/// Writes `o.config` to the test's directory; returns its path.
fn config_file(o: &Options, dir: &std::path::Path) -> Option<PathBuf> {
    let text = o.config.as_ref()?;
    let path = dir.join("hyperfleet.toml");
    std::fs::write(&path, text).unwrap();
    Some(path)
}

/// Settings for tests that drive load or many refusals: no per-token or
/// failed-authentication rate limit in the way.
pub fn unlimited_rate() -> Vec<(String, String)> {
    [
        ("HYPERFLEET__API__RATE_LIMIT_PER_S", "1000000"),
        ("HYPERFLEET__API__RATE_LIMIT_BURST", "1000000"),
        ("HYPERFLEET__API__AUTH_FAILURES_PER_S", "1000000"),
        ("HYPERFLEET__API__AUTH_FAILURE_BURST", "1000000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A TCP port on loopback that was free a moment ago (for a process's own API).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
