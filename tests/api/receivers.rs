//! Real peers on loopback for the alerting tests: an HTTP server that records
//! every request and answers from a script, and a real SMTP server (aiosmtpd,
//! from PyPI, run by `tests/support/smtp_sink.py`).

use std::{
    collections::{BTreeMap, VecDeque},
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use poem::{EndpointExt, Request, Response, Route, endpoint::make, http::StatusCode, listener::TcpListener};
use serde_json::Value;

/// One request an [`HttpReceiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub json: Value,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Received>,
    script: VecDeque<u16>,
}

/// In a script: take the request and answer nothing for two minutes.
pub const HANG: u16 = 0;

/// An HTTP server on 127.0.0.1 that answers each request with the next status
/// of its script, then with `then` forever.
pub struct HttpReceiver {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    /// Dropping it stops the server.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl HttpReceiver {
    pub async fn start(script: &[u16], then: u16) -> Self {
        let inner = Arc::new(Mutex::new(Inner { requests: Vec::new(), script: script.iter().copied().collect() }));
        let state = inner.clone();
        let endpoint = make(move |req: Request| {
            let state = state.clone();
            async move {
                let path = req.uri().path().to_owned();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let body = req.into_body().into_vec().await.unwrap_or_default();
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let status = {
                    let mut inner = state.lock().unwrap();
                    inner.requests.push(Received { path, headers, body, json });
                    inner.script.pop_front().unwrap_or(then)
                };
                if status == HANG {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
                let status = if status == HANG { 200 } else { status };
                Response::builder().status(StatusCode::from_u16(status).unwrap()).body(format!("answer {status}"))
            }
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Route::new().at("/*path", endpoint).boxed();
        tokio::spawn(async move {
            let server = poem::Server::new(TcpListener::bind(format!("127.0.0.1:{port}")));
            let _ = server.run_with_graceful_shutdown(app, async { stopped.await.unwrap_or(()) }, None).await;
        });
        let base = format!("http://127.0.0.1:{port}");
        // Ready when it answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "the HTTP receiver did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self { base, inner, _stop: stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests received on `path`, in order.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.inner.lock().unwrap().requests.iter().filter(|r| r.path == path).cloned().collect()
    }

    pub fn all(&self) -> Vec<Received> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Waits until `path` got at least `n` requests, and returns them.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.on(path);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{path} got {} of {n} requests: {got:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A free TCP port on 127.0.0.1 (for a peer started later).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A real SMTP server on `port`: aiosmtpd, run by the test venv's Python
/// (`HYPERFLEET_TEST_PYTHON`, set by `scripts/test.sh`).
pub struct SmtpSink {
    child: Child,
    messages: Arc<Mutex<Vec<Value>>>,
}

impl SmtpSink {
    pub fn start(port: u16) -> Self {
        Self::start_with(port, None)
    }

    /// With `auth` (`user:password`), the server requires that login.
    pub fn start_with(port: u16, auth: Option<&str>) -> Self {
        let python = std::env::var("HYPERFLEET_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new(&python)
            .args([script, &port.to_string()])
            .args(auth)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} (scripts/test.sh installs aiosmtpd): {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(first, "ready", "the SMTP sink did not start (is aiosmtpd installed for {python}?)");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Self { child, messages }
    }

    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "the SMTP sink got {} of {n} messages", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
