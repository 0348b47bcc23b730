//! Models: the trained model (ONNX Runtime) and the HAR-RV baseline, behind one trait.
//!
//! A model *source* (`model.source` in the config) is the model built into the binary
//! (`builtin:spikewatch-gbdt`, the default), a local artifact directory or file, an `https://`
//! URL, or an MLflow registry URI (`models:/<name>/<version>`, `models:/<name>@<alias>`).
//! An artifact directory holds `model.onnx` (the `ml` variant) and `baseline.json` (the
//! `baseline` variant), as written by `models/train.py`, and optionally `reference.json` (the
//! training medians and quantile bins of every feature).
//!
//! [`load`] returns the configured variant; [`ModelHandle`] keeps both variants of one source
//! loaded so that serving can switch between them, or reload the source, atomically.

pub mod alerts;
pub mod baseline;
pub mod builtin;
mod fallback;
mod fetch;
mod handle;
pub mod mlflow;
pub mod onnx;
pub mod reference;

use std::sync::Arc;

use crate::config::ModelConfig;
use crate::domain::{Features, ModelVariant};

pub use fallback::{Fallback, FallbackReason};
pub use fetch::{ArtifactSource, FetchedArtifacts};
pub use handle::ModelHandle;
pub use reference::Reference;

/// File name of the ONNX model inside an artifact directory.
pub const ONNX_FILE: &str = "model.onnx";
/// File name of the baseline's parameters inside an artifact directory.
pub const BASELINE_FILE: &str = "baseline.json";
/// File name of the training rows' feature reference (medians, quantile bins); optional.
pub const REFERENCE_FILE: &str = "reference.json";

/// What a loaded model says about itself (reported by `/version`, predictions and metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub variant: ModelVariant,
    /// Decision threshold: `prediction = probability >= threshold`.
    pub threshold: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot load model from {source_uri}: {reason}")]
    Load { source_uri: String, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
    /// `model.require_ml` is set and the ML model could not be loaded.
    #[error("model.require_ml is set and the ML model cannot be loaded: {0}")]
    MlRequired(String),
}

impl ModelError {
    pub(crate) fn load(source_uri: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        ModelError::Load { source_uri: source_uri.to_string(), reason: reason.to_string() }
    }
}

/// A scorer of feature rows. Implementations are immutable once loaded; hot reload swaps them.
pub trait Model: Send + Sync {
    fn info(&self) -> &ModelInfo;
    /// P(volatility spike within the next 60 s) for each row, in order.
    fn predict_proba(&self, rows: &[Features]) -> Result<Vec<f64>, ModelError>;

    /// The 0/1 decision for a probability returned by [`Model::predict_proba`].
    fn decide(&self, probability: f64) -> u8 {
        u8::from(probability >= self.info().threshold)
    }
}

/// Rejects rows the models cannot score meaningfully (±∞, or NaN in a feature that cannot be
/// missing), naming the row and feature. A missing trade or book-size feature (NaN) is fine.
pub fn check_finite(rows: &[Features]) -> Result<(), ModelError> {
    for (i, row) in rows.iter().enumerate() {
        let bad = crate::domain::FEATURES.iter().zip(row.to_array()).find(|(spec, value)| {
            !(value.is_finite() || (value.is_nan() && spec.impute == crate::domain::Impute::Missing))
        });
        if let Some((spec, value)) = bad {
            return Err(ModelError::Inference(format!("row {i}: feature {} is not finite ({value})", spec.name)));
        }
    }
    Ok(())
}

/// Loads the configured variant from the configured source.
pub async fn load(config: &ModelConfig) -> Result<Arc<dyn Model>, ModelError> {
    let source = ArtifactSource::parse(&config.source, config.mlflow_tracking_uri.as_deref())?;
    let fetched = source.fetch(&[config.variant]).await?;
    load_variant(&fetched, config.variant, config.threshold)
}

/// Builds one variant from already fetched artifacts (blocking: ONNX Runtime session creation).
pub(crate) fn load_variant(
    fetched: &FetchedArtifacts,
    variant: ModelVariant,
    threshold: Option<f64>,
) -> Result<Arc<dyn Model>, ModelError> {
    let naming = fetched.registry_naming.clone();
    // A load error names the source as configured, not the temporary copy of a downloaded or
    // built-in artifact.
    let named = |err: ModelError| match err {
        ModelError::Load { reason, .. } => ModelError::Load { source_uri: fetched.source_uri.clone(), reason },
        other => other,
    };
    match variant {
        ModelVariant::Ml => {
            let path = fetched.onnx.as_ref().ok_or_else(|| {
                ModelError::load(&fetched.source_uri, format!("no {ONNX_FILE} in the model artifacts"))
            })?;
            let model = onnx::OnnxModel::load(path, &onnx::OnnxOptions { threshold, naming }).map_err(named)?;
            Ok(Arc::new(model))
        }
        ModelVariant::Baseline => {
            let path = fetched.baseline.as_ref().ok_or_else(|| {
                ModelError::load(&fetched.source_uri, format!("no {BASELINE_FILE} in the model artifacts"))
            })?;
            Ok(Arc::new(baseline::HarBaseline::load(path).map_err(named)?))
        }
    }
}
