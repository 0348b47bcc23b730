//! The trained GBDT, exported to ONNX by `models/train.py`, scored with ONNX Runtime (`ort`).
//!
//! The ONNX Runtime shared library is loaded at run time (`ort`'s `load-dynamic`) from the path
//! in `ORT_DYLIB_PATH`, and from nowhere else: the workload image sets it, and in this
//! repository `scripts/setup` links the library into `.venv/` where `.cargo/config.toml` and
//! `scripts/env` point it.
//!
//! The model's `metadata_props` carry what the trainer knew: `feature_names` (JSON list, must
//! equal [`FEATURE_NAMES`] in order; a mismatch is a load error, never silent garbage),
//! `model_name`, `model_version`, `threshold`, `feature_set`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

use super::{Model, ModelError, ModelInfo, check_finite};
use crate::domain::{FEATURE_NAMES, FEATURE_SET_VERSION, Features, ModelVariant};

/// Metadata keys written by the trainer.
pub mod metadata {
    pub const FEATURE_NAMES: &str = "feature_names";
    pub const MODEL_NAME: &str = "model_name";
    pub const MODEL_VERSION: &str = "model_version";
    pub const THRESHOLD: &str = "threshold";
    pub const FEATURE_SET: &str = "feature_set";
}

/// Name of the ONNX output holding class probabilities (`[n, 2]`, zipmap disabled).
const PROBABILITY_OUTPUT: &str = "probabilities";

#[derive(Debug, Clone, Default)]
pub struct OnnxOptions {
    /// Overrides the threshold stored in the model's metadata.
    pub threshold: Option<f64>,
    /// `(name, version)` from the registry, which take precedence over the metadata's.
    pub naming: Option<(String, String)>,
}

/// A LightGBM classifier in an ONNX Runtime session.
///
/// `Session::run` needs exclusive access, so a small pool of sessions serves concurrent
/// callers (one per core, at most 4); each session runs single-threaded, which is fastest for
/// trees this small and keeps the process's thread count predictable.
pub struct OnnxModel {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    input_name: String,
    info: ModelInfo,
    path: PathBuf,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel").field("path", &self.path).field("info", &self.info).finish()
    }
}

/// Where the ONNX Runtime shared library is: `ORT_DYLIB_PATH`.
pub fn find_runtime_library() -> Result<PathBuf, String> {
    const HINT: &str = "set ORT_DYLIB_PATH to the path of libonnxruntime.so (in a checkout, \
                        `scripts/setup` installs it and `source scripts/env` sets the variable)";
    match std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("ORT_DYLIB_PATH={} is not a file; {HINT}", path.display()))
            }
        }
        None => Err(format!("ONNX Runtime not configured: ORT_DYLIB_PATH is unset; {HINT}")),
    }
}

/// The process-wide ONNX Runtime environment, created on first use.
pub fn environment() -> Result<Environment, String> {
    static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let path = find_runtime_library()?;
            let builder =
                ort::init_from(&path).map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?;
            builder
                .with_name("spikewatch")
                .build()
                .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
        })
        .clone()
}

fn pool_size() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4)
}

impl OnnxModel {
    /// Loads `path` and checks its inputs, outputs and metadata against [`FEATURE_NAMES`].
    pub fn load(path: &Path, options: &OnnxOptions) -> Result<Self, ModelError> {
        let err = |reason: String| ModelError::load(path.display(), reason);
        let environment = environment().map_err(&err)?;
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let mut sessions = Vec::new();
        for _ in 0..pool_size() {
            let session = Session::builder(&environment)
                .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
                .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
                .and_then(|mut b| b.commit_from_memory(&bytes))
                .map_err(|e| err(format!("ONNX Runtime rejected the model: {e}")))?;
            sessions.push(session);
        }
        let first = &sessions[0];
        let meta = first.metadata().map_err(|e| err(format!("cannot read model metadata: {e}")))?;
        let custom = |key: &str| meta.custom(key);

        check_feature_names(custom(metadata::FEATURE_NAMES).as_deref()).map_err(&err)?;
        if let Some(feature_set) = custom(metadata::FEATURE_SET)
            && feature_set != FEATURE_SET_VERSION
        {
            return Err(err(format!(
                "the model was trained on feature set {feature_set:?} but this build computes {FEATURE_SET_VERSION:?}"
            )));
        }

        if first.inputs().len() != 1 {
            return Err(err(format!("expected one input tensor, found {}", first.inputs().len())));
        }
        let input_name = first.inputs()[0].name().to_string();
        if !first.outputs().iter().any(|o| o.name() == PROBABILITY_OUTPUT) {
            let names: Vec<&str> = first.outputs().iter().map(|o| o.name()).collect();
            return Err(err(format!(
                "no {PROBABILITY_OUTPUT:?} output (found {names:?}); export the classifier with zipmap disabled"
            )));
        }

        let stored_threshold = match custom(metadata::THRESHOLD) {
            Some(text) => {
                Some(text.parse::<f64>().map_err(|e| err(format!("invalid threshold metadata {text:?}: {e}")))?)
            }
            None => None,
        };
        let threshold = options
            .threshold
            .or(stored_threshold)
            .ok_or_else(|| err("no decision threshold: neither in the model metadata nor configured".into()))?;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(err(format!("threshold {threshold} is outside [0, 1]")));
        }
        let (name, version) = match &options.naming {
            Some((name, version)) => (name.clone(), version.clone()),
            None => (
                custom(metadata::MODEL_NAME).unwrap_or_else(|| "spikewatch-gbdt".into()),
                custom(metadata::MODEL_VERSION).unwrap_or_else(|| "unknown".into()),
            ),
        };
        drop(meta);
        Ok(OnnxModel {
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            input_name,
            info: ModelInfo { name, version, variant: ModelVariant::Ml, threshold },
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The model's `feature_names` metadata must list exactly [`FEATURE_NAMES`], in order.
fn check_feature_names(stored: Option<&str>) -> Result<(), String> {
    let stored = stored.ok_or_else(|| {
        format!("the model has no {:?} metadata; re-export it with models/train.py", metadata::FEATURE_NAMES)
    })?;
    let names: Vec<String> = serde_json::from_str(stored)
        .map_err(|e| format!("{:?} metadata is not a JSON list of strings: {e}", metadata::FEATURE_NAMES))?;
    if names != FEATURE_NAMES {
        return Err(format!(
            "feature mismatch: the model was trained on {names:?} but this build computes {FEATURE_NAMES:?}"
        ));
    }
    Ok(())
}

impl Model for OnnxModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_proba(&self, rows: &[Features]) -> Result<Vec<f64>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        check_finite(rows)?;
        let width = FEATURE_NAMES.len();
        let mut input = Vec::with_capacity(rows.len() * width);
        for row in rows {
            // The model was trained on float32 (ONNX TreeEnsemble takes float inputs).
            input.extend(row.to_array().iter().map(|&v| v as f32));
        }
        let tensor = TensorRef::from_array_view(([rows.len(), width], input.as_slice()))
            .map_err(|e| ModelError::Inference(e.to_string()))?;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // Prefer an idle session; block on one only when all are busy.
        let n = self.sessions.len();
        let mut guard = (0..n)
            .find_map(|i| self.sessions[(start + i) % n].try_lock().ok())
            .map(Ok)
            .unwrap_or_else(|| self.sessions[start % n].lock())
            .map_err(|_| ModelError::Inference("session lock poisoned".into()))?;
        let outputs = guard
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| ModelError::Inference(e.to_string()))?;
        let (shape, values) = outputs[PROBABILITY_OUTPUT]
            .try_extract_tensor::<f32>()
            .map_err(|e| ModelError::Inference(format!("unexpected probability output: {e}")))?;
        if shape.len() != 2 || shape[0] as usize != rows.len() || shape[1] != 2 {
            return Err(ModelError::Inference(format!("unexpected probability shape {shape:?}")));
        }
        Ok(values.chunks_exact(2).map(|pair| f64::from(pair[1])).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_must_match_in_order() {
        let ok = serde_json::to_string(&FEATURE_NAMES[..]).unwrap();
        assert!(check_feature_names(Some(&ok)).is_ok());
        let mut swapped = FEATURE_NAMES;
        swapped.swap(0, 1);
        let err = check_feature_names(Some(&serde_json::to_string(&swapped[..]).unwrap())).unwrap_err();
        assert!(err.contains("feature mismatch"), "{err}");
        assert!(check_feature_names(None).unwrap_err().contains("feature_names"));
        assert!(check_feature_names(Some("price,midprice")).is_err());
    }
}
