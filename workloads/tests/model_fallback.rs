//! No silent run without predictions: when the ML model asked for cannot be loaded (here: no
//! ONNX Runtime library at `ORT_DYLIB_PATH`), the real binary either answers with the baseline
//! and says so wherever one looks (`run`'s totals line, `/version`, `/metrics`), or, with
//! `model.require_ml`, exits non-zero naming the cause.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::process::{Spawned, http_get, write_config};
use spikewatch::config::Config;
use spikewatch::domain::ModelVariant;

/// The environment of a machine without ONNX Runtime.
const NO_RUNTIME: [(&str, &str); 1] = [("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")];

/// A config asking for the ML model, `require_ml` as given, everything else default.
fn config_asking_for_ml(dir: &Path, require_ml: bool) -> String {
    let mut config = Config::default();
    config.model.variant = ModelVariant::Ml;
    config.model.require_ml = require_ml;
    config.api.bind = "127.0.0.1:0".into();
    write_config(dir, &config).display().to_string()
}

fn recording() -> String {
    common::recording(common::EXCHANGE_RECORDING).display().to_string()
}

#[test]
fn run_without_onnx_runtime_predicts_with_the_baseline_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_asking_for_ml(dir.path(), false);
    let recording = recording();
    let args = ["--config", &config, "run", "--input", &recording, "--speed", "max"];
    let stdout = Spawned::start_with_env(dir.path(), "run", &args, &NO_RUNTIME).wait_success();
    let totals = stdout.lines().rev().find(|l| l.starts_with("totals:")).expect("totals line");
    assert!(totals.ends_with(" model=baseline model_fallback=runtime_unavailable"), "{totals}");
    assert!(!totals.contains(" predictions=0 "), "the baseline predicted: {totals}");
    let warning = stdout.lines().find(|l| l.starts_with("warning: ")).expect("a warning line before the totals");
    assert!(warning.contains("in place of the ML model") && warning.contains("ORT_DYLIB_PATH"), "{warning}");
}

#[test]
fn run_without_onnx_runtime_stops_when_the_ml_model_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_asking_for_ml(dir.path(), true);
    let recording = recording();
    let args = ["--config", &config, "run", "--input", &recording, "--speed", "max"];
    let mut run = Spawned::start_with_env(dir.path(), "run", &args, &NO_RUNTIME);
    let status = run.child.wait().unwrap();
    assert!(!status.success(), "exit status {status}:\n{}", run.stdout());
    let stderr = run.stderr();
    assert!(stderr.contains("model.require_ml") && stderr.contains("ORT_DYLIB_PATH"), "{stderr}");
    assert!(!run.stdout().contains("totals:"), "nothing was replayed:\n{}", run.stdout());
}

#[test]
fn serve_without_onnx_runtime_reports_the_fallback_on_version_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_asking_for_ml(dir.path(), false);
    let mut serve = Spawned::start_with_env(dir.path(), "serve", &["--config", &config, "serve"], &NO_RUNTIME);
    let addr = serve.metrics_addr();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(addr, "/health").0 != 200 {
        assert!(Instant::now() < deadline, "never healthy:\n{}", serve.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = http_get(addr, "/version");
    assert_eq!(status, 200, "{body}");
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["model_variant"], "baseline", "{version}");
    assert_eq!(version["model_fallback"]["reason"], "runtime_unavailable", "{version}");
    assert!(version["model_fallback"]["detail"].as_str().unwrap().contains("ORT_DYLIB_PATH"), "{version}");
    let (_, metrics) = http_get(addr, "/metrics");
    for series in [
        r#"model_fallback_active{reason="runtime_unavailable"} 1"#,
        r#"model_fallback_active{reason="model_unloadable"} 0"#,
        r#"model_variant_active{variant="baseline"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == series), "{series} missing:\n{metrics}");
    }
}

#[test]
fn serve_without_onnx_runtime_exits_non_zero_when_the_ml_model_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_asking_for_ml(dir.path(), true);
    let mut serve = Spawned::start_with_env(dir.path(), "serve", &["--config", &config, "serve"], &NO_RUNTIME);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running:\n{}", serve.stderr());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "{status}");
    assert!(serve.stderr().contains("model.require_ml"), "{}", serve.stderr());
}

#[test]
fn the_predictor_without_onnx_runtime_reports_the_fallback_on_its_metrics_port() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_asking_for_ml(dir.path(), false);
    let env = [NO_RUNTIME[0], ("SPIKEWATCH_METRICS_PORT", "0"), ("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")];
    let mut predict = Spawned::start_with_env(dir.path(), "predict", &["--config", &config, "predict"], &env);
    let addr = predict.metrics_addr();
    let (status, metrics) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    for series in [
        r#"model_fallback_active{reason="runtime_unavailable"} 1"#,
        r#"model_variant_active{variant="baseline"} 1"#,
        r#"model_variant_active{variant="ml"} 0"#,
    ] {
        assert!(metrics.lines().any(|l| l == series), "{series} missing:\n{metrics}");
    }
}
