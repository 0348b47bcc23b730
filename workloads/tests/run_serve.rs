//! `spikewatch run --serve`: the in-process pipeline with the API and the live page; after a
//! finite replay it keeps serving until interrupted. Plain `run` stays a finite job.
//! Needs `source scripts/env` (ONNX Runtime).

mod common;

use std::time::{Duration, Instant};

use common::process::{Spawned, http_get};
use common::sse::Reader;
use spikewatch::config::Config;

/// Upper bound on waiting for something that must happen; reached only when something is broken.
const PATIENCE: Duration = Duration::from_secs(120);

fn config_file(dir: &std::path::Path) -> String {
    common::artifact::require_env("ORT_DYLIB_PATH");
    let mut config = Config::default();
    config.model.source = common::artifact::artifact_dir().display().to_string();
    common::process::write_config(dir, &config).display().to_string()
}

/// Starts `spikewatch --config FILE run --serve --bind 127.0.0.1:0 <extra>`; returns it and the
/// address it serves on.
fn start(dir: &std::path::Path, extra: &[&str]) -> (Spawned, std::net::SocketAddr) {
    let config = config_file(dir);
    let args = [&["--config", config.as_str(), "run", "--serve", "--bind", "127.0.0.1:0"], extra].concat();
    let mut run = Spawned::start(dir, "run", &args);
    let line = run.wait_for_stdout_line(|line| line.starts_with("live page: "));
    let addr = line.trim_start_matches("live page: http://").trim_end_matches('/').parse().expect("host:port");
    (run, addr)
}

#[test]
fn after_the_replay_the_api_and_the_page_stay_up_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut run, addr) = start(dir.path(), &["--speed", "max"]);
    run.wait_for_stdout_line(|line| line.starts_with("totals: "));
    run.wait_for_stdout_line(|line| line.starts_with("input finished; still serving"));
    assert!(run.child.try_wait().unwrap().is_none(), "the process keeps running after the replay");

    let (status, body) = http_get(addr, "/predictions/latest?product_id=BTC-USD");
    assert_eq!(status, 200, "{body}");
    let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
    let last = &latest["predictions"][0];
    assert_eq!(last["product_id"], "BTC-USD");
    assert!(last["midprice"].as_f64().is_some_and(|m| m > 0.0), "{last}");

    let (status, version) = http_get(addr, "/version");
    assert_eq!(status, 200);
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(version["model_version"], last["model_version"], "the API serves the pipeline's model");
    assert_eq!(http_get(addr, "/health").0, 200);
    let (status, page) = http_get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("/assets/live.js"), "{page}");

    // The container health check of the Compose stack, against this server.
    let health = format!("http://{addr}/health");
    let mut healthy = Spawned::start(dir.path(), "healthcheck-ok", &["healthcheck", &health]);
    assert!(healthy.child.wait().unwrap().success(), "{}", healthy.stderr());
    let missing = format!("http://{addr}/no-such-path");
    let mut unhealthy = Spawned::start(dir.path(), "healthcheck-404", &["healthcheck", &missing]);
    assert!(!unhealthy.child.wait().unwrap().success());
    assert!(unhealthy.stderr().contains("answered 404 Not Found"), "{}", unhealthy.stderr());

    assert!(run.interrupt().success(), "Ctrl-C stops it cleanly:\n{}", run.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_carries_the_pipelines_predictions_while_it_replays() {
    let dir = tempfile::tempdir().unwrap();
    let (mut run, addr) = start(dir.path(), &["--speed", "5"]);
    let response = reqwest::get(format!("http://{addr}/predictions/stream?product_id=BTC-USD")).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = Reader::new(response.bytes_stream());
    let mut previous = None;
    for _ in 0..5 {
        let message = stream.next_event().await.expect("the replay is still running");
        assert_eq!(message.event.as_deref(), Some("prediction"), "{message:?}");
        let prediction = message.json();
        assert_eq!(prediction["product_id"], "BTC-USD");
        assert!(prediction["midprice"].as_f64().is_some_and(|m| m > 0.0), "{prediction}");
        let time = chrono::DateTime::parse_from_rfc3339(prediction["event_time"].as_str().unwrap()).unwrap();
        assert!(previous.is_none_or(|p| p <= time), "event time goes forward");
        previous = Some(time);
    }
    // SIGTERM with the stream open: it ends, and so does the process.
    assert!(run.terminate().success(), "{}", run.stderr());
    let deadline = Instant::now() + PATIENCE;
    while stream.next_event().await.is_some() {
        assert!(Instant::now() < deadline, "the stream never ended");
    }
}

#[test]
fn plain_run_stays_a_finite_job_bind_needs_serve_and_healthcheck_refuses_a_bad_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let stdout = Spawned::start(dir.path(), "run", &["--config", &config, "run"]).wait_success();
    assert!(stdout.lines().last().is_some_and(|line| line.starts_with("totals: ")), "{stdout}");
    assert!(!stdout.contains("live page"), "{stdout}");

    let mut bad_url = Spawned::start(dir.path(), "healthcheck-bad-url", &["healthcheck", "not a url"]);
    assert!(!bad_url.child.wait().unwrap().success());
    // One line: the JSON log event of the failure (the log format of these processes).
    let lines: Vec<String> = bad_url.stderr().lines().map(String::from).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let event: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(event["level"], "ERROR", "{event}");
    assert!(event["message"].as_str().unwrap().starts_with("invalid URL \"not a url\""), "{event}");

    let mut bind_alone = Spawned::start(dir.path(), "bind", &["run", "--bind", "127.0.0.1:0"]);
    let status = bind_alone.child.wait().unwrap();
    assert!(!status.success());
    assert!(bind_alone.stderr().contains("--serve"), "{}", bind_alone.stderr());
}
