//! The baseline forecaster, the safe fallback model (`MODEL_VARIANT=baseline`): a few lines of
//! arithmetic on the features, no ONNX Runtime involved.
//!
//! HAR-RV (Corsi 2009) on the one-second grid: the coming minute's log realized variance as a
//! linear function of the logs of the past minute's, five minutes' and fifteen minutes'
//! (`rv_60s`, `rv_300s`, `rv_900s`), fitted on the training days; or persistence (the past
//! minute alone), whichever ranked the development days better. The forecast is turned into a
//! probability of a spike by an isotonic map fitted on out-of-fold forecasts of the training
//! days, and the alert fires at or above `threshold`. The parameters come from `baseline.json`,
//! written by the trainer.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Model, ModelError, ModelInfo, check_finite};
use crate::domain::{Feature, Features, ModelVariant};

/// A strictly increasing map from a score to a probability:
/// `(1 − w) × isotonic(score) + w × σ(slope × score + intercept)`. The isotonic part is
/// piecewise linear between the knots (`x` strictly increasing, `y` non-decreasing in [0, 1]) and
/// constant beyond the ends (scikit-learn's isotonic regression with `out_of_bounds="clip"`); the
/// small logistic part keeps plateaus from tying scores the forecast tells apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub slope: f64,
    pub intercept: f64,
    pub logistic_weight: f64,
}

impl Calibration {
    fn check(&self) -> Result<(), String> {
        if self.x.is_empty() || self.x.len() != self.y.len() {
            return Err(format!(
                "calibration needs as many x as y, at least one ({} and {})",
                self.x.len(),
                self.y.len()
            ));
        }
        if self.x.iter().chain(&self.y).any(|v| !v.is_finite()) {
            return Err("calibration values must be finite".into());
        }
        if self.x.windows(2).any(|w| w[0] >= w[1]) {
            return Err("calibration x must be strictly increasing".into());
        }
        if self.y.windows(2).any(|w| w[0] > w[1]) || self.y.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err("calibration y must be non-decreasing probabilities".into());
        }
        let logistic_ok = self.slope.is_finite()
            && self.slope > 0.0
            && self.intercept.is_finite()
            && (0.0..=1.0).contains(&self.logistic_weight);
        if !logistic_ok {
            return Err(format!(
                "calibration needs slope > 0, a finite intercept and a logistic_weight in [0, 1] (got {}, {}, {})",
                self.slope, self.intercept, self.logistic_weight
            ));
        }
        Ok(())
    }

    pub fn probability(&self, score: f64) -> f64 {
        let (x, y) = (&self.x, &self.y);
        let above = x.partition_point(|&k| k <= score);
        let isotonic = if above == 0 {
            y[0]
        } else if above == x.len() {
            y[x.len() - 1]
        } else {
            let (x0, x1, y0, y1) = (x[above - 1], x[above], y[above - 1], y[above]);
            y0 + (score - x0) / (x1 - x0) * (y1 - y0)
        };
        let z = self.slope * score + self.intercept;
        // Both branches are the logistic function; each avoids overflow of exp for its sign.
        let logistic = if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) };
        (1.0 - self.logistic_weight) * isotonic + self.logistic_weight * logistic
    }
}

/// The parameters in `baseline.json`, written by the trainer from the training days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineParams {
    pub name: String,
    pub version: String,
    /// `har_rv` or `persistence`: which forecaster these coefficients make (for people; the
    /// arithmetic is the same).
    pub kind: String,
    /// The features whose logarithms are combined (`rv_60s`, `rv_300s`, `rv_900s`).
    pub features: Vec<String>,
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    /// Each feature is floored here before its logarithm (a flat window has variance 0).
    pub floor: f64,
    /// The forecast (log variance per second) → P(spike).
    pub calibration: Calibration,
    /// Alert when the probability is at or above this.
    pub threshold: f64,
    /// Human-readable description of the score, for the model card and `/version`.
    #[serde(default)]
    pub score: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HarBaseline {
    params: BaselineParams,
    features: Vec<Feature>,
    info: ModelInfo,
}

impl HarBaseline {
    pub fn new(params: BaselineParams) -> Result<Self, ModelError> {
        let uri = format!("baseline {}", params.name);
        let features = params
            .features
            .iter()
            .map(|name| Feature::from_name(name).ok_or_else(|| format!("unknown feature {name:?}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ModelError::load(&uri, e))?;
        if let Some(f) = features.iter().find(|f| f.spec().impute != crate::domain::Impute::Median) {
            return Err(ModelError::load(&uri, format!("feature {} may be missing: the baseline needs it", f.name())));
        }
        if features.is_empty() || features.len() != params.coefficients.len() {
            return Err(ModelError::load(
                &uri,
                format!("{} features and {} coefficients", features.len(), params.coefficients.len()),
            ));
        }
        let numbers_ok = params.intercept.is_finite()
            && params.coefficients.iter().all(|c| c.is_finite())
            && params.floor.is_finite()
            && params.floor > 0.0
            && (0.0..=1.0).contains(&params.threshold);
        if !numbers_ok {
            return Err(ModelError::load(
                &uri,
                format!(
                    "invalid parameters intercept={} coefficients={:?} floor={} threshold={} (finite, floor > 0, threshold in [0, 1])",
                    params.intercept, params.coefficients, params.floor, params.threshold
                ),
            ));
        }
        params.calibration.check().map_err(|e| ModelError::load(&uri, e))?;
        let info = ModelInfo {
            name: params.name.clone(),
            version: params.version.clone(),
            variant: ModelVariant::Baseline,
            threshold: params.threshold,
        };
        Ok(HarBaseline { params, features, info })
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

    /// The forecast: `intercept + Σ coefficient × ln(max(feature, floor))`.
    pub fn score(&self, row: &Features) -> f64 {
        let floor = self.params.floor;
        self.features
            .iter()
            .zip(&self.params.coefficients)
            .fold(self.params.intercept, |acc, (f, c)| acc + c * row[*f].max(floor).ln())
    }

    pub fn probability(&self, row: &Features) -> f64 {
        self.params.calibration.probability(self.score(row))
    }
}

impl Model for HarBaseline {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_proba(&self, rows: &[Features]) -> Result<Vec<f64>, ModelError> {
        check_finite(rows)?;
        Ok(rows.iter().map(|row| self.probability(row)).collect())
    }
}

/// Persistence on `rv_60s` whose probability is 0.5 at `rv_60s = 1` and reaches 0 at `e^-20`:
/// `p = 0.5 + ln(rv_60s) / 40`, alerting at 0.5. For tests of what serves a model.
#[cfg(test)]
pub(crate) fn persistence_for_tests(version: &str) -> HarBaseline {
    HarBaseline::new(persistence_params_for_tests(version)).expect("valid parameters")
}

#[cfg(test)]
pub(crate) fn persistence_params_for_tests(version: &str) -> BaselineParams {
    BaselineParams {
        name: "persistence".into(),
        version: version.into(),
        kind: "persistence".into(),
        features: vec!["rv_60s".into()],
        intercept: 0.0,
        coefficients: vec![1.0],
        floor: 1e-30,
        calibration: Calibration {
            x: vec![-20.0, 0.0],
            y: vec![0.0, 0.5],
            slope: 1.0,
            intercept: 0.0,
            logistic_weight: 0.0,
        },
        threshold: 0.5,
        score: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BaselineParams {
        BaselineParams {
            name: "har".into(),
            version: "t".into(),
            kind: "har_rv".into(),
            features: vec!["rv_60s".into(), "rv_300s".into()],
            intercept: -1.0,
            coefficients: vec![0.5, 0.25],
            floor: 1e-12,
            calibration: Calibration {
                x: vec![-20.0, -10.0],
                y: vec![0.0, 0.5],
                slope: 1.0,
                intercept: 0.0,
                logistic_weight: 0.0,
            },
            threshold: 0.4,
            score: None,
        }
    }

    fn row(rv60: f64, rv300: f64) -> Features {
        Features::default().with(Feature::Rv60s, rv60).with(Feature::Rv300s, rv300)
    }

    #[test]
    fn hand_computed_rows() {
        let b = HarBaseline::new(params()).unwrap();
        let s = b.score(&row(1e-8, 1e-6));
        assert!((s - (-1.0 + 0.5 * 1e-8f64.ln() + 0.25 * 1e-6f64.ln())).abs() < 1e-12);
        // s ≈ −13.66: between the calibration's knots.
        let p = b.probability(&row(1e-8, 1e-6));
        assert!((p - (s + 20.0) / 10.0 * 0.5).abs() < 1e-12);
        // A flat market is floored, not −∞.
        assert!(b.score(&row(0.0, 0.0)).is_finite());
        assert_eq!(b.probability(&row(0.0, 0.0)), 0.0, "below the first knot");
        assert_eq!(b.probability(&row(1.0, 1.0)), 0.5, "beyond the last knot");
        let p = b.predict_proba(&[row(1e-8, 1e-6), row(1e-4, 1e-4)]).unwrap();
        assert_eq!(p.iter().map(|&p| b.decide(p)).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn the_logistic_part_breaks_the_plateaus() {
        let mut p = params();
        p.calibration = Calibration { logistic_weight: 0.01, ..p.calibration };
        let b = HarBaseline::new(p).unwrap();
        // Both below the first knot: the isotonic part is 0 for both, the blend still ranks them.
        let (low, lower) = (b.probability(&row(1e-10, 1e-12)), b.probability(&row(1e-11, 1e-12)));
        assert!(low > lower && lower > 0.0, "{low} {lower}");
        let s = b.score(&row(1e-8, 1e-6));
        let logistic = 1.0 / (1.0 + (-s).exp());
        assert!((b.probability(&row(1e-8, 1e-6)) - (0.99 * (s + 20.0) / 10.0 * 0.5 + 0.01 * logistic)).abs() < 1e-12);
    }

    #[test]
    fn missing_inputs_of_other_features_do_not_matter_but_non_finite_ones_do() {
        let b = HarBaseline::new(params()).unwrap();
        let with_missing_trades = row(1e-8, 1e-6).with(Feature::TradeRate10s, f64::NAN);
        assert!(b.predict_proba(&[with_missing_trades]).is_ok());
        let err = b.predict_proba(&[row(f64::NAN, 1e-6)]).unwrap_err();
        assert!(err.to_string().contains("rv_60s"), "{err}");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let bad = [
            BaselineParams { features: vec!["rv_60s".into()], ..params() },
            BaselineParams { features: vec!["rv_60s".into(), "time_of_day_sin".into()], ..params() },
            BaselineParams { features: vec!["rv_60s".into(), "trade_rate_10s".into()], ..params() },
            BaselineParams { floor: 0.0, ..params() },
            BaselineParams { threshold: 1.5, ..params() },
            BaselineParams { calibration: Calibration { x: vec![1.0, 1.0], ..params().calibration }, ..params() },
            BaselineParams { calibration: Calibration { y: vec![0.2, 0.1], ..params().calibration }, ..params() },
            BaselineParams { calibration: Calibration { slope: 0.0, ..params().calibration }, ..params() },
            BaselineParams { calibration: Calibration { logistic_weight: 1.5, ..params().calibration }, ..params() },
        ];
        for p in bad {
            assert!(HarBaseline::new(p.clone()).is_err(), "{p:?}");
        }
    }
}
