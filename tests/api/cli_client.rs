//! The API client commands (`hyperfleet vm|ops|health|schedules`) as a shell
//! runs them: the real binary against a live server, text and `--json`, exit
//! codes, and one readable line for every failure.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, unlimited_rate};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The failure line: exactly one `hyperfleet: …` line on standard error
    /// (after any progress lines of `--wait`), and it is the last.
    fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("hyperfleet: ")).collect();
        assert_eq!(lines.len(), 1, "one failure line on stderr: {:?}", self.stderr);
        assert_eq!(self.stderr.lines().last(), Some(lines[0]), "{:?}", self.stderr);
        lines[0]
    }
}

/// `hyperfleet <args>` with a clean environment: `env` and nothing else
/// (`HOME` is a fresh directory, so no client config file is read by accident).
async fn hyperfleet(env: &[(&str, &str)], args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    // `["__script__", command]`: run `command` on a pseudo-terminal, its
    // standard output and error both on the terminal (our stdout).
    let mut command = match args {
        ["__script__", line] => {
            let mut c = tokio::process::Command::new("script");
            c.args(["-qec", line, "/dev/null"]);
            c
        }
        _ => {
            let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_hyperfleet"));
            c.args(args);
            c
        }
    };
    let out = command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert!(run.stderr.lines().all(|l| !l.contains("panicked")), "{}", run.stderr);
    run
}

/// As the app's admin, through `HYPERFLEET_URL` and `HYPERFLEET_TOKEN`.
async fn cli(app: &TestApp, args: &[&str]) -> Run {
    hyperfleet(&[("HYPERFLEET_URL", &app.address), ("HYPERFLEET_TOKEN", &app.token)], args).await
}

async fn spawn(backend: Backend) -> TestApp {
    // A transient failure waits a minute for its next attempt: long enough to
    // watch it retrying and to cancel it.
    TestApp::spawn_with(backend, Options { backoff_base_ms: 60_000, env: unlimited_rate(), ..Default::default() }).await
}

async fn vm_commands_list_show_and_follow_power_actions(backend: Backend) {
    let app = spawn(backend).await;

    let r = cli(&app, &["vm", "list"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let header = r.stdout.lines().next().unwrap();
    assert!(header.starts_with("NAME") && header.contains("STATE"), "{}", r.stdout);
    let test_row = r.stdout.lines().find(|l| l.starts_with("test ")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(test_row.contains("hv1") && test_row.contains("running"), "{test_row}");
    let list = cli(&app, &["vm", "list", "--json"]).await.json();
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["test", "web"]);

    let show = cli(&app, &["vm", "show", "web", "--host", "hv1", "--json"]).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert_eq!(show.json()["state"], "running");
    let text = cli(&app, &["vm", "show", "web"]).await.stdout;
    assert!(text.lines().any(|l| l.starts_with("state") && l.contains("running")), "{text}");

    // Starting a running VM fails for good: exit 1, the error class and message on one line.
    let r = cli(&app, &["vm", "start", "test", "--wait"]).await;
    assert_eq!(r.code, 1, "{} / {}", r.stdout, r.stderr);
    let line = r.error_line();
    assert!(line.starts_with("hyperfleet: failed: permanent: "), "{line}");
    assert!(line.contains("vm.start test on hv1"), "{line}");
    let failed_id = app.all_operations().await[0]["id"].as_str().unwrap().to_owned();
    assert!(line.contains(&failed_id), "{line}");

    // Without --wait: where it stood at its commit (the worker here takes it
    // in that commit when a slot is free), and the id to follow.
    let r = cli(&app, &["vm", "shutdown", "web", "--timeout", "30"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stood = r.stdout.strip_prefix("vm.shutdown web on hv1: ").unwrap_or_default();
    assert!(
        stood.starts_with("queued (operation ") || stood.starts_with("running, attempt 1 of 5 (operation "),
        "{}",
        r.stdout
    );
    let id = r.stdout.trim_end().trim_end_matches(')').rsplit(' ').next().unwrap().to_owned();
    let op = app.operation(&id).await;
    assert_eq!(op["params"]["timeout_s"], 30, "{op:#}");
    let watched = cli(&app, &["ops", "watch", &id]).await;
    assert_eq!(watched.code, 0, "{}", watched.stderr);
    assert!(watched.stdout.starts_with("succeeded: vm.shutdown web on hv1 (1 attempt, "), "{}", watched.stdout);
    assert_eq!(app.vm_state("web").await, "shutoff");

    let r = cli(&app, &["vm", "shutdown", "test", "--force", "--wait", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let op = r.json();
    assert_eq!((op["status"].as_str(), op["kind"].as_str()), (Some("succeeded"), Some("vm.shutdown")), "{op:#}");
    assert_eq!(op["params"]["force"], true);
    assert_eq!(app.vm_state("test").await, "shutoff");

    // The start that failed, retried now that the VM is off, succeeds.
    let r = cli(&app, &["ops", "retry", &failed_id, "--wait", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let retried = r.json();
    assert_eq!(retried["status"], "succeeded");
    assert_eq!(retried["retry_of"], failed_id.as_str());
    assert_eq!(app.vm_state("test").await, "running");

    // A name the API refuses before anything is queued: one line with the code.
    let r = cli(&app, &["vm", "start", "no-such-vm", "--wait"]).await;
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(r.error_line().starts_with("hyperfleet: 404 vm_not_found: "), "{}", r.stderr);
    app.stop().await;
}

async fn ops_commands_list_show_watch_and_cancel(backend: Backend) {
    let app = spawn(backend).await;
    let ok = app.noop(0, 0).await;
    app.wait_status(&ok, &["succeeded"]).await;
    let flaky = app.noop(0, 1).await;
    app.wait_status(&flaky, &["retrying"]).await;

    let page = cli(&app, &["ops", "list", "--kind", "noop", "--json"]).await.json();
    let ids: Vec<&str> = page["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [flaky.as_str(), ok.as_str()], "newest first");
    let r = cli(&app, &["ops", "list", "--status", "retrying"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows: Vec<&str> = r.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", r.stdout);
    assert!(rows[0].starts_with(&flaky) && rows[0].contains("retrying") && rows[0].contains("1/5"), "{}", rows[0]);
    let r = cli(&app, &["ops", "list", "--limit", "1"]).await;
    assert!(r.stderr.contains(&format!("more: --cursor {flaky}")), "{}", r.stderr);
    let r = cli(&app, &["ops", "list", "--status", "sleeping"]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("queued, running, retrying, succeeded, failed, cancelled"), "{}", r.stderr);

    let r = cli(&app, &["ops", "show", &flaky]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("retrying, attempt 1 of 5"), "{}", r.stdout);
    let attempt = r.stdout.lines().find(|l| l.starts_with("1 ")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(attempt.contains("failed") && attempt.contains("transient"), "{attempt}");
    assert_eq!(cli(&app, &["ops", "show", &ok, "--json"]).await.json()["status"], "succeeded");

    // Watching gives up at its timeout with exit 3; the operation goes on.
    let r = cli(&app, &["ops", "watch", &flaky, "--timeout", "1"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.lines().next().unwrap().starts_with("noop: retrying, attempt 1 of 5"), "{}", r.stderr);
    assert!(r.stderr.trim_end().lines().last().unwrap().starts_with("hyperfleet: still retrying"), "{}", r.stderr);

    // On a terminal (util-linux `script` gives it one) the same wait is a
    // spinner redrawn in place, with the status and the attempt.
    let command = format!("{} ops watch {flaky} --timeout 1", env!("CARGO_BIN_EXE_hyperfleet"));
    let tty =
        hyperfleet(&[("HYPERFLEET_URL", &app.address), ("HYPERFLEET_TOKEN", &app.token)], &["__script__", &command])
            .await;
    assert_eq!(tty.code, 3, "{:?}", tty.stdout);
    let frame = "\r\x1b[2K⠙ noop: retrying, attempt 1 of 5 (";
    assert!(tty.stdout.contains(frame), "{:?}", tty.stdout);
    assert!(tty.stdout.contains("\r\x1b[2Khyperfleet: still retrying"), "cleared first: {:?}", tty.stdout);

    let r = cli(&app, &["ops", "cancel", &flaky]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), format!("cancelled: noop (operation {flaky})"));
    assert_eq!(app.operation(&flaky).await["status"], "cancelled");
    let r = cli(&app, &["ops", "watch", &flaky]).await;
    assert_eq!(r.code, 1);
    assert!(r.error_line().starts_with("hyperfleet: cancelled by admin (noop, attempt 1 of 5"), "{}", r.stderr);
    let r = cli(&app, &["ops", "cancel", &ok]).await;
    assert_eq!(r.code, 4, "a finished operation cannot be cancelled: {}", r.stdout);
    assert!(r.error_line().starts_with("hyperfleet: 409 "), "{}", r.stderr);
    app.stop().await;
}

async fn health_and_schedules_through_the_cli(backend: Backend) {
    let app = spawn(backend).await;
    let r = cli(&app, &["health"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no health run has finished yet"), "{}", r.stdout);

    let body = json!({"name": "nightly-health", "cron": "0 3 * * *", "kind": "health.run", "host": "hv1"});
    let created = app.post("/api/v1/schedules", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let r = cli(&app, &["schedules", "list"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let row = r.stdout.lines().find(|l| l.contains("nightly-health")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(row.contains("health.run") && row.contains("0 3 * * * (UTC)") && row.contains("yes"), "{row}");
    let listed = cli(&app, &["schedules", "list", "--json"]).await.json();
    assert_eq!(listed[0]["id"], created.body["id"]);
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(at(&listed[0]["next_fire_at"]), at(&created.body["next_fire_at"]));

    let r = cli(&app, &["schedules", "trigger", "nightly-health", "--wait", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let op = r.json();
    assert_eq!((op["kind"].as_str(), op["status"].as_str()), (Some("health.run"), Some("succeeded")), "{op:#}");
    assert_eq!(op["schedule_id"], created.body["id"]);
    let r = cli(&app, &["schedules", "trigger", "no-such-schedule"]).await;
    assert_eq!(r.code, 4);
    assert_eq!(r.error_line(), "hyperfleet: no schedule with id or name `no-such-schedule`");

    let health = cli(&app, &["health", "--json"]).await.json();
    let checks = health["hosts"][0]["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["check"] == "libvirt"), "{health:#}");
    let r = cli(&app, &["health", "--host", "hv1"]).await;
    assert!(r.stdout.starts_with("fleet: "), "{}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("hv1") && l.contains("libvirt") && l.contains("ok")),
        "{}",
        r.stdout
    );
    let want = match health["status"].as_str().unwrap() {
        "ok" => 0,
        "warn" => 1,
        _ => 2,
    };
    assert_eq!(cli(&app, &["health", "--check"]).await.code, want, "--check exits by the overall status");
    app.stop().await;
}

crate::on_both_backends!(
    vm_commands_list_show_and_follow_power_actions,
    ops_commands_list_show_watch_and_cancel,
    health_and_schedules_through_the_cli
);

/// Connection and token problems: one readable line and their own exit codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_unreachable_servers_are_one_line_each() {
    let app = spawn(Backend::Sqlite).await;
    let url = app.address.as_str();
    let r = hyperfleet(&[("HYPERFLEET_URL", url), ("HYPERFLEET_TOKEN", "hf_not_a_real_token")], &["vm", "list"]).await;
    assert_eq!(r.code, 4);
    assert!(r.stdout.is_empty());
    assert!(r.error_line().starts_with("hyperfleet: 401 "), "{}", r.stderr);

    let r = hyperfleet(&[("HYPERFLEET_URL", url)], &["ops", "list"]).await;
    assert_eq!(r.code, 2);
    assert!(r.error_line().contains("HYPERFLEET_TOKEN"), "{}", r.stderr);

    // A name the spec's pattern refuses is not sent at all.
    let r =
        hyperfleet(&[("HYPERFLEET_URL", url), ("HYPERFLEET_TOKEN", &app.token)], &["vm", "start", "bad name!"]).await;
    assert_eq!(r.code, 2);
    assert!(r.error_line().starts_with("hyperfleet: VM name `bad name!`: "), "{}", r.stderr);

    let closed = format!("http://127.0.0.1:{}", crate::helpers::free_port());
    let r = hyperfleet(&[("HYPERFLEET_URL", &closed), ("HYPERFLEET_TOKEN", &app.token)], &["health"]).await;
    assert_eq!(r.code, 5);
    assert!(r.error_line().starts_with("hyperfleet: cannot reach the API: "), "{}", r.stderr);

    // A viewer may look but not act: the API's 403, as one line.
    let viewer = app.post("/api/v1/tokens", json!({"name": "eyes", "role": "viewer"})).await;
    assert_eq!(viewer.status, 201, "{}", viewer.body);
    let viewer = viewer.body["secret"].as_str().unwrap();
    let r = hyperfleet(&[("HYPERFLEET_URL", url), ("HYPERFLEET_TOKEN", viewer)], &["vm", "reboot", "test"]).await;
    assert_eq!(r.code, 4);
    assert!(r.error_line().starts_with("hyperfleet: 403 "), "{}", r.stderr);

    // The client config file: the URL and a token file, no environment.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{viewer}\n")).unwrap();
    let config = dir.path().join("client.toml");
    std::fs::write(&config, format!("url = \"{url}\"\ntoken_file = \"{}\"\n", dir.path().join("token").display()))
        .unwrap();
    let config = config.to_str().unwrap();
    let r = hyperfleet(&[("HYPERFLEET_CLIENT_CONFIG", config)], &["vm", "list", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    std::fs::write(dir.path().join("client.toml"), "url = \"http://x\"\ntokn = \"typo\"\n").unwrap();
    let r = hyperfleet(&[("HYPERFLEET_CLIENT_CONFIG", config)], &["vm", "list"]).await;
    assert_eq!(r.code, 2);
    assert!(r.error_line().contains("unknown field `tokn`"), "{}", r.stderr);
    tokio::time::timeout(Duration::from_secs(30), app.stop()).await.unwrap();
}

/// An API with a certificate from a private CA: refused until the CLI is
/// told to trust that CA (`--ca-cert`, `HYPERFLEET_CA_CERT` or `ca_cert`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_when_given() {
    let certs = tempfile::tempdir().unwrap();
    let path = |name: &str| certs.path().join(name).display().to_string();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let (ca, ca_key, cert, key, csr, ext) =
        (path("ca.pem"), path("ca.key"), path("cert.pem"), path("key.pem"), path("cert.csr"), path("ext.cnf"));
    openssl(
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hyperfleet test CA"]
            .iter()
            .copied()
            .chain(["-keyout", &ca_key, "-out", &ca, "-addext", "basicConstraints=critical,CA:TRUE"])
            .collect::<Vec<_>>(),
    );
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr]);
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        &["x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial", "-days", "1"]
            .iter()
            .copied()
            .chain(["-out", &cert, "-extfile", &ext])
            .collect::<Vec<_>>(),
    );
    let env = vec![
        ("HYPERFLEET__API__TLS__CERT".to_owned(), cert.clone()),
        ("HYPERFLEET__API__TLS__KEY".to_owned(), key.clone()),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, Options { worker: false, env, ..Options::default() }).await;
    let url = app.address.replacen("http://", "https://", 1);
    let env = [("HYPERFLEET_URL", url.as_str()), ("HYPERFLEET_TOKEN", app.token.as_str())];

    let r = hyperfleet(&env, &["vm", "list", "--json"]).await;
    assert_eq!(r.code, 5, "an unknown CA is refused: {}", r.stdout);
    assert!(r.error_line().starts_with("hyperfleet: cannot reach the API: "), "{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("certificate"), "{}", r.stderr);

    let r = hyperfleet(&env, &["vm", "list", "--json", "--ca-cert", &ca]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json()["items"].is_array());
    let r = hyperfleet(&[env[0], env[1], ("HYPERFLEET_CA_CERT", &cert)], &["health"]).await;
    assert_eq!(r.code, 5, "a server's own certificate is no CA: {}", r.stdout);
    app.stop().await;
}
