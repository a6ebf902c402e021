//! Slow and idle clients: sockets that stall in the headers, sit idle, or
//! stall mid-body are closed within the configured times, the connection cap
//! holds, and HTTP/2 advertises a stream limit — while normal clients keep
//! getting answers. Front-door behaviour, the same on both backends: SQLite.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{Backend, Options, TestApp};

/// How long a test waits for the server to close a socket (the configured
/// times are 1–2 s; this only bounds a failing test).
const CLOSE_WITHIN: Duration = Duration::from_secs(20);

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the socket; what it sent. Panics if it stays open.
async fn read_until_closed(socket: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(CLOSE_WITHIN, async {
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server left the socket open; it sent {:?}", String::from_utf8_lossy(&got));
    String::from_utf8_lossy(&got).into_owned()
}

/// One complete request on `socket`; the answer's status line.
async fn ask(socket: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: hyperfleet\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // /healthz answers a small body with a content-length; the head is enough.
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(CLOSE_WITHIN, socket.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_idle_and_slow_body_sockets_are_closed() {
    let options = Options {
        worker: false,
        env: env(&[
            ("HYPERFLEET__API__HEADER_TIMEOUT_S", "1"),
            ("HYPERFLEET__API__IDLE_TIMEOUT_S", "2"),
            ("HYPERFLEET__API__BODY_TIMEOUT_S", "1"),
        ]),
        ..Options::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;

    // Silent from the start.
    let mut silent = connect(&app).await;
    // Half a request line, then nothing.
    let mut partial = connect(&app).await;
    partial.write_all(b"GET /api/v1/vms HT").await.unwrap();
    // Headers dripped a byte at a time, each well inside the idle time: only
    // the header deadline can close it.
    let mut dripping = connect(&app).await;
    let (mut drip_read, mut drip_write) = dripping.split();
    let drip = async {
        for b in b"GET /healthz HTTP/1.1\r\nHost: hyperfleet\r\nX-Slow: ".iter().cycle().take(2000) {
            if drip_write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // A kept-alive connection after one answer.
    let mut idle = connect(&app).await;
    assert!(ask(&mut idle, "/healthz").await.contains("200"));
    // Bodies that stop arriving, without a token: declared length, and chunked.
    let mut short_body = connect(&app).await;
    short_body
        .write_all(b"POST /api/v1/diagnostics/noop HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n{\"sleep_ms\"")
        .await
        .unwrap();
    let mut chunked = connect(&app).await;
    chunked
        .write_all(b"POST /api/v1/tokens HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\n")
        .await
        .unwrap();

    let normal = async {
        // A normal client is served the whole time.
        for _ in 0..20 {
            assert_eq!(app.get("/api/v1/operations").await.status, 200);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (_, _, silent_got, partial_got, dripped_got, idle_got, short_got, chunked_got) = tokio::join!(
        drip,
        normal,
        read_until_closed(&mut silent),
        read_until_closed(&mut partial),
        async {
            let mut got = Vec::new();
            let closed = tokio::time::timeout(CLOSE_WITHIN, drip_read.read_to_end(&mut got)).await;
            assert!(closed.is_ok(), "a dripping header was never cut off");
            got
        },
        read_until_closed(&mut idle),
        read_until_closed(&mut short_body),
        read_until_closed(&mut chunked),
    );
    assert_eq!(silent_got, "");
    assert_eq!(partial_got, "");
    assert!(dripped_got.is_empty(), "{}", String::from_utf8_lossy(&dripped_got));
    assert_eq!(idle_got, "");
    for got in [short_got, chunked_got] {
        assert!(got.starts_with("HTTP/1.1 408"), "{got}");
        assert!(got.contains("\"code\":\"body_timeout\""), "{got}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let options =
        Options { worker: false, env: env(&[("HYPERFLEET__API__MAX_CONNECTIONS", "3")]), ..Options::default() };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut socket = connect(&app).await;
        assert!(ask(&mut socket, "/healthz").await.contains("200"));
        held.push(socket);
    }
    let mut over = connect(&app).await;
    let _ = over.write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(read_until_closed(&mut over).await, "", "a fourth connection was served");

    // A slot frees when a connection closes.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + CLOSE_WITHIN;
    loop {
        let mut socket = connect(&app).await;
        let request = b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        if socket.write_all(request).await.is_ok() && read_until_closed(&mut socket).await.contains("200 OK") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot came free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_advertises_a_stream_limit() {
    let options =
        Options { worker: false, env: env(&[("HYPERFLEET__API__HTTP2_MAX_STREAMS", "7")]), ..Options::default() };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;
    let mut socket = connect(&app).await;
    // HTTP/2 with prior knowledge: the preface, then an empty SETTINGS frame.
    socket.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.unwrap();
    let mut head = [0u8; 9];
    tokio::time::timeout(CLOSE_WITHIN, socket.read_exact(&mut head)).await.unwrap().unwrap();
    assert_eq!(head[3], 4, "the server's first frame is SETTINGS");
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).await.unwrap();
    let max_streams = payload
        .chunks(6)
        .find(|setting| u16::from_be_bytes([setting[0], setting[1]]) == 3)
        .map(|setting| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]));
    assert_eq!(max_streams, Some(7), "SETTINGS_MAX_CONCURRENT_STREAMS");
    app.stop().await;
}
