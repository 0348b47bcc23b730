//! The metrics every consuming stage reports. Names are chosen by the workload (the featurizer
//! and the predictor keep their own, documented names); the stage loop only increments them.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use super::ErrorKind;

/// Metric names for [`StageMetrics::register`].
#[derive(Debug, Clone, Copy)]
pub struct StageMetricNames<'a> {
    /// Counter: input records read from the input topic.
    pub consumed: &'a str,
    /// Counter: output records acknowledged by the broker.
    pub produced: &'a str,
    /// Counter vector with label `error_type` (`deserialize`, `produce`, `commit`, `consume`).
    pub errors: &'a str,
    /// Histogram: seconds from receiving an input record to the acknowledgement of its batch's
    /// outputs.
    pub processing_seconds: &'a str,
}

#[derive(Clone)]
pub struct StageMetrics {
    pub consumed: IntCounter,
    pub produced: IntCounter,
    pub errors: IntCounterVec,
    pub processing_seconds: Histogram,
}

/// Buckets from 1 ms to 10 s: batches are acknowledged within milliseconds on a healthy broker.
const PROCESSING_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

impl StageMetrics {
    /// Creates the four metrics and registers them in `registry`; every `error_type` series is
    /// created at zero so dashboards and alerts see it before the first error.
    pub fn register(registry: &Registry, names: StageMetricNames<'_>) -> prometheus::Result<StageMetrics> {
        let consumed = IntCounter::new(names.consumed, "Input records consumed")?;
        let produced = IntCounter::new(names.produced, "Output records acknowledged by the broker")?;
        let errors = IntCounterVec::new(Opts::new(names.errors, "Errors by kind"), &["error_type"])?;
        let processing_seconds = Histogram::with_opts(
            HistogramOpts::new(
                names.processing_seconds,
                "Seconds from receiving an input record to the broker's acknowledgement of its outputs",
            )
            .buckets(PROCESSING_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(consumed.clone()))?;
        registry.register(Box::new(produced.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(processing_seconds.clone()))?;
        for kind in ErrorKind::ALL {
            errors.with_label_values(&[kind.as_str()]);
        }
        Ok(StageMetrics { consumed, produced, errors, processing_seconds })
    }

    pub fn error(&self, kind: ErrorKind) -> IntCounter {
        self.errors.with_label_values(&[kind.as_str()])
    }
}
