//! `spikewatch predict` refuses to start with a clear message when the model it must serve
//! cannot load: any variant asked for that cannot load, or the ML model with
//! `model.require_ml` (without it, the baseline answers in the ML model's place:
//! `tests/model_fallback.rs`).

use std::process::Command;

/// A config file that requires the ML model, in a directory that lives as long as the value.
fn requiring_ml() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spikewatch.yaml");
    std::fs::write(&path, "model:\n  require_ml: true\n").unwrap();
    let path = path.display().to_string();
    (dir, path)
}

fn predict(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let (_dir, config) = requiring_ml();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spikewatch"));
    cmd.args(["--config", &config, "predict"])
        .args(args)
        .env("SPIKEWATCH_METRICS_PORT", "0")
        .env("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn missing_onnx_runtime_is_a_clear_startup_error() {
    let artifacts = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/artifacts/spikewatch-gbdt");
    let (ok, stderr) =
        predict(&[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")], &["--model", artifacts, "--variant", "ml"]);
    assert!(!ok);
    assert!(stderr.contains("model.require_ml is set and the ML model cannot be loaded"), "{stderr}");
    assert!(stderr.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so is not a file"), "{stderr}");
    assert!(stderr.contains("source scripts/env"), "{stderr}");
}

#[test]
fn onnx_runtime_is_found_only_through_ort_dylib_path() {
    // A .venv with ONNX Runtime next to the working directory is not looked for: the library
    // comes from explicit configuration only.
    let artifacts = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/artifacts/spikewatch-gbdt");
    let (_dir, config) = requiring_ml();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spikewatch"));
    cmd.args(["--config", &config, "predict", "--model", artifacts, "--variant", "ml"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("SPIKEWATCH_METRICS_PORT", "0")
        .env("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("SPIKEWATCH_ROOT");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("ONNX Runtime not configured: ORT_DYLIB_PATH is unset"), "{stderr}");
}

#[test]
fn missing_model_source_is_a_clear_startup_error() {
    let (ok, stderr) = predict(&[], &["--model", "/nonexistent/artifacts", "--variant", "baseline"]);
    assert!(!ok);
    assert!(stderr.contains("cannot load model from /nonexistent/artifacts"), "{stderr}");
}
