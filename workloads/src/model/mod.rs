//! Models: the trained GBDT (ONNX Runtime) and the z-score baseline, behind one trait.

use crate::domain::{Features, ModelVariant};

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
}

/// A scorer of feature rows. Implementations are immutable once loaded; hot reload swaps them.
pub trait Model: Send + Sync {
    fn info(&self) -> &ModelInfo;
    /// P(volatility spike within the next 60 s) for each row, in order.
    fn predict_proba(&self, rows: &[Features]) -> Result<Vec<f64>, ModelError>;
}
