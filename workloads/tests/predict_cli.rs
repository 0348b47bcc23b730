//! `spikewatch predict` refuses to start with a clear message when the model cannot load.

use std::process::Command;

fn predict(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spikewatch"));
    cmd.arg("predict").args(args).env("METRICS_PORT", "0").env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9");
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
    assert!(stderr.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so does not exist"), "{stderr}");
    assert!(stderr.contains("source scripts/env"), "{stderr}");
}

#[test]
fn missing_model_source_is_a_clear_startup_error() {
    let (ok, stderr) = predict(&[], &["--model", "/nonexistent/artifacts", "--variant", "baseline"]);
    assert!(!ok);
    assert!(stderr.contains("cannot load model from /nonexistent/artifacts"), "{stderr}");
}
