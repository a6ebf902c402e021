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
