//! The binary's admin commands.

use std::process::Command;

fn hyperfleet(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hyperfleet"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn check_config_prints_effective_config_with_secrets_redacted() {
    let (ok, out, err) = hyperfleet(
        &["check-config"],
        &[
            ("HYPERFLEET__DATABASE__URL", "postgres://hf:hunter2@db.example/hyperfleet"),
            ("HYPERFLEET__WORKER__LIBVIRT_URI", "test:///default"),
            ("HYPERFLEET__WORKER__HOST", "hv7"),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("postgres://hf:***@db.example/hyperfleet"), "{out}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));
    assert!(out.contains(r#"libvirt_uri = "test:///default""#), "{out}");
    assert!(out.contains(r#"host = "hv7""#), "{out}");
    assert!(out.contains(r#"listen = "127.0.0.1:8080""#), "{out}");
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let (ok, _, err) = hyperfleet(&["check-config"], &[("HYPERFLEET__WORKER__LIBVIRT_URL", "x")]);
    assert!(!ok);
    assert!(err.contains("worker") && err.contains("libvirt_url"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[api]\nlisten = \"127.0.0.1:9000\"\nport = 1\n").unwrap();
    let (ok, _, err) = hyperfleet(&["--config", file.to_str().unwrap(), "check-config"], &[]);
    assert!(!ok);
    assert!(err.contains("api.port") || (err.contains("api") && err.contains("port")), "{err}");
}

#[test]
fn smtp_credentials_over_plain_text_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mail.toml");
    let channel = "[[alerts.channels]]\nname = \"relay\"\ntype = \"email\"\nsmtp_host = \"mx.example.org\"\n\
                   smtp_security = \"none\"\nfrom = \"hf@example.org\"\nto = [\"ops@example.org\"]\n\
                   username = \"hf\"\npassword = \"hunter2\"\n";
    std::fs::write(&file, channel).unwrap();
    let (ok, out, err) = hyperfleet(&["--config", file.to_str().unwrap(), "check-config"], &[]);
    assert!(!ok, "{out}");
    assert!(err.contains("channel 0 (`relay`)") && err.contains("allow_plaintext_auth = true"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    std::fs::write(&file, format!("{channel}allow_plaintext_auth = true\n")).unwrap();
    let (ok, out, err) = hyperfleet(&["--config", file.to_str().unwrap(), "check-config"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("allow_plaintext_auth = true") && !out.contains("hunter2"), "{out}");
}

#[test]
fn example_config_is_accepted_by_the_binary() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hyperfleet.toml");
    let (ok, out, err) = hyperfleet(&["--config", example, "check-config"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("[worker]"), "{out}");
}

#[test]
fn openapi_command_prints_the_committed_spec() {
    let (ok, out, err) = hyperfleet(&["openapi"], &[]);
    assert!(ok, "{err}");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/hyperfleet.json")).unwrap();
    assert_eq!(out.trim_end(), committed.trim_end());
}

/// A `hyperfleet up` process on a fresh data directory, its output in files.
pub(crate) struct Up {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
    pub address: String,
    pub token: String,
}

impl Up {
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hyperfleet"))
            .arg("up")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HYPERFLEET__DATA_DIR", dir.path().join("data"))
            .env("HYPERFLEET__API__LISTEN", "127.0.0.1:0")
            .env("HYPERFLEET__WORKER__LIBVIRT_URI", "test:///default")
            .env("HYPERFLEET__WORKER__HOST", "hv1")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut up = Self { child, dir, address: String::new(), token: String::new() };
        let out = up.wait_for_stdout(|out| out.contains("hf_") && out.contains("Hyperfleet is up"));
        let word = |prefix: &str| out.split_whitespace().find(|w| w.starts_with(prefix)).unwrap().to_owned();
        up.token = word("hf_");
        up.address = word("http://").trim_end_matches('/').to_owned();
        up
    }

    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap()
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap()
    }

    fn wait_for_stdout(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let out = self.stdout();
            if done(&out) {
                return out;
            }
            assert!(std::time::Instant::now() < deadline, "not up: {out}\n{}", self.stderr());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Waits until the log holds a line with `text`; the whole log.
    pub(crate) fn wait_for_log(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let err = self.stderr();
            if err.contains(text) {
                return err;
            }
            assert!(std::time::Instant::now() < deadline, "never logged {text:?}: {err}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn up_prints_the_first_admin_token_once_on_stdout_and_never_logs_it() {
    let up = Up::start(&[("HYPERFLEET_LOG", "debug")]);
    // Let the process log what it logs at start.
    let err = up.wait_for_log("listening on");
    let out = up.stdout();
    assert_eq!(out.matches(&up.token).count(), 1, "{out}");
    assert!(!err.contains(&up.token), "the token is in the log: {err}");
}

#[test]
fn up_runs_the_health_checks_once_at_start() {
    let up = Up::start(&[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = Command::new("curl")
            .args(["-sS", "-H", &format!("Authorization: Bearer {}", up.token)])
            .arg(format!("{}/api/v1/health/runs?host=hv1", up.address))
            .output()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if body["items"].as_array().is_some_and(|runs| runs.len() == 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no health run after start: {body}\n{}", up.stderr());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
