//! The served model's metrics, the same on every process that serves one (the API and the
//! predictor): which model and variant answer, reloads and switches, and whether the baseline
//! answers only because the ML model could not be loaded.

use std::time::Duration;

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::domain::ModelVariant;
use crate::metric_names::model as names;
use crate::model::{Fallback, FallbackReason, ModelInfo};

/// Values of `model_reloads_total{result}`.
pub const RESULTS: [&str; 2] = ["success", "failure"];

#[derive(Clone)]
pub struct ModelMetrics {
    /// `model_load_time_seconds`: duration of the last successful model load.
    pub load_time: Gauge,
    /// `model_variant_active{variant}`: 1 for the variant answering now, 0 for the other.
    pub variant: IntGaugeVec,
    /// `model_info{name,version,variant}`: 1 for the model answering now.
    pub info: IntGaugeVec,
    /// `model_loaded`: 1 once a model answers.
    pub loaded: IntGauge,
    /// `model_reloads_total{result}`: reloads and variant switches.
    pub reloads: IntCounterVec,
    /// `model_fallback_active{reason}`: 1 for the reason the baseline answers in place of an ML
    /// model that could not be loaded, 0 for the others (all 0: no fallback).
    pub fallback: IntGaugeVec,
}

impl ModelMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<ModelMetrics> {
        let metrics = ModelMetrics {
            load_time: Gauge::new(names::LOAD_TIME, "Duration of the last successful model load")?,
            variant: IntGaugeVec::new(
                Opts::new(names::VARIANT_ACTIVE, "1 for the model variant answering requests"),
                &["variant"],
            )?,
            info: IntGaugeVec::new(
                Opts::new(names::INFO, "1 for the model answering requests (name, version, variant)"),
                &["name", "version", "variant"],
            )?,
            loaded: IntGauge::new(names::LOADED, "1 once a model is loaded and answering")?,
            reloads: IntCounterVec::new(
                Opts::new(names::RELOADS, "Model reloads and variant switches, by result"),
                &["result"],
            )?,
            fallback: IntGaugeVec::new(
                Opts::new(
                    names::FALLBACK,
                    "1 while the baseline answers because the configured ML model could not be loaded, by reason",
                ),
                &["reason"],
            )?,
        };
        registry.register(Box::new(metrics.load_time.clone()))?;
        registry.register(Box::new(metrics.variant.clone()))?;
        registry.register(Box::new(metrics.info.clone()))?;
        registry.register(Box::new(metrics.loaded.clone()))?;
        registry.register(Box::new(metrics.reloads.clone()))?;
        registry.register(Box::new(metrics.fallback.clone()))?;
        for v in [ModelVariant::Ml, ModelVariant::Baseline] {
            metrics.variant.with_label_values(&[v.as_str()]).set(0);
        }
        for reason in FallbackReason::ALL {
            metrics.fallback.with_label_values(&[reason.as_str()]).set(0);
        }
        // Exported from the start, so that rate() and absence alerts work before the first event.
        for result in RESULTS {
            metrics.reloads.with_label_values(&[result]);
        }
        Ok(metrics)
    }

    /// Reports `info` as the model answering from now on; `fallback` when the baseline answers
    /// only because the ML model could not be loaded.
    pub fn model_changed(&self, info: &ModelInfo, fallback: Option<&Fallback>) {
        for v in [ModelVariant::Ml, ModelVariant::Baseline] {
            self.variant.with_label_values(&[v.as_str()]).set(i64::from(v == info.variant));
        }
        self.info.reset();
        self.info.with_label_values(&[&info.name, &info.version, info.variant.as_str()]).set(1);
        self.loaded.set(1);
        for reason in FallbackReason::ALL {
            let active = fallback.is_some_and(|f| f.reason == reason);
            self.fallback.with_label_values(&[reason.as_str()]).set(i64::from(active));
        }
    }

    pub fn model_loaded_in(&self, elapsed: Duration) {
        self.load_time.set(elapsed.as_secs_f64());
    }
}
