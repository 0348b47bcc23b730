//! The quality metrics the predictor exports (docs/api.md, "Online quality and drift"):
//!
//! - `volatility_online_alert_precision{product_id,variant}`, `..._alert_recall`,
//!   `volatility_online_brier`, `volatility_online_positive_rate`, `volatility_online_alert_rate`
//!   over the last hour of labelled predictions (NaN while undefined: no alert, no positive);
//! - `volatility_online_labelled_total{product_id,variant}`: predictions whose outcome is known;
//! - `volatility_feature_psi{feature}`: drift of each feature over the last rows scored;
//! - `volatility_feature_psi_limit{feature}`: the largest PSI of one training day (NaN for a
//!   feature the model ignores).

use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

use super::online::{Outcome, Quality};
use crate::domain::{FEATURE_NAMES, ModelVariant};
use crate::metric_names::quality as names;

#[derive(Clone)]
pub struct QualityMetrics {
    pub precision: GaugeVec,
    pub recall: GaugeVec,
    pub brier: GaugeVec,
    pub positive_rate: GaugeVec,
    pub alert_rate: GaugeVec,
    pub labelled: IntCounterVec,
    pub psi: GaugeVec,
    pub psi_limit: GaugeVec,
}

impl QualityMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<QualityMetrics> {
        let per = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["product_id", "variant"]);
        let metrics = QualityMetrics {
            precision: per(
                names::ALERT_PRECISION,
                "Share of alerts whose coming minute was in the product's recent top decile of volatility (last hour)",
            )?,
            recall: per(names::ALERT_RECALL, "Share of top-decile minutes that were alerted (last hour)")?,
            brier: per(names::BRIER, "Brier score of the probabilities against the realized outcomes (last hour)")?,
            positive_rate: per(
                names::POSITIVE_RATE,
                "Share of labelled predictions whose outcome was positive (last hour)",
            )?,
            alert_rate: per(names::ALERT_RATE, "Share of labelled predictions that alerted (last hour)")?,
            labelled: IntCounterVec::new(
                Opts::new(names::LABELLED, "Predictions whose 60 s outcome is known and judged"),
                &["product_id", "variant"],
            )?,
            psi: GaugeVec::new(
                Opts::new(
                    names::FEATURE_PSI,
                    "Population stability index of a feature against the training rows (last rows scored)",
                ),
                &["feature"],
            )?,
            psi_limit: GaugeVec::new(
                Opts::new(
                    names::FEATURE_PSI_LIMIT,
                    "Largest PSI of one training day against all the training rows (the drift the model was trained across)",
                ),
                &["feature"],
            )?,
        };
        for collector in [
            Box::new(metrics.precision.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.recall.clone()),
            Box::new(metrics.brier.clone()),
            Box::new(metrics.positive_rate.clone()),
            Box::new(metrics.alert_rate.clone()),
            Box::new(metrics.labelled.clone()),
            Box::new(metrics.psi.clone()),
            Box::new(metrics.psi_limit.clone()),
        ] {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Counts newly labelled outcomes of `product`.
    pub fn labelled(&self, product: &str, outcomes: &[Outcome]) {
        for o in outcomes.iter().filter(|o| o.positive.is_some()) {
            self.labelled.with_label_values(&[product, o.variant.as_str()]).inc();
        }
    }

    /// Sets the gauges of one product and variant.
    pub fn set(&self, product: &str, variant: ModelVariant, q: &Quality) {
        let labels = [product, variant.as_str()];
        let value = |x: Option<f64>| x.unwrap_or(f64::NAN);
        self.precision.with_label_values(&labels).set(value(q.precision()));
        self.recall.with_label_values(&labels).set(value(q.recall()));
        self.brier.with_label_values(&labels).set(value(q.brier()));
        self.positive_rate.with_label_values(&labels).set(value(q.positive_rate()));
        self.alert_rate.with_label_values(&labels).set(value(q.alert_rate()));
    }

    pub fn set_psi(&self, psi: &[(&'static str, Option<f64>)]) {
        for (feature, value) in psi {
            self.psi.with_label_values(&[feature]).set(value.unwrap_or(f64::NAN));
        }
    }

    pub fn set_psi_limits(&self, limits: &[(&'static str, Option<f64>)]) {
        for (feature, value) in limits {
            self.psi_limit.with_label_values(&[feature]).set(value.unwrap_or(f64::NAN));
        }
    }

    /// Exports every feature's PSI and limit series from the start (NaN until rows are scored,
    /// and without a reference).
    pub fn init_psi(&self) {
        for feature in FEATURE_NAMES {
            self.psi.with_label_values(&[feature]).set(f64::NAN);
            self.psi_limit.with_label_values(&[feature]).set(f64::NAN);
        }
    }
}
