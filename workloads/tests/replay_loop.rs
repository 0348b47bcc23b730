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

/// A looping replay restarted (a new pod, a config change) in front of a running featurizer. The
/// first run went many passes ahead in event time; had the second started again at the
/// recording's own time, the featurizer would reject its ticks as out of order (older than what
/// it has seen by more than its tolerance) until it caught up, as many passes later. It
/// continues after the raw topic's latest tick instead, and features keep flowing at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_looping_replay_continues_after_the_topics_latest_tick_and_features_keep_flowing() {
    const TICKS: usize = 50;
    const PASSES: usize = 10;
    let broker = common::Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let input = short_recording(dir.path(), TICKS);
    let mut config = Config { kafka: common::kafka_config(&broker), ..Config::default() };
    config.metrics.bind = "127.0.0.1:0".into();
    let config_path = common::process::write_config(dir.path(), &config);
    let (config_arg, input_arg) = (config_path.display().to_string(), input.display().to_string());
    let replay = |name: &str, pace: &[&str]| {
        let mut args = vec!["--config", &config_arg, "replay", "--loop", "--input", &input_arg];
        args.extend_from_slice(pace);
        common::process::Spawned::start(dir.path(), name, &args)
    };
    let mut featurizer =
        common::process::Spawned::start(dir.path(), "featurize", &["--config", &config_arg, "featurize"]);
    let metrics = featurizer.metrics_addr();
    let featurizer_metric = move |name: &str| -> f64 {
        let (_, body) = common::process::http_get(metrics, "/metrics");
        common::process::metric_value(&body, name).unwrap_or_else(|| panic!("no {name}:\n{body}"))
    };
    let out_of_order = move || {
        let (_, body) = common::process::http_get(metrics, "/metrics");
        let line =
            body.lines().find(|l| l.starts_with("spikewatch_featurizer_ticks_rejected_total{kind=\"out_of_order\"}"));
        line.and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no out_of_order:\n{body}"))
    };

    // The first run, as fast as the broker takes the ticks, for at least PASSES passes.
    let mut first = replay("replay-1", &["--speed", "max"]);
    let bootstrap = broker.bootstrap_servers();
    let (published_by_first, latest_of_first) = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            common::topics::wait_for_count(&bootstrap, "ticks.raw", TICKS * PASSES);
            assert!(first.terminate().success(), "{}", first.stderr());
            let ticks = common::topics::read_until::<Tick>(&bootstrap, "ticks.raw", |_| true);
            (ticks.len(), ticks.iter().map(|r| r.value.exchange_time).max().unwrap())
        })
        .await
        .unwrap()
    };
    // The featurizer has caught up with the first run and accepted every tick.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while featurizer_metric("spikewatch_featurizer_ticks_consumed_total") < published_by_first as f64 {
        assert!(std::time::Instant::now() < deadline, "the featurizer never caught up:\n{}", featurizer.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(out_of_order(), 0.0);
    let published_before = featurizer_metric("spikewatch_featurizer_features_published_total");

    // The second run at 20 times the recorded pace (at most 50 ms between two ticks).
    let mut second = replay("replay-2", &["--speed", "20", "--max-sleep", "0.05"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while featurizer_metric("spikewatch_featurizer_features_published_total") < published_before + 20.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "features stopped after the restart ({} ticks rejected as out of order)\nreplay-2:\n{}",
            out_of_order(),
            second.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(out_of_order(), 0.0, "no tick of the second run is older than the first run's");
    // It read where to continue from the topic, and it is the first run's latest tick. (The
    // featurizer's counter may move before the second run's first tick: wait for its log.)
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !second.stderr().contains("\"continuing after the topic's latest tick\"") {
        assert!(std::time::Instant::now() < deadline, "replay-2 never continued:\n{}", second.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = second.stderr();
    let continued = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|event| event["message"] == "continuing after the topic's latest tick")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(continued["after"], latest_of_first.to_string(), "{continued}");
    let (second_ticks, _) = tokio::task::spawn_blocking(move || {
        let raw = common::topics::read_first::<Tick>(&bootstrap, "ticks.raw", published_by_first + 1);
        (raw[published_by_first..].iter().map(|r| r.value.exchange_time).collect::<Vec<_>>(), ())
    })
    .await
    .unwrap();
    let first_of_second = second_ticks.into_iter().min().unwrap();
    assert!(first_of_second > latest_of_first, "{first_of_second} after {latest_of_first}");
    assert!(first_of_second - latest_of_first <= TimeDelta::from_std(PASS_GAP).unwrap(), "{first_of_second}");
    assert!(second.terminate().success());
    featurizer.terminate();
}

/// A config key this version does not know (written by a newer operator) does not stop a
/// workload: it is logged and counted on `/metrics`.
#[tokio::test]
async fn unknown_config_keys_are_logged_and_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "kafka:\n  bootstrap_servers: 127.0.0.1:1\n  create_topics: false\n  linger_ms: 5\n\
         metrics:\n  bind: 127.0.0.1:0\ntracing:\n  otlp_endpoint: http://collector:4317\n",
    )
    .unwrap();
    let input = short_recording(dir.path(), 10);
    let mut replay = common::process::Spawned::start(
        dir.path(),
        "replay",
        &["--config", path.to_str().unwrap(), "replay", "--speed", "1", "--input", input.to_str().unwrap()],
    );
    let (body, stderr) = tokio::task::spawn_blocking(move || {
        let addr = replay.metrics_addr();
        let (_, body) = common::process::http_get(addr, "/metrics");
        let stderr = replay.stderr();
        // Nothing to flush to: the broker address is unreachable on purpose.
        replay.kill_hard();
        (body, stderr)
    })
    .await
    .unwrap();
    assert_eq!(common::process::metric_value(&body, "spikewatch_config_unknown_keys"), Some(2.0), "{body}");
    for key in ["kafka.linger_ms", "tracing"] {
        assert!(
            stderr.lines().any(|l| l.contains("\"WARN\"") && l.contains(&format!("\"key\":\"{key}\""))),
            "{key}: {stderr}"
        );
    }
}
