//! What the automation looks at, read from the world: the serving pods and their readiness
//! ([`pods`]), the rollback signals through one [`MetricsSource`] seam with two real
//! implementations (the Prometheus query API, [`prometheus`]; or the pods' own `/metrics`,
//! [`scrape`]), and the predictor group's consumer lag from Kafka ([`consumer_lag`]).
//!
//! Every function here does I/O and nothing else; what the numbers mean is decided in
//! [`crate::automation`].

pub mod consumer_lag;
pub mod pods;
pub mod prometheus;
pub mod scrape;

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;

pub use crate::automation::{Measurement, Measurements};
pub use consumer_lag::{ConsumerLag, GroupLag, KafkaConsumerLag, PartitionLag};
pub use pods::ServingPod;
pub use prometheus::PrometheusSource;
pub use scrape::ScrapeSource;

/// What to measure for one pipeline's rollback check.
#[derive(Debug, Clone)]
pub struct MeasureRequest {
    /// `namespace/name`: keys the scrape history of the pipeline.
    pub pipeline: String,
    /// The API pods (scraped by [`ScrapeSource`]).
    pub api: Vec<ServingPod>,
    /// The predictor pods.
    pub predictor: Vec<ServingPod>,
    /// PromQL label matchers of the API's and the predictor's series (what the ServiceMonitors
    /// attach: `namespace` and `service`).
    pub api_selector: String,
    pub predictor_selector: String,
    pub window_seconds: i32,
    /// Measure the online alert precision too (`rollback.minAlertPrecision` is set).
    pub alert_precision: bool,
    pub now: Timestamp,
}

/// Where the rollback signals come from.
pub trait MetricsSource: Send + Sync {
    /// Measures every signal over the request's window; a signal that cannot be measured comes
    /// back without a value and with the reason.
    fn measure<'a>(&'a self, request: &'a MeasureRequest) -> BoxFuture<'a, Measurements>;
}

/// Metric names the checks read: the workloads' own ([`spikewatch_types::metric_names`]), under
/// the names the checks give them.
pub mod metric {
    pub use spikewatch_types::metric_names::api::{LATENCY as API_LATENCY, REQUESTS as API_REQUESTS};
    pub use spikewatch_types::metric_names::predictor::{ERRORS as CONSUMER_ERRORS, MESSAGES_PROCESSED as CONSUMED};
    /// The online-quality hook: precision over the last hour of the alerts whose 60 s outcome
    /// is known, per product and variant (NaN without an alert).
    pub use spikewatch_types::metric_names::quality::ALERT_PRECISION;
    /// Inference errors are the predictor's errors with this `error_type`.
    pub const INFERENCE_ERROR_TYPE: &str = "inference";
}

/// A ratio of two increases, as a check reads it: no denominator data → no value; nothing
/// happened (denominator 0) → 0 with a note.
pub(crate) fn ratio(numerator: Option<f64>, denominator: Option<f64>, query: String, nothing: &str) -> Measurement {
    match (numerator, denominator) {
        (_, None) => Measurement::no_data(query, "no data for the denominator"),
        (_, Some(d)) if d <= 0.0 => Measurement { value: Some(0.0), query, message: nothing.to_string() },
        (n, Some(d)) => Measurement::value(n.unwrap_or(0.0) / d, query),
    }
}
