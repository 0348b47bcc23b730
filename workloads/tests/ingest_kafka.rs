//! `spikewatch ingest` end to end: a Coinbase Exchange server inside the test (tickers from the
//! shared recording, one dropped connection) → the real binary → a real tansu broker. Every
//! ticker lands on `ticks.raw` keyed by product id, the mirror keeps the raw frames, and
//! SIGTERM flushes and exits cleanly.

mod common;

use futures::{SinkExt, StreamExt};
use spikewatch::config::{Config, MirrorConfig};
use spikewatch::domain::{Feed, Tick};
use spikewatch::sources::recording;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const EXCHANGE_FIXTURE: &str = include_str!("fixtures/exchange-ticker-btcusd-head40.ndjson");

fn fixture_frames() -> Vec<String> {
    EXCHANGE_FIXTURE
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["raw"].as_str().unwrap().to_owned())
        .filter(|raw| raw.contains("\"type\":\"ticker\""))
        .collect()
}

/// Connection 1 gets the first `split` tickers and is dropped; connection 2 gets the rest and
/// then heartbeats until the client leaves.
async fn serve(listener: TcpListener, frames: Vec<String>, split: usize) {
    let mut parts = vec![frames[..split].to_vec(), frames[split..].to_vec()].into_iter();
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let part = parts.next().unwrap_or_default();
        let last = parts.len() == 0;
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
            let Some(Ok(Message::Text(subscribe))) = ws.next().await else { return };
            let subscribe: serde_json::Value = serde_json::from_str(&subscribe).unwrap();
            assert_eq!(subscribe["type"], "subscribe");
            assert_eq!(subscribe["channels"], serde_json::json!(["ticker", "heartbeat"]));
            for frame in part {
                if ws.send(Message::text(frame)).await.is_err() {
                    return;
                }
            }
            if !last {
                return; // dropped mid-stream
            }
            let heartbeat = r#"{"type":"heartbeat","sequence":1,"last_trade_id":1,"product_id":"BTC-USD","time":"2025-11-12T07:20:11Z"}"#;
            loop {
                tokio::select! {
                    incoming = ws.next() => if !matches!(incoming, Some(Ok(_))) { return },
                    _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                        if ws.send(Message::text(heartbeat)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// Polls `/metrics` until `name` reaches `target` (bounded by the harness's patience).
fn wait_for_metric(addr: std::net::SocketAddr, name: &str, target: f64) -> f64 {
    for _ in 0..600 {
        let (_, body) = common::process::http_get(addr, "/metrics");
        let value = common::process::metric_value(&body, name).unwrap_or(0.0);
        if value >= target {
            return value;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{name} never reached {target}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_publishes_every_ticker_to_the_raw_topic_and_flushes_on_sigterm() {
    let broker = common::Broker::start();
    let frames = fixture_frames();
    assert_eq!(frames.len(), 40);
    let expected_trades: Vec<u64> = frames
        .iter()
        .map(|f| serde_json::from_str::<serde_json::Value>(f).unwrap()["trade_id"].as_u64().unwrap())
        .collect();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener, frames, 15));

    let dir = tempfile::tempdir().unwrap();
    let mirror_dir = dir.path().join("mirror");
    let mut config = Config::default();
    config.feed.kind = Feed::Exchange;
    config.feed.url = Some(url);
    config.feed.products = vec!["BTC-USD".into()];
    config.feed.reconnect_initial_backoff_ms = 20;
    config.feed.reconnect_max_backoff_ms = 200;
    config.feed.mirror = Some(MirrorConfig { dir: mirror_dir.display().to_string(), ..MirrorConfig::default() });
    config.kafka.bootstrap_servers = broker.bootstrap_servers();
    config.kafka.partitions = 2;
    config.metrics.bind = "127.0.0.1:0".into();
    let config_path = common::process::write_config(dir.path(), &config);

    let mut ingest =
        common::process::Spawned::start(dir.path(), "ingest", &["--config", config_path.to_str().unwrap(), "ingest"]);
    let bootstrap = broker.bootstrap_servers();
    let (records, mut ingest) = tokio::task::spawn_blocking(move || {
        let addr = ingest.metrics_addr();
        let records = common::topics::read_at_least::<Tick>(&bootstrap, "ticks.raw", 40);
        // Acknowledged ticks are visible on /metrics while the process runs (the publisher
        // waits for acknowledgements whenever the feed pauses).
        let (status, body) = common::process::http_get(addr, "/metrics");
        assert_eq!(status, 200);
        let acknowledged = wait_for_metric(addr, "spikewatch_ingest_ticks_acknowledged_total", 40.0);
        assert_eq!(acknowledged, 40.0);
        assert!(body.contains("spikewatch_ingest_ticks_published_total{product=\"BTC-USD\"} 40"), "{body}");
        assert!(common::process::metric_value(&body, "spikewatch_ingest_reconnects_total").unwrap() >= 1.0);
        assert_eq!(common::process::http_get(addr, "/health").0, 200);
        (records, ingest)
    })
    .await
    .unwrap();

    assert_eq!(records.len(), 40, "each ticker exactly once");
    assert!(records.iter().all(|r| r.key.as_deref() == Some("BTC-USD")), "keyed by product id");
    assert_eq!(common::topics::partitions(&broker.bootstrap_servers(), "ticks.raw").len(), 2, "topic created");
    // One key → one partition → the feed's order.
    let trades: Vec<u64> = records.iter().map(|r| r.value.trade_id.unwrap()).collect();
    assert_eq!(trades, expected_trades);

    let status = ingest.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status}\n{}", ingest.stderr());
    assert!(ingest.stdout().contains("ingested: ticks=40 acknowledged=40"), "{}", ingest.stdout());

    // The mirror holds every raw frame, readable as a recording.
    let mut mirrored = Vec::new();
    for entry in std::fs::read_dir(&mirror_dir).unwrap() {
        let mut reader = recording::open(entry.unwrap().path()).unwrap();
        mirrored.extend(reader.by_ref().map(|t| t.unwrap().trade_id.unwrap()));
        assert_eq!(reader.stats().errors_total(), 0);
    }
    mirrored.sort_unstable();
    assert_eq!(mirrored, expected_trades);
    server.abort();
}

/// Accepts the subscription, then holds every ticker until `release` fires.
async fn serve_held(listener: TcpListener, frames: Vec<String>, release: tokio::sync::oneshot::Receiver<()>) {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let Some(Ok(Message::Text(_subscribe))) = ws.next().await else { return };
    let _ = release.await;
    for frame in frames {
        if ws.send(Message::text(frame)).await.is_err() {
            return;
        }
    }
    while let Some(Ok(_)) = ws.next().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_ready_only_after_its_first_tick() {
    let broker = common::Broker::start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (release, held) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(serve_held(listener, fixture_frames(), held));

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.feed.kind = Feed::Exchange;
    config.feed.url = Some(url);
    config.feed.products = vec!["BTC-USD".into()];
    config.kafka.bootstrap_servers = broker.bootstrap_servers();
    config.metrics.bind = "127.0.0.1:0".into();
    let config_path = common::process::write_config(dir.path(), &config);
    let mut ingest =
        common::process::Spawned::start(dir.path(), "ingest", &["--config", config_path.to_str().unwrap(), "ingest"]);
    let bootstrap = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let addr = ingest.metrics_addr();
        // Connected and subscribed, but the server holds every ticker: not ready.
        ingest.wait_for_stderr("subscribed");
        assert_eq!(common::process::http_get(addr, "/health").0, 503, "subscribed without a tick is not ready");
        release.send(()).unwrap();
        common::topics::read_at_least::<Tick>(&bootstrap, "ticks.raw", 40);
        assert_eq!(common::process::http_get(addr, "/health").0, 200, "ticks flow: ready");
        assert!(ingest.terminate().success());
    })
    .await
    .unwrap();
    server.abort();
}
