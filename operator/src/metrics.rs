//! The operator's own Prometheus metrics: reconciles, their duration, failures by kind, and
//! what the automation measured and did.

use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub reconciliations: IntCounter,
    pub failures: IntCounterVec,
    pub reconcile_duration: Histogram,
    /// 1 while this replica holds the leader Lease and runs the controller.
    pub leader: IntGauge,
    /// `spikewatch_operator_rollback_checks_total{result}`: Passed, Failed, Inconclusive.
    pub rollback_checks: IntCounterVec,
    /// `spikewatch_operator_rollbacks_total{reason,dry_run}`.
    pub rollbacks: IntCounterVec,
    /// `spikewatch_operator_rollback_seconds`: first failed check → running pods switched.
    pub rollback_seconds: Histogram,
    /// `spikewatch_operator_model_recoveries_total{reason}`: the ML model back on probation.
    pub recoveries: IntCounterVec,
    /// `spikewatch_operator_predictor_desired_replicas{namespace,name}`.
    pub desired_replicas: IntGaugeVec,
    /// `spikewatch_operator_consumer_lag_messages{namespace,name}`.
    pub consumer_lag: IntGaugeVec,
    /// `spikewatch_operator_scale_events_total{direction}`: up, down.
    pub scale_events: IntCounterVec,
}

/// Registers `metric` in `registry` and hands it back: every metric is created and registered
/// in one expression, and a failure to register is the caller's to report.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let metrics = Metrics {
            reconciliations: registered(
                registry,
                IntCounter::new(
                    "spikewatch_operator_reconciliations_total",
                    "Reconciliations of VolatilityPipeline objects",
                )?,
            )?,
            failures: registered(
                registry,
                IntCounterVec::new(
                    Opts::new("spikewatch_operator_reconcile_errors_total", "Failed reconciliations by error reason"),
                    &["reason"],
                )?,
            )?,
            reconcile_duration: registered(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "spikewatch_operator_reconcile_duration_seconds",
                        "Duration of one reconciliation",
                    )
                    .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                )?,
            )?,
            leader: registered(
                registry,
                IntGauge::new("spikewatch_operator_leader", "1 while this replica holds the leader Lease")?,
            )?,
            rollback_checks: registered(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "spikewatch_operator_rollback_checks_total",
                        "Health checks of serving ML models, by result",
                    ),
                    &["result"],
                )?,
            )?,
            rollbacks: registered(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "spikewatch_operator_rollbacks_total",
                        "Automatic rollbacks to the baseline model (dry_run=\"true\": only reported), by reason",
                    ),
                    &["reason", "dry_run"],
                )?,
            )?,
            rollback_seconds: registered(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "spikewatch_operator_rollback_seconds",
                        "Time from the first failed check to the running pods switched to the baseline",
                    )
                    .buckets(vec![1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0]),
                )?,
            )?,
            recoveries: registered(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "spikewatch_operator_model_recoveries_total",
                        "ML models brought back on probation after a rollback, by reason",
                    ),
                    &["reason"],
                )?,
            )?,
            desired_replicas: registered(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "spikewatch_operator_predictor_desired_replicas",
                        "Predictor replicas the operator's autoscaler decided on",
                    ),
                    &["namespace", "name"],
                )?,
            )?,
            consumer_lag: registered(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "spikewatch_operator_consumer_lag_messages",
                        "Unconsumed feature messages of the predictor's consumer group, as last measured",
                    ),
                    &["namespace", "name"],
                )?,
            )?,
            scale_events: registered(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "spikewatch_operator_scale_events_total",
                        "Predictor replica changes made by the operator's autoscaler, by direction",
                    ),
                    &["direction"],
                )?,
            )?,
        };
        // Exported from the start, so rate() and absence alerts work before the first event.
        for result in ["Passed", "Failed", "Inconclusive"] {
            metrics.rollback_checks.with_label_values(&[result]);
        }
        for direction in ["up", "down"] {
            metrics.scale_events.with_label_values(&[direction]);
        }
        Ok(metrics)
    }

    /// Counts a reconciliation and observes its duration when the returned guard drops.
    pub fn count_and_measure(&self) -> ReconcileTimer {
        self.reconciliations.inc();
        ReconcileTimer { start: Instant::now(), histogram: self.reconcile_duration.clone() }
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
        assert_eq!(metrics.failures.with_label_values(&["invalid_spec"]).get(), 1);
    }

    #[test]
    fn registering_twice_in_one_registry_is_an_error_not_a_panic() {
        let registry = Registry::new();
        Metrics::register(&registry).unwrap();
        assert!(Metrics::register(&registry).is_err());
        assert!(Metrics::register(&Registry::new()).is_ok(), "a fresh registry takes them");
    }
}
