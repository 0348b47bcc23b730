//! Replay into an in-memory link: layouts, skipped frames, malformed lines, shutdown.

mod common;

use std::time::Duration;

use chrono::Utc;
use prometheus::Registry;
use spikewatch::pipeline::pacing::Speed;
use spikewatch::pipeline::replay::{ReplayMetrics, ReplayOptions, replay};
use spikewatch::transport::memory;
use tokio_util::sync::CancellationToken;

fn options(inputs: Vec<std::path::PathBuf>) -> ReplayOptions {
    ReplayOptions { inputs, speed: Speed::Max, max_sleep: Duration::ZERO, repeat: false }
}

#[tokio::test]
async fn malformed_lines_and_non_ticker_frames_are_counted_and_skipped() {
    let text = std::fs::read_to_string(common::recording(common::EXCHANGE_RECORDING)).unwrap();
    let mut lines: Vec<&str> = text.lines().take(11).collect(); // the subscriptions ack + 10 tickers
    lines.insert(3, "{not json");
    lines.insert(
        6,
        r#"{"ts": 1762932011.7, "pair": "BTC-USD", "raw": "{\"type\":\"heartbeat\",\"product_id\":\"BTC-USD\"}"}"#,
    );
    lines.insert(8, "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.ndjson");
    std::fs::write(&path, lines.join("\n")).unwrap();

    let metrics = ReplayMetrics::register(&Registry::new()).unwrap();
    let (tx, mut rx) = memory::link(64);
    let started = Utc::now();
    let totals = replay(&options(vec![path]), tx, CancellationToken::new(), Some(&metrics)).await.unwrap();
    let ticks = memory::recv_batch(&mut rx, 64).await;

    assert_eq!(ticks.len(), 10);
    assert_eq!(totals.ticks, 10);
    assert_eq!(totals.malformed_lines, 1);
    assert_eq!(totals.skipped_frames, 2, "subscriptions ack and heartbeat");
    assert!(!totals.stopped_early);
    assert_eq!(metrics.ticks_read.get(), 10);
    assert_eq!(metrics.malformed_lines.with_label_values(&["invalid_json"]).get(), 1);
    assert_eq!(metrics.frames_skipped.with_label_values(&["heartbeat"]).get(), 1);
    assert!(ticks.iter().all(|t| t.receive_time >= started), "replayed ticks are received now");
    assert!(ticks.windows(2).all(|w| w[0].exchange_time <= w[1].exchange_time), "recording order");
}

#[tokio::test]
async fn both_recording_layouts_replay_in_the_given_order() {
    let inputs =
        vec![common::recording(common::ADVANCED_TRADE_RECORDING), common::recording(common::EXCHANGE_RECORDING)];
    let (tx, mut rx) = memory::link(16_384);
    let totals = replay(&options(inputs), tx, CancellationToken::new(), None).await.unwrap();
    let ticks = memory::recv_batch(&mut rx, 16_384).await;
    assert_eq!(ticks.len() as u64, totals.ticks);
    assert_eq!(ticks.first().unwrap().source, spikewatch::domain::Feed::AdvancedTrade);
    assert_eq!(ticks.last().unwrap().source, spikewatch::domain::Feed::Exchange);
    assert_eq!(totals.ticks, 223 + 5_996);
}

#[tokio::test]
async fn shutdown_stops_a_paced_replay() {
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = memory::link(16);
    // Original pace: the bundled recording would take minutes even with holes compressed.
    let paced =
        ReplayOptions { inputs: vec![], speed: Speed::Factor(1.0), max_sleep: Duration::from_secs(5), repeat: false };
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { replay(&paced, tx, shutdown, None).await }
    });
    let first = rx.recv().await.expect("the first tick is due at once");
    assert_eq!(first.product_id, "BTC-USD");
    shutdown.cancel();
    let totals = task.await.unwrap().unwrap();
    assert!(totals.stopped_early);
    assert!(totals.ticks < 5_996);
}

#[tokio::test]
async fn a_missing_input_file_is_an_error_naming_it() {
    let (tx, _rx) = memory::link(1);
    let err = replay(&options(vec!["/nonexistent/ticks.ndjson".into()]), tx, CancellationToken::new(), None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/ticks.ndjson"), "{err:#}");
}
