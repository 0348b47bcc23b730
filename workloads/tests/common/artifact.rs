//! The committed model artifact (`models/artifacts/spikewatch-gbdt/`) and its trainer fixtures.

use std::path::{Path, PathBuf};

use spikewatch::domain::Features;

/// A variable `scripts/env` exports; a clear failure (never a skip) when it is missing.
pub fn require_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} is not set: run `source scripts/env` (after `scripts/setup`) before the tests"),
    }
}

/// The repository's root (the workspace above `workloads/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workloads/ has a parent").to_path_buf()
}

pub fn artifact_dir() -> PathBuf {
    repo_root().join("models/artifacts/spikewatch-gbdt")
}

/// The trainer's fixture rows with the probabilities the trainer computed for them.
pub fn fixtures() -> Vec<(Features, f64)> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(artifact_dir().join("fixtures.json")).unwrap()).unwrap();
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (serde_json::from_value(r["features"].clone()).unwrap(), r["probability"].as_f64().unwrap()))
        .collect()
}
