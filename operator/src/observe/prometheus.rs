//! [`MetricsSource`] over the Prometheus HTTP query API (`spec.monitoring.prometheusUrl`):
//! instant queries over the series the pipeline's ServiceMonitors collect. The queries are the
//! ones shown in `status.rollback.lastCheck` and in `docs/operator.md`.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::metric::{ALERT_PRECISION, API_REQUESTS, CONSUMED, CONSUMER_ERRORS, INFERENCE_ERROR_TYPE};
use super::{MeasureRequest, Measurement, Measurements, MetricsSource, ratio};
use crate::desired::promql::api_latency_quantile;

/// Bound on one query: an unreachable Prometheus makes a check inconclusive, not slow.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The PromQL of every signal, for a window of `w` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Queries {
    pub requests: String,
    pub server_errors: String,
    pub p95_latency: String,
    pub consumed: String,
    pub inference_errors: String,
    pub alert_precision: String,
}

impl Queries {
    pub fn new(api: &str, predictor: &str, window_seconds: i32) -> Queries {
        let w = format!("{window_seconds}s");
        Queries {
            requests: format!("sum(increase({API_REQUESTS}{{{api}}}[{w}]))"),
            // A 5xx series exists only once a 5xx happened: no series means none.
            server_errors: format!(r#"sum(increase({API_REQUESTS}{{{api},status=~"5.."}}[{w}])) or vector(0)"#),
            p95_latency: api_latency_quantile("0.95", api, &w),
            consumed: format!("sum(increase({CONSUMED}{{{predictor}}}[{w}]))"),
            inference_errors: format!(
                r#"sum(increase({CONSUMER_ERRORS}{{{predictor},error_type="{INFERENCE_ERROR_TYPE}"}}[{w}])) or vector(0)"#
            ),
            // `>= 0` drops the NaN of products without an alert in the hour.
            alert_precision: format!("avg({ALERT_PRECISION}{{{predictor},variant=\"ml\"}} >= 0)"),
        }
    }
}

/// Queries one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    http: reqwest::Client,
    url: String,
}

impl PrometheusSource {
    pub fn new(http: reqwest::Client, url: &str) -> PrometheusSource {
        PrometheusSource { http, url: url.trim_end_matches('/').to_string() }
    }

    /// The first sample of an instant query; `Ok(None)` for an empty result.
    pub async fn query(&self, promql: &str, at: f64) -> Result<Option<f64>, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql), ("time", &format!("{at:.3}"))])
            .timeout(QUERY_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("Prometheus at {} unreachable: {e}", self.url))?;
        let status = response.status();
        let body: QueryResponse =
            response.json().await.map_err(|e| format!("Prometheus answered {status} with an unreadable body: {e}"))?;
        if body.status != "success" {
            return Err(format!("Prometheus rejected the query ({status}): {}", body.error.unwrap_or_default()));
        }
        let data = body.data.ok_or("Prometheus answered without data")?;
        match data.result_type.as_str() {
            "vector" => {
                Ok(data.result.as_array().and_then(|r| r.first()).and_then(|s| s.get("value")).and_then(sample_value))
            }
            "scalar" => Ok(sample_value(&data.result)),
            other => Err(format!("unexpected Prometheus result type {other}")),
        }
    }

    async fn measured(&self, promql: &str, at: f64) -> (Option<f64>, Option<String>) {
        match self.query(promql, at).await {
            Ok(value) => (value.filter(|v| v.is_finite()), None),
            Err(e) => (None, Some(e)),
        }
    }
}

#[derive(Deserialize)]
struct QueryResponse {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// `[<unix time>, "<value>"]` → the value.
fn sample_value(pair: &serde_json::Value) -> Option<f64> {
    pair.as_array()?.get(1)?.as_str()?.parse::<f64>().ok()
}

impl MetricsSource for PrometheusSource {
    fn measure<'a>(&'a self, request: &'a MeasureRequest) -> BoxFuture<'a, Measurements> {
        async move {
            let q = Queries::new(&request.api_selector, &request.predictor_selector, request.window_seconds);
            let at = request.now.as_millisecond() as f64 / 1000.0;
            // All at once: a check costs one round trip, not five.
            let (
                (requests, requests_error),
                (server_errors, _),
                (p95, p95_error),
                (consumed, consumed_error),
                (inference_errors, _),
            ) = futures::join!(
                self.measured(&q.requests, at),
                self.measured(&q.server_errors, at),
                self.measured(&q.p95_latency, at),
                self.measured(&q.consumed, at),
                self.measured(&q.inference_errors, at),
            );
            let why = |error: Option<String>, what: &str| {
                error.unwrap_or_else(|| format!("no {what} series in Prometheus for this pipeline"))
            };
            let requests_measurement = match requests {
                Some(n) => Measurement::value(n, q.requests.clone()),
                None => Measurement::no_data(q.requests.clone(), why(requests_error, "API request")),
            };
            let mut error_rate = ratio(
                server_errors,
                requests,
                format!("({}) / ({})", q.server_errors, q.requests),
                "no API requests in the window",
            );
            if requests.is_none() {
                error_rate.message = requests_measurement.message.clone();
            }
            let p95_latency = match p95 {
                Some(v) => Measurement::value(v, q.p95_latency.clone()),
                None => Measurement::no_data(q.p95_latency.clone(), why(p95_error, "API latency")),
            };
            let mut prediction_error_rate = ratio(
                inference_errors,
                consumed,
                format!("({}) / ({})", q.inference_errors, q.consumed),
                "no feature vectors consumed in the window",
            );
            if consumed.is_none() {
                prediction_error_rate.message = why(consumed_error, "predictor");
            }
            let alert_precision = if request.alert_precision {
                let (value, error) = self.measured(&q.alert_precision, at).await;
                Some(match value {
                    Some(v) => Measurement::value(v, q.alert_precision.clone()),
                    None => Measurement::no_data(q.alert_precision.clone(), why(error, ALERT_PRECISION)),
                })
            } else {
                None
            };
            Measurements {
                source: format!("prometheus {}", self.url),
                requests: requests_measurement,
                error_rate,
                p95_latency,
                prediction_error_rate,
                alert_precision,
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_select_the_pipeline_and_the_window() {
        let q = Queries::new(r#"namespace="ns",service="p-api""#, r#"namespace="ns",service="p-predictor""#, 60);
        assert_eq!(q.requests, r#"sum(increase(volatility_api_requests_total{namespace="ns",service="p-api"}[60s]))"#);
        assert_eq!(
            q.server_errors,
            r#"sum(increase(volatility_api_requests_total{namespace="ns",service="p-api",status=~"5.."}[60s])) or vector(0)"#
        );
        assert_eq!(
            q.p95_latency,
            r#"histogram_quantile(0.95, sum by (le) (rate(volatility_prediction_latency_seconds_bucket{namespace="ns",service="p-api"}[60s])))"#
        );
        assert!(q.inference_errors.contains(r#"error_type="inference""#));
    }

    #[test]
    fn sample_values_parse_like_prometheus_writes_them() {
        assert_eq!(sample_value(&serde_json::json!([1.5, "0.25"])), Some(0.25));
        assert!(sample_value(&serde_json::json!([1.5, "NaN"])).unwrap().is_nan());
        assert_eq!(sample_value(&serde_json::json!([1.5, "+Inf"])), Some(f64::INFINITY));
        assert_eq!(sample_value(&serde_json::json!("x")), None);
    }
}
