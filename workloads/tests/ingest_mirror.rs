//! The raw-frame mirror: size- and age-based rotation, and read-back through the recording reader.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use spikewatch::config::MirrorConfig;
use spikewatch::domain::{Feed, Tick};
use spikewatch::sinks::mirror::{self, MirrorWriter};
use spikewatch::sources::coinbase::{Frame, parse_frame};
use spikewatch::sources::metrics::IngestMetrics;
use spikewatch::sources::recording;

const EXCHANGE_FIXTURE: &str = include_str!("fixtures/exchange-ticker-btcusd-head40.ndjson");

/// The raw frames (ack included) and their receive times, as the feed delivered them.
fn frames() -> Vec<(DateTime<Utc>, String)> {
    EXCHANGE_FIXTURE
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts = v["ts"].as_f64().unwrap();
            let at = DateTime::from_timestamp_micros((ts * 1e6).round() as i64).unwrap();
            (at, v["raw"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn expected_ticks(frames: &[(DateTime<Utc>, String)]) -> Vec<Tick> {
    frames
        .iter()
        .filter_map(|(at, text)| match parse_frame(Feed::Exchange, text, *at).unwrap() {
            Frame::Tickers(t) => Some(t),
            _ => None,
        })
        .flatten()
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

fn read_back(dir: &Path) -> (Vec<Tick>, u64) {
    let mut ticks = Vec::new();
    let mut subscriptions = 0;
    for file in files(dir) {
        let mut reader = recording::open(&file).unwrap();
        ticks.extend(reader.by_ref().map(Result::unwrap));
        assert_eq!(reader.stats().errors_total(), 0, "{}", file.display());
        subscriptions += reader.stats().skipped.get("subscriptions").copied().unwrap_or(0);
    }
    (ticks, subscriptions)
}

#[test]
fn size_rotation_keeps_every_frame_and_each_file_under_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let config = MirrorConfig { dir: dir.path().display().to_string(), max_bytes: 4_000, max_age_secs: 86_400 };
    let mut writer = MirrorWriter::new(&config, Feed::Exchange).unwrap();
    let frames = frames();
    let mut rotations = 0;
    for (at, text) in &frames {
        rotations += writer.write(*at, text).unwrap() as usize;
    }
    writer.flush().unwrap();
    let files = files(dir.path());
    assert_eq!(files.len(), rotations);
    assert!(files.len() > 5, "41 frames of ~600 bytes need several 4 kB files, got {}", files.len());
    for file in &files {
        assert!(std::fs::metadata(file).unwrap().len() <= 4_000, "{}", file.display());
    }
    let (ticks, subscriptions) = read_back(dir.path());
    assert_eq!(ticks, expected_ticks(&frames), "receive times and frames survive the round trip");
    assert_eq!(subscriptions, 1);
}

#[test]
fn age_rotation_starts_a_file_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let config = MirrorConfig { dir: dir.path().display().to_string(), max_bytes: u64::MAX, max_age_secs: 60 };
    let mut writer = MirrorWriter::new(&config, Feed::AdvancedTrade).unwrap();
    let start: DateTime<Utc> = "2025-11-08T15:00:00Z".parse().unwrap();
    let frame = r#"{"channel":"heartbeats","timestamp":"2025-11-08T15:00:00Z","sequence_num":1,"events":[]}"#;
    let rotated: Vec<bool> =
        [0, 30, 59, 60, 61, 200].iter().map(|s| writer.write(start + Duration::seconds(*s), frame).unwrap()).collect();
    assert_eq!(rotated, [true, false, false, true, false, true]);
    writer.flush().unwrap();
    assert_eq!(files(dir.path()).len(), 3);
    let name = writer.current_path().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("frames-advanced_trade-20251108T150320.000Z-"), "{name}");
}

#[tokio::test]
async fn the_background_writer_drains_and_flushes_when_the_handles_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        MirrorConfig { dir: dir.path().join("nested").display().to_string(), max_bytes: 1 << 20, max_age_secs: 3600 };
    let metrics = IngestMetrics::new().unwrap();
    let (handle, task) = mirror::spawn(&config, Feed::Exchange, metrics.clone()).unwrap();
    let frames = frames();
    for (at, text) in &frames {
        handle.record(*at, text);
    }
    drop(handle);
    task.await.unwrap();
    assert_eq!(metrics.mirror_frames_written.get(), frames.len() as u64);
    assert_eq!(metrics.mirror_frames_dropped.get(), 0);
    assert_eq!(metrics.mirror_rotations.get(), 1);
    let (ticks, _) = read_back(&dir.path().join("nested"));
    assert_eq!(ticks, expected_ticks(&frames));
}

#[test]
fn mirror_lines_have_the_documented_shape() {
    let at: DateTime<Utc> = "2025-11-12T07:20:11.629353Z".parse().unwrap();
    let line: serde_json::Value =
        serde_json::from_str(&mirror::mirror_line(at, Feed::Exchange, "{\"type\":\"x\"}")).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"received_at": "2025-11-12T07:20:11.629353Z", "feed": "exchange", "frame": "{\"type\":\"x\"}"})
    );
}
