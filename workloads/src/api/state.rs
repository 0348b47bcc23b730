//! The state every handler shares: limits, metrics, the live prediction feed, and the model
//! slot with its admin lever.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use crate::admin::{AdminAuth, ModelLever};
use crate::config::ApiConfig;
use crate::domain::ModelVariant;
use crate::http::connections::ConnectionLimits;
use crate::http::{ApiError, BodyLimit};
use crate::model::{Model, ModelHandle, ModelInfo};
use crate::prediction_feed::PredictionFeed;

use super::metrics::ApiMetrics;

/// Request limits (`api.*` in the config file).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_rows: usize,
    pub request_timeout: Duration,
    /// Refuse rows with absent fields instead of filling them in (`api.strict_rows`).
    pub strict_rows: bool,
    /// Predictions a stream client may fall behind by before it loses the oldest.
    pub stream_buffer: usize,
    /// Interval of the keep-alive comments on an idle stream (proxies close silent connections).
    pub stream_keep_alive: Duration,
    /// Bounds on slow and idle connections.
    pub connections: ConnectionLimits,
}

/// Keep-alive interval of `/predictions/stream`: below the usual 30–60 s idle timeouts of proxies.
pub const STREAM_KEEP_ALIVE: Duration = Duration::from_secs(15);

impl Limits {
    pub fn from_config(config: &ApiConfig) -> Self {
        Limits {
            max_body_bytes: config.max_body_bytes,
            max_rows: config.max_rows.max(1),
            request_timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
            strict_rows: config.strict_rows,
            stream_buffer: config.stream_buffer.max(1),
            stream_keep_alive: STREAM_KEEP_ALIVE,
            connections: ConnectionLimits::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&ApiConfig::default())
    }
}

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    limits: Limits,
    metrics: ApiMetrics,
    /// Live predictions for `/predictions/stream` and `/predictions/latest`.
    feed: PredictionFeed,
    /// The model slot, and the admin endpoints that reload and switch it.
    lever: ModelLever,
}

impl AppState {
    /// A state with no model yet: `/health` answers 503 with the reason given to
    /// [`AppState::set_not_ready`] until [`AppState::install`].
    pub fn new(limits: Limits, admin: AdminAuth, metrics: ApiMetrics) -> Self {
        let feed = PredictionFeed::new(limits.stream_buffer, metrics.feed.clone());
        let lever = ModelLever::new(admin, metrics.model.clone());
        AppState(Arc::new(Inner { limits, metrics, feed, lever }))
    }

    /// A state serving `models` right away (tests, embedding).
    pub fn with_models(limits: Limits, admin: AdminAuth, models: ModelHandle) -> prometheus::Result<Self> {
        let state = AppState::new(limits, admin, ApiMetrics::new()?);
        state.install(models, Duration::ZERO);
        Ok(state)
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    pub fn metrics(&self) -> &ApiMetrics {
        &self.0.metrics
    }

    /// The live predictions this server streams; whoever produces them publishes here.
    pub fn feed(&self) -> &PredictionFeed {
        &self.0.feed
    }

    /// The model slot and the admin lever over it.
    pub fn lever(&self) -> &ModelLever {
        &self.0.lever
    }

    /// Starts serving `models`, loaded in `load_time`. Only the first call has an effect.
    pub fn install(&self, models: ModelHandle, load_time: Duration) {
        self.0.lever.install(models, load_time);
    }

    /// Records why no model answers (e.g. "loading from models:/spikewatch@prod").
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        self.0.lever.set_not_ready(reason);
    }

    /// The model answering now, or 503 with the reason there is none.
    pub fn model(&self) -> Result<Arc<dyn Model>, ApiError> {
        self.0.lever.model()
    }

    /// The training rows' feature reference of the loaded model, if it has one.
    pub fn reference(&self) -> Option<Arc<crate::model::Reference>> {
        self.0.lever.handle().ok().and_then(|m| m.reference())
    }

    /// The model answering now, if any.
    pub fn model_if_loaded(&self) -> Option<Arc<dyn Model>> {
        self.0.lever.model_if_loaded()
    }

    /// Why no model answers, or `None` when one does.
    pub fn not_ready_reason(&self) -> Option<String> {
        self.0.lever.not_ready_reason()
    }

    /// Reloads the model from its source and swaps it in; the old one serves until then.
    pub async fn reload(&self) -> Result<ModelInfo, ApiError> {
        self.0.lever.reload().await
    }

    /// Switches variant; both variants stay loaded, so this is immediate.
    pub async fn set_variant(&self, variant: ModelVariant) -> Result<ModelInfo, ApiError> {
        self.0.lever.set_variant(variant).await
    }
}

impl FromRef<AppState> for BodyLimit {
    fn from_ref(state: &AppState) -> Self {
        BodyLimit(state.limits().max_body_bytes)
    }
}
