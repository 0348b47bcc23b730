//! The API against slow and hostile clients, over real TCP connections: slowloris connections
//! and idle ones are closed by the server while normal requests are served, error bodies do not
//! echo the input, repeated JSON keys are refused, and guessing admin tokens is held to a few
//! attempts a minute per client address.

mod api_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use api_support::{TOKEN, listen, state_with};
use serde_json::{Value, json};
use spikewatch::api::Limits;
use spikewatch::domain::ModelVariant;
use spikewatch::http::connections::ConnectionLimits;

/// A header-read timeout short enough for a test (the default is 10 s).
fn limits() -> Limits {
    Limits { connections: ConnectionLimits { header_read_timeout: Duration::from_secs(1) }, ..Limits::default() }
}

fn address(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// How a client's connection ended.
#[derive(Debug, PartialEq)]
enum Ending {
    /// The server closed it (EOF or reset) while the client was still sending its head.
    ClosedByServer,
    /// The client sent everything it meant to and the connection was still open.
    StillOpen,
}

/// Sends a request head one byte every `pause`, at most `max_bytes` bytes, and reports whether
/// the server closed the connection first.
fn slowloris(addr: SocketAddr, pause: Duration, max_bytes: usize) -> Ending {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let head = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nX-Padding: {}", "a".repeat(max_bytes));
    for byte in head.bytes().take(max_bytes) {
        if stream.write_all(&[byte]).is_err() || server_closed(&mut stream) {
            return Ending::ClosedByServer;
        }
        std::thread::sleep(pause);
    }
    Ending::StillOpen
}

/// True when the peer closed the connection (EOF or reset); false while it is open and silent.
fn server_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// Waits (at most `patience`) for the server to close a connection on which the client sends
/// nothing more.
fn closed_while_silent(stream: &mut TcpStream, patience: Duration) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if server_closed(stream) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_and_idle_connections_are_closed_while_requests_are_served() {
    let (base, stop, server) = listen(state_with(ModelVariant::Ml, limits()).await).await;
    let addr = address(&base);
    // 50 connections that trickle a header byte every 200 ms; each would take 60 s for its
    // 300 bytes. The server must close every one of them first.
    let attackers: Vec<_> =
        (0..50).map(|_| std::thread::spawn(move || slowloris(addr, Duration::from_millis(200), 300))).collect();
    // Meanwhile, ordinary requests are answered.
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let response = client.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let endings: Vec<Ending> =
        tokio::task::spawn_blocking(move || attackers.into_iter().map(|a| a.join().unwrap()).collect()).await.unwrap();
    assert!(endings.iter().all(|e| *e == Ending::ClosedByServer), "{endings:?}");

    // A connection that never sends a byte, and one kept alive after its answer, are closed too.
    let (idle_closed, kept_alive_closed) = tokio::task::spawn_blocking(move || {
        let mut idle = TcpStream::connect(addr).unwrap();
        let idle_closed = closed_while_silent(&mut idle, Duration::from_secs(30));
        let mut kept = TcpStream::connect(addr).unwrap();
        write!(kept, "GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut answer = [0u8; 64];
        let n = kept.read(&mut answer).unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..n]));
        (idle_closed, closed_while_silent(&mut kept, Duration::from_secs(30)))
    })
    .await
    .unwrap();
    assert!(idle_closed, "a connection that sent nothing stayed open");
    assert!(kept_alive_closed, "an idle kept-alive connection stayed open");

    let _ = stop.send(());
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_quote_a_short_prefix_and_repeated_keys_are_refused() {
    let (base, stop, server) = listen(state_with(ModelVariant::Ml, Limits::default()).await).await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client.post(format!("{base}/predict")).header("content-type", "application/json").body(body).send()
    };

    // A 900 KB string where a number belongs, with control characters in it.
    let huge = format!("\u{1b}[31m{}", "9".repeat(900_000));
    let response = post(json!({"price": huge}).to_string()).await.unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.len() < 1_000, "{} bytes of error for a 900 KB value", body.len());
    let reason = serde_json::from_str::<Value>(&body).unwrap()["error"]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("999999") && reason.contains(" characters)") && reason.ends_with("expected f64"),
        "{reason}"
    );

    // An 8 KB model name in the path (Open Inference Protocol) and an 8 KB unknown path.
    for path in [format!("/v2/models/{}", "m".repeat(8_000)), format!("/{}", "p".repeat(8_000))] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body = response.text().await.unwrap();
        assert!(body.len() < 1_000, "{} bytes of error for an 8 KB path", body.len());
    }

    // {"price": 1, "price": 2} and a repeated key inside a batch row.
    let response = post(r#"{"price": 1, "price": 2}"#.to_string()).await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "price", "{error}");
    let row = api_support::row().to_string();
    let doubled = row.replacen('{', r#"{"spread_rel": 0.5, "#, 1);
    let response = post(format!(r#"{{"rows": [{row}, {doubled}]}}"#)).await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "rows[1].spread_rel", "{error}");
    // The same row without the repetition is served.
    let response = post(format!(r#"{{"rows": [{row}]}}"#)).await.unwrap();
    assert_eq!(response.status(), 200);

    let _ = stop.send(());
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_admin_tokens_gets_429_after_a_burst_per_client_address() {
    let (base, stop, server) = listen(state_with(ModelVariant::Ml, Limits::default()).await).await;
    let from = |ip: [u8; 4]| reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().unwrap();
    let attacker = from([127, 0, 0, 1]);
    let reload =
        |client: &reqwest::Client, token: &str| client.post(format!("{base}/admin/reload")).bearer_auth(token).send();

    let mut statuses = Vec::new();
    for i in 0..300 {
        statuses.push(reload(&attacker, &format!("guess-{i}")).await.unwrap().status().as_u16());
    }
    let unauthorized = statuses.iter().filter(|&&s| s == 401).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    eprintln!("300 wrong tokens: {unauthorized} × 401, {limited} × 429");
    assert!(statuses[..10].iter().all(|&s| s == 401), "{statuses:?}");
    assert_eq!(unauthorized + limited, 300, "{statuses:?}");
    // At most the burst plus the refill during the run (one every 6 s) got to compare a token.
    assert!(limited >= 250, "{statuses:?}");

    // The right token from the blocked address is refused without being compared...
    let response = reload(&attacker, TOKEN).await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&retry_after), "{retry_after}");
    // ...while another address authenticates as usual.
    let operator = from([127, 0, 0, 2]);
    let response = reload(&operator, TOKEN).await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let _ = stop.send(());
    server.await.unwrap();
}
