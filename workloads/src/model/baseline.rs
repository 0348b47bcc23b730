//! The z-score rule, the safe fallback model (`MODEL_VARIANT=baseline`): no ONNX Runtime involved.
//!
//! `z = (volatility − μ) / σ`, with μ and σ the mean and standard deviation of the 60 s
//! `volatility` feature over the training rows. The rule raises an alert when `z ≥ k`.
//! To report a probability-like score on the same scale as the GBDT, z is mapped through the
//! logistic function centred on k: `p = 1 / (1 + exp(−(z − k)))`. The map is monotone, so
//! ranking metrics (PR-AUC, ROC-AUC) are those of z itself, and `p ≥ 0.5 ⇔ z ≥ k`; the
//! decision threshold is therefore 0.5. It is a score, not a calibrated probability.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Model, ModelError, ModelInfo, check_finite};
use crate::domain::{Features, ModelVariant};

/// The parameters in `baseline.json`, written by the trainer from the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineParams {
    pub name: String,
    pub version: String,
    /// Always `volatility`: the rule looks at this one feature.
    pub feature: String,
    /// Mean of `volatility` over the training rows.
    pub mean: f64,
    /// Standard deviation (population) of `volatility` over the training rows.
    pub std: f64,
    /// Alert when `z ≥ k`.
    pub k: f64,
    /// Human-readable description of the score map, for the model card and `/version`.
    #[serde(default)]
    pub score: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ZScoreBaseline {
    params: BaselineParams,
    info: ModelInfo,
}

impl ZScoreBaseline {
    pub fn new(params: BaselineParams) -> Result<Self, ModelError> {
        let uri = format!("baseline {}", params.name);
        if params.feature != "volatility" {
            return Err(ModelError::load(
                uri,
                format!("unsupported feature {:?} (expected \"volatility\")", params.feature),
            ));
        }
        if !(params.mean.is_finite() && params.std.is_finite() && params.std > 0.0 && params.k.is_finite()) {
            return Err(ModelError::load(
                uri,
                format!(
                    "invalid parameters mean={} std={} k={} (std must be > 0, all finite)",
                    params.mean, params.std, params.k
                ),
            ));
        }
        let info = ModelInfo {
            name: params.name.clone(),
            version: params.version.clone(),
            variant: ModelVariant::Baseline,
            threshold: 0.5,
        };
        Ok(ZScoreBaseline { params, info })
    }

    /// Reads `baseline.json`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::load(path.display(), e))?;
        let params: BaselineParams = serde_json::from_str(&text).map_err(|e| ModelError::load(path.display(), e))?;
        Self::new(params)
    }

    pub fn params(&self) -> &BaselineParams {
        &self.params
    }

    pub fn z_score(&self, volatility: f64) -> f64 {
        (volatility - self.params.mean) / self.params.std
    }

    /// The logistic map of z centred on k (see the module documentation).
    pub fn probability(&self, volatility: f64) -> f64 {
        let x = self.z_score(volatility) - self.params.k;
        // Both branches are the logistic function; each avoids overflow of exp for its sign.
        if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) }
    }
}

impl Model for ZScoreBaseline {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_proba(&self, rows: &[Features]) -> Result<Vec<f64>, ModelError> {
        check_finite(rows)?;
        Ok(rows.iter().map(|row| self.probability(row.volatility)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(mean: f64, std: f64, k: f64) -> ZScoreBaseline {
        ZScoreBaseline::new(BaselineParams {
            name: "zscore".into(),
            version: "t".into(),
            feature: "volatility".into(),
            mean,
            std,
            k,
            score: None,
        })
        .unwrap()
    }

    fn row(volatility: f64) -> Features {
        Features { volatility, ..Features::default() }
    }

    #[test]
    fn hand_computed_rows() {
        // μ = 0.001, σ = 0.0005, k = 2: volatility 0.002 → z = 2 → p = 0.5 → alert.
        let b = baseline(0.001, 0.0005, 2.0);
        let p = b.predict_proba(&[row(0.002), row(0.001), row(0.0025), row(0.0)]).unwrap();
        assert!((p[0] - 0.5).abs() < 1e-12);
        // z = 0 → logistic(−2) = 1 / (1 + e²)
        assert!((p[1] - 1.0 / (1.0 + 2f64.exp())).abs() < 1e-12);
        // z = 3 → logistic(1)
        assert!((p[2] - 1.0 / (1.0 + (-1f64).exp())).abs() < 1e-12);
        // z = −2 → logistic(−4)
        assert!((p[3] - 1.0 / (1.0 + 4f64.exp())).abs() < 1e-12);
        let decisions: Vec<u8> = p.iter().map(|&p| b.decide(p)).collect();
        assert_eq!(decisions, [1, 0, 1, 0]);
    }

    #[test]
    fn extreme_z_does_not_overflow() {
        let b = baseline(0.0, 1e-12, 0.0);
        let p = b.predict_proba(&[row(1.0), row(-1.0)]).unwrap();
        assert_eq!(p, [1.0, 0.0]);
    }

    #[test]
    fn non_finite_input_is_an_error() {
        let b = baseline(0.001, 0.0005, 2.0);
        let err = b.predict_proba(&[row(f64::NAN)]).unwrap_err();
        assert!(err.to_string().contains("volatility"), "{err}");
    }

    #[test]
    fn degenerate_parameters_are_rejected() {
        let params = BaselineParams {
            name: "zscore".into(),
            version: "t".into(),
            feature: "volatility".into(),
            mean: 0.0,
            std: 0.0,
            k: 2.0,
            score: None,
        };
        assert!(ZScoreBaseline::new(params).is_err());
    }
}
