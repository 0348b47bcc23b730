//! PromQL shared by the alerting rules ([`super::prometheus_rule`]), the dashboard
//! ([`super::dashboard`]) and the rollback checks ([`crate::observe::prometheus`]): label
//! matchers of a pipeline's series and the expressions more than one of them reads. Metric
//! names come from [`spikewatch_types::metric_names`], the names the workloads register.

use kube::ResourceExt;
use spikewatch_types::metric_names::{api, featurizer, predictor};

use super::meta::workload_name;
use crate::crd::{VolatilityPipeline, Workload};

/// PromQL label matcher of the series of some workloads of a pipeline, by the `namespace` and
/// `service` labels the ServiceMonitors attach.
pub fn series_selector(vp: &VolatilityPipeline, workloads: &[Workload]) -> String {
    let namespace = vp.namespace().unwrap_or_default();
    let services: Vec<String> = workloads.iter().map(|w| workload_name(vp, *w)).collect();
    if services.len() == 1 {
        format!(r#"namespace="{namespace}",service="{}""#, services[0])
    } else {
        format!(r#"namespace="{namespace}",service=~"{}""#, services.join("|"))
    }
}

/// The `q` quantile of the API's prediction latency over `window` (e.g. `5m`, `60s`), for the
/// series matching `selector`.
pub fn api_latency_quantile(q: &str, selector: &str, window: &str) -> String {
    format!("histogram_quantile({q}, sum by (le) (rate({}_bucket{{{selector}}}[{window}])))", api::LATENCY)
}

/// How far behind each consumer is, by Service: the featurizer and the predictor each export
/// now − receive time of the newest message processed.
pub fn consumer_lag_by_service(vp: &VolatilityPipeline) -> String {
    let featurizer_series = series_selector(vp, &[Workload::Featurizer]);
    let predictor_series = series_selector(vp, &[Workload::Predictor]);
    format!(
        "max by (service) ({}{{{featurizer_series}}} or {}{{{predictor_series}}})",
        featurizer::CONSUMER_LAG_SECONDS,
        predictor::LAG_SECONDS
    )
}

/// The share of API requests answered with an error over 5 minutes; 0 (not empty) while no
/// error has happened yet, when the error counter has no series.
pub fn api_error_ratio(vp: &VolatilityPipeline) -> String {
    let series = series_selector(vp, &[Workload::Api]);
    format!("(sum(rate({}{{{series}}}[5m])) or vector(0)) / sum(rate({}{{{series}}}[5m]))", api::ERRORS, api::REQUESTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pipeline;

    #[test]
    fn one_workload_is_matched_exactly_and_several_by_alternation() {
        let vp = pipeline();
        assert_eq!(series_selector(&vp, &[Workload::Api]), r#"namespace="testns",service="test-api""#);
        assert_eq!(
            series_selector(&vp, &[Workload::Predictor, Workload::Api]),
            r#"namespace="testns",service=~"test-predictor|test-api""#
        );
    }

    #[test]
    fn the_latency_quantile_reads_the_histogram_buckets() {
        assert_eq!(
            api_latency_quantile("0.95", r#"service="a""#, "5m"),
            r#"histogram_quantile(0.95, sum by (le) (rate(volatility_prediction_latency_seconds_bucket{service="a"}[5m])))"#
        );
    }
}
