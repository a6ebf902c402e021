//! An app served over TLS with a fresh self-signed certificate.

use std::path::PathBuf;

use crate::helpers::{Backend, Options, TestApp};

/// The app (SQLite, no worker) on HTTPS, the certificate's directory (kept
/// alive with it) and the certificate, for `curl --cacert` (rustls refuses a
/// self-signed certificate as its own CA).
pub async fn spawn_tls() -> (TestApp, tempfile::TempDir, PathBuf) {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let env = vec![
        ("HYPERFLEET__API__TLS__CERT".to_owned(), cert.display().to_string()),
        ("HYPERFLEET__API__TLS__KEY".to_owned(), key.display().to_string()),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, Options { worker: false, env, ..Options::default() }).await;
    (app, certs, cert)
}
