//! The API's Prometheus metrics (names from the original system) and the middleware that
//! counts every request and error.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use super::state::AppState;
use crate::admin::ModelMetrics;
use crate::domain::ModelVariant;
use crate::http::error::{ApiError, ErrorKind};
use crate::metric_names::api as names;
use crate::prediction_feed::FeedMetrics;

/// Every metric `spikewatch serve` exports, registered in its own registry.
#[derive(Clone)]
pub struct ApiMetrics {
    registry: Registry,
    /// `volatility_api_requests_total{endpoint,method,status}`
    pub requests: IntCounterVec,
    /// `volatility_api_errors_total{endpoint,error_type}`
    pub errors: IntCounterVec,
    /// `volatility_prediction_latency_seconds{endpoint,variant}`: request in → response out.
    pub latency: HistogramVec,
    /// `volatility_api_rows_predicted_total{variant}`
    pub rows: IntCounterVec,
    /// `volatility_api_imputed_requests_total`: requests with a field filled by a training median.
    pub imputed_requests: IntCounter,
    /// The served model's metrics (`model_*`), as on the predictor.
    pub model: ModelMetrics,
    /// The live prediction feed's and its stream clients' metrics (`volatility_api_feed_*`,
    /// `volatility_api_stream_*`).
    pub feed: FeedMetrics,
}

/// Route templates of the endpoints that score rows.
pub const PREDICTION_ENDPOINTS: [&str; 3] =
    ["/predict", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"];

/// Latency buckets from 50 µs to 5 s: the API answers in well under a millisecond when healthy.
const LATENCY_BUCKETS: [f64; 16] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

impl ApiMetrics {
    /// The API's metrics in a registry of their own.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(names::REQUESTS, "HTTP requests answered, by endpoint, method and status"),
            &["endpoint", "method", "status"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(names::ERRORS, "Requests answered with an error, by endpoint and error type"),
            &["endpoint", "error_type"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                names::LATENCY,
                "Time from request to prediction response, by endpoint and model variant",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["endpoint", "variant"],
        )?;
        let rows = IntCounterVec::new(
            Opts::new(names::ROWS_PREDICTED, "Feature rows scored, by model variant"),
            &["variant"],
        )?;
        let imputed_requests = IntCounter::new(
            names::IMPUTED_REQUESTS,
            "Prediction requests with at least one absent field filled with its training median",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(rows.clone()))?;
        registry.register(Box::new(imputed_requests.clone()))?;
        for v in [ModelVariant::Ml, ModelVariant::Baseline] {
            rows.with_label_values(&[v.as_str()]);
        }
        // The server-error series of the prediction endpoints too: a series' first sample has no
        // increase() in Prometheus, so a first burst of 5xx would otherwise show one scrape late
        // (the operator's rollback checks read these).
        for endpoint in PREDICTION_ENDPOINTS {
            for status in ["500", "503"] {
                requests.with_label_values(&[endpoint, "POST", status]);
            }
        }
        let model = ModelMetrics::register(&registry)?;
        let feed = FeedMetrics::register(&registry)?;
        crate::telemetry::config_keys::register(&registry)?;
        Ok(ApiMetrics { registry, requests, errors, latency, rows, imputed_requests, model, feed })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Marker a prediction handler leaves on its response: which variant answered, how many rows.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub variant: ModelVariant,
    pub rows: usize,
}

/// Counts every request by route template (never the raw path: bounded label values), counts
/// errors by kind, times predictions, and gives a JSON body to errors raised outside the
/// handlers (the timeout layer).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let endpoint = endpoint.as_deref().unwrap_or("unmatched").to_owned();
    let method = request.method().as_str().to_owned();
    let mut response = next.run(request).await;
    let status = response.status();

    if status.is_client_error() || status.is_server_error() {
        let kind = match response.extensions().get::<ErrorKind>() {
            Some(ErrorKind(kind)) => *kind,
            None => {
                // Every route and layer of this API answers through `ApiError`; this covers any
                // other error response (e.g. from a layer added later).
                let err = if status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
                    ApiError::Timeout { after_ms: state.limits().request_timeout.as_millis() as u64 }
                } else {
                    ApiError::Invalid { field: "request".into(), reason: status.to_string() }
                };
                let kind = err.kind();
                if !is_json(&response) {
                    response = err.into_response();
                }
                kind
            }
        };
        state.metrics().errors.with_label_values(&[&endpoint, kind]).inc();
    }
    if let Some(scored) = response.extensions().get::<Scored>() {
        let metrics = state.metrics();
        metrics
            .latency
            .with_label_values(&[&endpoint, scored.variant.as_str()])
            .observe(started.elapsed().as_secs_f64());
        metrics.rows.with_label_values(&[scored.variant.as_str()]).inc_by(scored.rows as u64);
    }
    state.metrics().requests.with_label_values(&[&endpoint, &method, status.as_str()]).inc();
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// `GET /metrics`: Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TextEncoder::new().format_type().to_string())],
        crate::telemetry::server::render(state.metrics().registry()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_error_series_of_the_prediction_endpoints_exist_from_the_start() {
        let metrics = ApiMetrics::new().unwrap();
        let text = crate::telemetry::server::render(metrics.registry());
        for endpoint in PREDICTION_ENDPOINTS {
            let series =
                format!(r#"volatility_api_requests_total{{endpoint="{endpoint}",method="POST",status="500"}} 0"#);
            assert!(text.contains(&series), "{series} missing from:\n{text}");
        }
    }
}
