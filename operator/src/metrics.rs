//! The operator's own Prometheus metrics: reconciles, their duration, failures by kind.

use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub reconciliations: IntCounter,
    pub failures: IntCounterVec,
    pub reconcile_duration: Histogram,
    /// 1 while this replica holds the leader Lease and runs the controller.
    pub leader: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let metrics = Metrics {
            reconciliations: IntCounter::new(
                "spikewatch_operator_reconciliations_total",
                "Reconciliations of VolatilityPipeline objects",
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "spikewatch_operator_reconcile_errors_total",
                    "Failed reconciliations by error reason",
                ),
                &["reason"],
            )?,
            reconcile_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "spikewatch_operator_reconcile_duration_seconds",
                    "Duration of one reconciliation",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            leader: IntGauge::new(
                "spikewatch_operator_leader",
                "1 while this replica holds the leader Lease",
            )?,
        };
        registry.register(Box::new(metrics.reconciliations.clone()))?;
        registry.register(Box::new(metrics.failures.clone()))?;
        registry.register(Box::new(metrics.reconcile_duration.clone()))?;
        registry.register(Box::new(metrics.leader.clone()))?;
        Ok(metrics)
    }

    /// Counts a reconciliation and observes its duration when the returned guard drops.
    pub fn count_and_measure(&self) -> ReconcileTimer {
        self.reconciliations.inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.reconcile_duration.clone(),
        }
    }

    pub fn reconcile_failure(&self, reason: &str) {
        self.failures.with_label_values(&[reason]).inc();
    }
}

pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measured_reconcile_is_counted_and_timed() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        drop(metrics.count_and_measure());
        metrics.reconcile_failure("invalid_spec");
        assert_eq!(metrics.reconciliations.get(), 1);
        assert_eq!(metrics.reconcile_duration.get_sample_count(), 1);
        assert_eq!(
            metrics.failures.with_label_values(&["invalid_spec"]).get(),
            1
        );
    }
}
