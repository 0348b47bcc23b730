//! [`MetricsSource`] without Prometheus: the operator scrapes the API and predictor pods'
//! `/metrics` at every check and computes the same windows as the Prometheus queries from the
//! scrapes it keeps per pipeline ([`crate::automation::window`]).
//!
//! A window needs two scrapes of a pod: the first check after the operator starts (or after a
//! pod appears) has no data for it. Only pods scraped at this check count, so a pod that stops
//! answering is never judged on stale numbers; the message says which pods failed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use k8s_openapi::jiff::Timestamp;
use prometheus_parse::{Scrape, Value};

use super::metric::{ALERT_PRECISION, API_LATENCY, API_REQUESTS, CONSUMED, CONSUMER_ERRORS, INFERENCE_ERROR_TYPE};
use super::{MeasureRequest, Measurement, Measurements, MetricsSource, ServingPod, ratio};
use crate::automation::time::elapsed_seconds;
use crate::automation::window::{Counters, Increases, Sample, histogram_quantile, increases};

/// Largest `/metrics` body read from a pod.
const MAX_BODY_BYTES: usize = 4 << 20;

/// Scrapes pods, remembering each pipeline's recent scrapes.
pub struct ScrapeSource {
    http: reqwest::Client,
    history: Mutex<HashMap<String, Vec<Sample>>>,
    timeout: Duration,
}

impl ScrapeSource {
    pub fn new(http: reqwest::Client) -> ScrapeSource {
        ScrapeSource { http, history: Mutex::new(HashMap::new()), timeout: Duration::from_secs(3) }
    }

    /// Forgets a deleted pipeline's scrapes.
    pub fn forget(&self, pipeline: &str) {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).remove(pipeline);
    }

    async fn scrape(&self, pod: &ServingPod, now: Timestamp) -> Result<Sample, String> {
        let base = pod.base_url.as_deref().ok_or_else(|| format!("{}: no IP yet", pod.name))?;
        let response = self
            .http
            .get(format!("{base}/metrics"))
            .timeout(self.timeout)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("{}: {e}", pod.name))?;
        let body = response.bytes().await.map_err(|e| format!("{}: {e}", pod.name))?;
        if body.len() > MAX_BODY_BYTES {
            return Err(format!("{}: /metrics larger than {MAX_BODY_BYTES} bytes", pod.name));
        }
        let text = String::from_utf8_lossy(&body);
        let counters = parse_counters(&text).map_err(|e| format!("{}: {e}", pod.name))?;
        Ok(Sample { pod: pod.name.clone(), time: now, counters })
    }

    async fn scrape_all(&self, pods: &[ServingPod], now: Timestamp) -> (Vec<Sample>, Vec<String>) {
        let ready: Vec<&ServingPod> = pods.iter().filter(|p| p.ready).collect();
        let results = join_all(ready.iter().map(|p| self.scrape(p, now))).await;
        let mut samples = vec![];
        let mut failures = vec![];
        for result in results {
            match result {
                Ok(sample) => samples.push(sample),
                Err(e) => failures.push(e),
            }
        }
        (samples, failures)
    }
}

/// The counters a check needs, from a text exposition.
pub fn parse_counters(text: &str) -> Result<Counters, String> {
    let scrape =
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).map_err(|e| format!("unreadable /metrics: {e}"))?;
    let mut counters = Counters::default();
    let mut precisions: Vec<f64> = vec![];
    for sample in &scrape.samples {
        let value = match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
            _ => None,
        };
        match (sample.metric.as_str(), value) {
            (API_REQUESTS, Some(v)) => {
                counters.requests += v;
                if sample.labels.get("status").is_some_and(|s| s.starts_with('5')) {
                    counters.server_errors += v;
                }
            }
            (CONSUMED, Some(v)) => counters.consumed += v,
            (CONSUMER_ERRORS, Some(v)) if sample.labels.get("error_type") == Some(INFERENCE_ERROR_TYPE) => {
                counters.inference_errors += v;
            }
            // Per product; undefined (NaN) without an alert in the hour; the baseline's is not
            // the model's.
            (ALERT_PRECISION, Some(v)) if v.is_finite() && sample.labels.get("variant") == Some("ml") => {
                precisions.push(v);
            }
            (API_LATENCY, None) => {
                if let Value::Histogram(buckets) = &sample.value {
                    for b in buckets {
                        match counters.latency_buckets.iter_mut().find(|(le, _)| *le == b.less_than) {
                            Some(slot) => slot.1 += b.count,
                            None => counters.latency_buckets.push((b.less_than, b.count)),
                        }
                    }
                }
            }
            _ => {}
        }
    }
    counters.latency_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !precisions.is_empty() {
        counters.alert_precision = Some(precisions.iter().sum::<f64>() / precisions.len() as f64);
    }
    Ok(counters)
}

fn failed_note(failures: &[String]) -> String {
    if failures.is_empty() { String::new() } else { format!("not scraped: {}", failures.join("; ")) }
}

fn no_pods(pods: &[ServingPod], failures: &[String], what: &str) -> String {
    if pods.iter().all(|p| !p.ready) {
        format!("no Ready {what} pod to scrape")
    } else if failures.is_empty() {
        format!("one scrape of the {what} pods so far: a window needs two")
    } else {
        failed_note(failures)
    }
}

impl MetricsSource for ScrapeSource {
    fn measure<'a>(&'a self, request: &'a MeasureRequest) -> BoxFuture<'a, Measurements> {
        async move {
            let now = request.now;
            let window = f64::from(request.window_seconds);
            let (api_now, api_failures) = self.scrape_all(&request.api, now).await;
            let (predictor_now, predictor_failures) = self.scrape_all(&request.predictor, now).await;

            let (api, predictor) = {
                let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
                let kept = history.entry(request.pipeline.clone()).or_default();
                kept.extend(api_now.iter().cloned());
                kept.extend(predictor_now.iter().cloned());
                // Keep a little more than a window: the base sample may be up to a check older.
                kept.retain(|s| elapsed_seconds(s.time, now) <= 2.0 * window + 60.0 && s.time <= now);
                let of = |fresh: &[Sample]| -> Increases {
                    let pods: Vec<&str> = fresh.iter().map(|s| s.pod.as_str()).collect();
                    let mine: Vec<Sample> = kept.iter().filter(|s| pods.contains(&s.pod.as_str())).cloned().collect();
                    increases(&mine, window, now)
                };
                (of(&api_now), of(&predictor_now))
            };

            let how =
                |what: &str| format!("increase of {what} over {}s from successive scrapes", request.window_seconds);
            let api_note = failed_note(&api_failures);
            let (requests, error_rate, p95_latency) = if api.pods == 0 {
                let why = no_pods(&request.api, &api_failures, "API");
                (
                    Measurement::no_data(how(API_REQUESTS), why.clone()),
                    Measurement::no_data(how("5xx / all requests"), why.clone()),
                    Measurement::no_data(how(API_LATENCY), why),
                )
            } else {
                let mut requests = Measurement::value(api.requests, how(API_REQUESTS));
                requests.message = api_note.clone();
                let error_rate = ratio(
                    Some(api.server_errors),
                    Some(api.requests),
                    how(&format!("{API_REQUESTS}{{status=~\"5..\"}} / {API_REQUESTS}")),
                    "no API requests in the window",
                );
                let p95 = match histogram_quantile(0.95, &api.latency_buckets) {
                    Some(v) => Measurement::value(v, how(&format!("{API_LATENCY} buckets, p95"))),
                    None => Measurement::no_data(how(API_LATENCY), "no request in the window"),
                };
                (requests, error_rate, p95)
            };
            let prediction_error_rate = if predictor.pods == 0 {
                Measurement::no_data(
                    how(CONSUMER_ERRORS),
                    no_pods(&request.predictor, &predictor_failures, "predictor"),
                )
            } else {
                let mut m = ratio(
                    Some(predictor.inference_errors),
                    Some(predictor.consumed),
                    how(&format!("{CONSUMER_ERRORS}{{error_type=\"{INFERENCE_ERROR_TYPE}\"}} / {CONSUMED}")),
                    "no feature vectors consumed in the window",
                );
                if m.message.is_empty() {
                    m.message = failed_note(&predictor_failures);
                }
                m
            };
            let alert_precision = request.alert_precision.then(|| match predictor.alert_precision {
                Some(v) => Measurement::value(v, format!("mean of {ALERT_PRECISION} over the predictor pods")),
                None => Measurement::no_data(ALERT_PRECISION, "not exported by the predictor pods"),
            });
            Measurements {
                source: "scrape".into(),
                requests,
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

    const EXPOSITION: &str = r#"# HELP volatility_api_requests_total HTTP requests answered
# TYPE volatility_api_requests_total counter
volatility_api_requests_total{endpoint="/predict",method="POST",status="200"} 90
volatility_api_requests_total{endpoint="/predict",method="POST",status="500"} 7
volatility_api_requests_total{endpoint="/predict",method="POST",status="503"} 3
volatility_api_requests_total{endpoint="/health",method="GET",status="200"} 12
# TYPE volatility_prediction_latency_seconds histogram
volatility_prediction_latency_seconds_bucket{endpoint="/predict",variant="ml",le="0.001"} 80
volatility_prediction_latency_seconds_bucket{endpoint="/predict",variant="ml",le="1"} 100
volatility_prediction_latency_seconds_bucket{endpoint="/predict",variant="ml",le="+Inf"} 100
volatility_prediction_latency_seconds_sum{endpoint="/predict",variant="ml"} 3.2
volatility_prediction_latency_seconds_count{endpoint="/predict",variant="ml"} 100
volatility_prediction_latency_seconds_bucket{endpoint="/predict",variant="baseline",le="0.001"} 10
volatility_prediction_latency_seconds_bucket{endpoint="/predict",variant="baseline",le="1"} 10
volatility_prediction_latency_seconds_bucket{endpoint="/predict",variant="baseline",le="+Inf"} 10
# TYPE volatility_consumer_errors_total counter
volatility_consumer_errors_total{error_type="inference"} 4
volatility_consumer_errors_total{error_type="deserialize"} 9
# TYPE volatility_consumer_messages_processed_total counter
volatility_consumer_messages_processed_total 400
"#;

    #[test]
    fn the_counters_a_check_needs() {
        let c = parse_counters(EXPOSITION).unwrap();
        assert_eq!(c.requests, 112.0);
        assert_eq!(c.server_errors, 10.0);
        assert_eq!(c.consumed, 400.0);
        assert_eq!(c.inference_errors, 4.0, "other error types are not the model's");
        assert_eq!(c.latency_buckets, vec![(0.001, 90.0), (1.0, 110.0), (f64::INFINITY, 110.0)]);
        assert_eq!(c.alert_precision, None);
    }

    #[test]
    fn alert_precision_is_the_models_mean_over_the_products_that_alerted() {
        let text = r#"# TYPE volatility_online_alert_precision gauge
volatility_online_alert_precision{product_id="BTC-USD",variant="ml"} 0.2
volatility_online_alert_precision{product_id="ETH-USD",variant="ml"} 0.4
volatility_online_alert_precision{product_id="SOL-USD",variant="ml"} NaN
volatility_online_alert_precision{product_id="BTC-USD",variant="baseline"} 0.9
"#;
        let c = parse_counters(text).unwrap();
        let p = c.alert_precision.unwrap();
        assert!((p - 0.3).abs() < 1e-12, "{p}");
        let silent = "volatility_online_alert_precision{product_id=\"BTC-USD\",variant=\"ml\"} NaN\n";
        assert_eq!(parse_counters(silent).unwrap().alert_precision, None, "no alert judged: no value");
    }

    #[test]
    fn garbage_parses_to_nothing_rather_than_failing() {
        let c = parse_counters("this is not\nan exposition {{{\n").unwrap();
        assert_eq!(c, Counters::default());
    }
}
