//! `reference.json`: what the trainer saw of each feature — the training median (filled in for
//! a feature a request leaves out) and quantile bins with the share of training rows in each
//! (the reference distribution drift is measured against).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::ModelError;
use crate::domain::FEATURE_NAMES;

/// One feature as the training rows had it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FeatureReference {
    pub median: f64,
    /// Inner bin edges, increasing: bin `i` holds `edges[i-1] <= x < edges[i]`.
    pub bin_edges: Vec<f64>,
    /// Share of training rows per bin (`bin_edges.len() + 1` of them).
    pub bin_fractions: Vec<f64>,
    /// The largest PSI of one training day against all the training rows: drift beyond it is
    /// drift the model was not trained across. Absent for a feature the model ignores.
    #[serde(default)]
    pub psi_limit: Option<f64>,
}

/// Every feature's reference, in [`FEATURE_NAMES`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub model_version: String,
    pub features: Vec<FeatureReference>,
}

#[derive(Deserialize)]
struct File {
    model_version: String,
    features: BTreeMap<String, FeatureReference>,
}

impl Reference {
    pub fn load(path: &Path) -> Result<Reference, ModelError> {
        let err = |reason: String| ModelError::load(path.display(), reason);
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::parse(&text).map_err(err)
    }

    pub fn parse(text: &str) -> Result<Reference, String> {
        let mut file: File = serde_json::from_str(text).map_err(|e| format!("invalid reference.json: {e}"))?;
        let features = FEATURE_NAMES
            .iter()
            .map(|name| {
                let f = file.features.remove(*name).ok_or_else(|| format!("reference.json has no feature {name:?}"))?;
                let sorted = f.bin_edges.windows(2).all(|w| w[0] < w[1]);
                let limit_ok = f.psi_limit.is_none_or(|l| l.is_finite() && l >= 0.0);
                if !f.median.is_finite() || !sorted || !limit_ok || f.bin_fractions.len() != f.bin_edges.len() + 1 {
                    return Err(format!("reference.json: feature {name:?} has an invalid median or bins"));
                }
                Ok(f)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Reference { model_version: file.model_version, features })
    }

    /// The training medians, in [`FEATURE_NAMES`] order.
    pub fn medians(&self) -> [f64; FEATURE_NAMES.len()] {
        std::array::from_fn(|i| self.features[i].median)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_reference_has_every_feature() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/spikewatch-gbdt/reference.json");
        let reference = Reference::load(&path).unwrap();
        assert_eq!(reference.features.len(), FEATURE_NAMES.len());
        let price = &reference.features[0];
        assert!(price.median > 1000.0, "BTC and ETH prices: {}", price.median);
        for f in &reference.features {
            assert!((f.bin_fractions.iter().sum::<f64>() - 1.0).abs() < 1e-3);
        }
    }

    #[test]
    fn a_reference_without_a_feature_is_refused() {
        let err = Reference::parse(r#"{"model_version": "x", "features": {}}"#).unwrap_err();
        assert!(err.contains("no feature \"price\""), "{err}");
        assert!(Reference::parse("not json").is_err());
    }
}
