//! `spikewatch replay --loop`: a recording as an endless feed. Each pass is shifted in exchange
//! time past the previous one (the feature engine rejects ticks older than what it has seen),
//! a recording can come from an `http(s)://` URL, and `/health` reports ready only once the
//! first tick is on its way to the broker.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use spikewatch::config::Config;
use spikewatch::domain::Tick;
use spikewatch::pipeline::pacing::Speed;
use spikewatch::pipeline::replay::{PASS_GAP, ReplayOptions, replay};
use spikewatch::transport::memory;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The first `n` ticker lines of the bundled Exchange recording, as a file.
fn short_recording(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::recording(common::EXCHANGE_RECORDING)).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(r#"\"type\":\"ticker\""#)).take(n).collect();
    assert_eq!(lines.len(), n);
    let path = dir.join("short.ndjson");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[tokio::test]
async fn a_looped_recording_moves_forward_in_exchange_time_pass_after_pass() {
    let dir = tempfile::tempdir().unwrap();
    let input = short_recording(dir.path(), 10);
    let options = ReplayOptions { inputs: vec![input], speed: Speed::Max, max_sleep: Duration::ZERO, repeat: true };
    let (tx, mut rx) = memory::link(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { replay(&options, tx, shutdown, None).await }
    });
    let mut ticks: Vec<Tick> = Vec::new();
    while ticks.len() < 30 {
        ticks.push(rx.recv().await.expect("a looping replay keeps sending"));
    }
    shutdown.cancel();
    drop(rx);
    let totals = task.await.unwrap().unwrap();
    assert!(totals.passes >= 2, "{totals:?}");
    assert!(totals.stopped_early, "only shutdown ends a loop");

    let (first, second, third) = (&ticks[..10], &ticks[10..20], &ticks[20..30]);
    let recorded = first.iter().map(|t| t.exchange_time);
    let (start, end) = (recorded.clone().min().unwrap(), recorded.max().unwrap());
    let shift = (end - start) + TimeDelta::from_std(PASS_GAP).unwrap();
    for (a, b) in first.iter().zip(second) {
        assert_eq!(b.exchange_time - a.exchange_time, shift, "pass 2 is pass 1 shifted");
        assert_eq!((&a.product_id, a.price, a.trade_id), (&b.product_id, b.price, b.trade_id), "same ticks");
    }
    for (a, b) in second.iter().zip(third) {
        assert_eq!(b.exchange_time - a.exchange_time, shift, "every pass advances by the same shift");
    }
    let latest_of_pass_1 = first.iter().map(|t| t.exchange_time).max().unwrap();
    assert!(second.iter().all(|t| t.exchange_time > latest_of_pass_1), "no tick of pass 2 is older than pass 1");
}

#[tokio::test]
async fn without_loop_the_replay_ends_after_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let input = short_recording(dir.path(), 10);
    let options = ReplayOptions { inputs: vec![input], speed: Speed::Max, max_sleep: Duration::ZERO, repeat: false };
    let (tx, mut rx) = memory::link(64);
    let totals = replay(&options, tx, CancellationToken::new(), None).await.unwrap();
    assert_eq!((totals.ticks, totals.passes, totals.stopped_early), (10, 1, false));
    assert_eq!(memory::recv_batch(&mut rx, 64).await.len(), 10);
}

/// Serves `body` once per connection over HTTP/1.1, but only after `release` fired.
async fn serve_held(listener: TcpListener, body: Vec<u8>, release: tokio::sync::oneshot::Receiver<()>) {
    let _ = release.await;
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else { return };
        let mut request = [0u8; 4096];
        let _ = tcp.read(&mut request).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = tcp.write_all(head.as_bytes()).await;
        let _ = tcp.write_all(&body).await;
        let _ = tcp.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_a_url_loops_into_kafka_and_is_ready_only_once_ticks_flow() {
    let broker = common::Broker::start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ticks/btc-usd-2026-04-06.csv.gz", listener.local_addr().unwrap());
    // A real gzip tick CSV (3,578 rows): held back until the test has seen /health answer 503.
    let body = std::fs::read(common::recording("ticks/btc-usd-2026-04-06.csv.gz")).unwrap();
    let (release, held) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(serve_held(listener, body, held));

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.kafka.bootstrap_servers = broker.bootstrap_servers();
    config.metrics.bind = "127.0.0.1:0".into();
    let config_path = common::process::write_config(dir.path(), &config);
    let config_arg = config_path.to_str().unwrap().to_string();
    let mut replay = common::process::Spawned::start(
        dir.path(),
        "replay",
        // 200 times the recorded pace: a pass of the ten-minute recording takes three seconds.
        &["--config", &config_arg, "replay", "--loop", "--speed", "200", "--input", &url],
    );

    let bootstrap = broker.bootstrap_servers();
    let (records, body, mut replay) = tokio::task::spawn_blocking(move || {
        let addr = replay.metrics_addr();
        assert_eq!(common::process::http_get(addr, "/health").0, 503, "no tick yet: not ready");
        release.send(()).unwrap();
        // Two passes of 3,578 ticks; the second shifted past the first.
        let records = common::topics::read_first::<Tick>(&bootstrap, "ticks.raw", 2 * 3_578 + 1);
        assert_eq!(common::process::http_get(addr, "/health").0, 200, "ticks flow: ready");
        let (_, body) = common::process::http_get(addr, "/metrics");
        (records, body, replay)
    })
    .await
    .unwrap();
    let passes = common::process::metric_value(&body, "spikewatch_replay_passes_total").unwrap();
    assert!(passes >= 2.0, "{body}");
    // One key, one partition: the topic holds the feed's order, pass after pass.
    let times: Vec<_> = records.iter().map(|r| r.value.exchange_time).collect();
    let (first, second) = (&times[..3_578], &times[3_578..2 * 3_578]);
    assert!(first.iter().max() < second.iter().min(), "the second pass is later in exchange time than the first");
    assert!(second.iter().max() < Some(&times[2 * 3_578]), "the third pass follows the second");

    let status = replay.terminate();
    assert!(status.success(), "SIGTERM stops a looping replay cleanly: {status}\n{}", replay.stderr());
    assert!(replay.stdout().contains("passes="), "{}", replay.stdout());
    server.abort();
}

#[tokio::test]
async fn an_unreachable_recording_url_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/missing.ndjson", listener.local_addr().unwrap());
    drop(listener);
    let mut config = Config::default();
    config.kafka.bootstrap_servers = "127.0.0.1:1".into();
    config.metrics.bind = "127.0.0.1:0".into();
    let config_path = common::process::write_config(dir.path(), &config);
    let mut replay = common::process::Spawned::start(
        dir.path(),
        "replay",
        &["--config", config_path.to_str().unwrap(), "replay", "--input", &url],
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = replay.child.wait().unwrap();
        (status, replay.stderr())
    })
    .await
    .unwrap();
    assert!(!status.0.success());
    assert!(status.1.contains(&url), "the error names the URL: {}", status.1);
}
