//! The committed artifact scored in Rust equals the trainer's probabilities (fixtures.json),
//! for the `ml` graph through ONNX Runtime and for the HAR-RV baseline, on rows with and without
//! trades (missing trade features); feature-order mismatches are rejected at load time. Needs
//! `source scripts/env` (ONNX Runtime, Python).

use std::path::PathBuf;
use std::process::Command;

use spikewatch::config::ModelConfig;
use spikewatch::domain::{Feature, Features, ModelVariant};
use spikewatch::model::onnx::{OnnxModel, OnnxOptions};
use spikewatch::model::{self, ModelHandle};
mod common;
use common::artifact::{artifact_dir, repo_root, require_env};

struct Fixture {
    features: Features,
    probability: f64,
    baseline_probability: f64,
}

fn fixtures() -> (Vec<Fixture>, f64) {
    let text = std::fs::read_to_string(artifact_dir().join("fixtures.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Fixture {
            features: serde_json::from_value(r["features"].clone()).unwrap(),
            probability: r["probability"].as_f64().unwrap(),
            baseline_probability: r["baseline_probability"].as_f64().unwrap(),
        })
        .collect::<Vec<_>>();
    assert!(rows.len() >= 20, "fixtures.json has too few rows");
    let without_trades = rows.iter().filter(|r| r.features[Feature::TradeRate10s].is_nan()).count();
    assert!(without_trades > 0 && without_trades < rows.len(), "rows with and without trades");
    (rows, json["threshold"].as_f64().unwrap())
}

fn config(variant: ModelVariant) -> ModelConfig {
    ModelConfig { variant, source: artifact_dir().display().to_string(), ..ModelConfig::default() }
}

#[tokio::test]
async fn gbdt_matches_the_trainer_single_and_batched() {
    require_env("ORT_DYLIB_PATH");
    let (rows, threshold) = fixtures();
    let model = model::load(&config(ModelVariant::Ml)).await.unwrap();
    assert_eq!(model.info().variant, ModelVariant::Ml);
    assert_eq!(model.info().threshold, threshold);
    let features: Vec<Features> = rows.iter().map(|r| r.features).collect();
    let batched = model.predict_proba(&features).unwrap();
    for (i, (row, p)) in rows.iter().zip(&batched).enumerate() {
        assert!((p - row.probability).abs() <= 1e-5, "row {i}: rust {p} vs trainer {}", row.probability);
        let single = model.predict_proba(std::slice::from_ref(&row.features)).unwrap();
        assert!((single[0] - p).abs() <= 1e-7, "row {i}: single {} vs batched {p}", single[0]);
    }
    assert!(model.predict_proba(&[]).unwrap().is_empty());
}

#[tokio::test]
async fn baseline_matches_the_trainer() {
    let (rows, _) = fixtures();
    let model = model::load(&config(ModelVariant::Baseline)).await.unwrap();
    assert_eq!(model.info().variant, ModelVariant::Baseline);
    let features: Vec<Features> = rows.iter().map(|r| r.features).collect();
    for (i, (row, p)) in rows.iter().zip(model.predict_proba(&features).unwrap()).enumerate() {
        assert!(
            (p - row.baseline_probability).abs() <= 1e-9,
            "row {i}: rust {p} vs trainer {}",
            row.baseline_probability
        );
    }
}

#[tokio::test]
async fn non_finite_features_are_an_error_not_a_score() {
    require_env("ORT_DYLIB_PATH");
    let model = model::load(&config(ModelVariant::Ml)).await.unwrap();
    let (rows, _) = fixtures();
    let mut bad = rows[0].features;
    bad[Feature::SpreadRel] = f64::INFINITY;
    let err = model.predict_proba(&[rows[1].features, bad]).unwrap_err();
    assert!(err.to_string().contains("spread_rel"), "{err}");
}

#[tokio::test]
async fn handle_switches_variants_atomically() {
    require_env("ORT_DYLIB_PATH");
    let handle = ModelHandle::load(&config(ModelVariant::Ml)).await.unwrap();
    assert_eq!(handle.available(), [ModelVariant::Ml, ModelVariant::Baseline]);
    let ml = handle.current();
    let info = handle.set_variant(ModelVariant::Baseline).unwrap();
    assert_eq!(info.variant, ModelVariant::Baseline);
    assert_eq!(handle.current().info().variant, ModelVariant::Baseline);
    assert_eq!(ml.info().variant, ModelVariant::Ml, "readers keep the model they hold");
    handle.set_variant(ModelVariant::Ml).unwrap();
    let reloaded = handle.reload().await.unwrap();
    assert_eq!(reloaded.variant, ModelVariant::Ml);
}

#[tokio::test]
async fn threshold_override_applies_to_the_gbdt() {
    require_env("ORT_DYLIB_PATH");
    let config = ModelConfig { threshold: Some(0.25), ..config(ModelVariant::Ml) };
    let model = model::load(&config).await.unwrap();
    assert_eq!(model.info().threshold, 0.25);
}

fn rewrite_metadata(flag: &str) -> (tempfile::TempDir, PathBuf) {
    let python = require_env("SPIKEWATCH_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.onnx");
    let status = Command::new(python)
        .current_dir(repo_root())
        .args(["-m", "models.fixture_model"])
        .arg(artifact_dir().join("model.onnx"))
        .arg(&out)
        .arg(flag)
        .status()
        .unwrap();
    assert!(status.success(), "models.fixture_model failed");
    (dir, out)
}

#[test]
fn swapped_feature_order_is_rejected_at_load() {
    require_env("ORT_DYLIB_PATH");
    let (_dir, path) = rewrite_metadata("--swap-features");
    let err = OnnxModel::load(&path, &OnnxOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("feature mismatch"), "{text}");
    assert!(text.contains("midprice"), "{text}");
}

#[test]
fn missing_feature_metadata_is_rejected_at_load() {
    require_env("ORT_DYLIB_PATH");
    let (_dir, path) = rewrite_metadata("--drop-feature-names");
    let err = OnnxModel::load(&path, &OnnxOptions::default()).unwrap_err();
    assert!(err.to_string().contains("feature_names"), "{err}");
}

#[tokio::test]
async fn missing_source_is_a_clear_error() {
    let config = ModelConfig { source: "/nonexistent/model-dir".into(), ..ModelConfig::default() };
    let err = model::load(&config).await.err().expect("must fail");
    assert!(err.to_string().contains("/nonexistent/model-dir"), "{err}");
}
