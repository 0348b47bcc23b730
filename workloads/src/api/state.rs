//! The state every handler shares: limits, admin auth, metrics, and the model slot.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::config::ApiConfig;
use crate::domain::ModelVariant;
use crate::live::PredictionFeed;
use crate::model::{Model, ModelError, ModelHandle, ModelInfo};

use super::admin::AdminAuth;
use super::connections::ConnectionLimits;
use super::error::ApiError;
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
    admin: AdminAuth,
    metrics: ApiMetrics,
    /// Live predictions for `/predictions/stream` and `/predictions/latest`.
    feed: PredictionFeed,
    models: OnceLock<ModelHandle>,
    /// Why no model answers yet (shown by `/health`).
    not_ready: RwLock<String>,
    /// Reloads and variant switches run one at a time: a reload re-creates the models with the
    /// variant active when it started, so a switch landing mid-reload would be silently undone.
    admin_lock: tokio::sync::Mutex<()>,
}

impl AppState {
    /// A state with no model yet: `/health` answers 503 with `not_ready` until [`AppState::install`].
    pub fn new(limits: Limits, admin: AdminAuth, metrics: ApiMetrics) -> Self {
        let feed = PredictionFeed::new(limits.stream_buffer, metrics.feed.clone());
        AppState(Arc::new(Inner {
            limits,
            admin,
            metrics,
            feed,
            models: OnceLock::new(),
            not_ready: RwLock::new("no model loaded yet".into()),
            admin_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// A state serving `models` right away (tests, embedding).
    pub fn with_models(limits: Limits, admin: AdminAuth, models: ModelHandle) -> Self {
        let state = AppState::new(limits, admin, ApiMetrics::new());
        state.install(models, Duration::ZERO);
        state
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    pub fn admin(&self) -> &AdminAuth {
        &self.0.admin
    }

    pub fn metrics(&self) -> &ApiMetrics {
        &self.0.metrics
    }

    /// The live predictions this server streams; whoever produces them publishes here.
    pub fn feed(&self) -> &PredictionFeed {
        &self.0.feed
    }

    /// Starts serving `models`, loaded in `load_time`. Only the first call has an effect.
    pub fn install(&self, models: ModelHandle, load_time: Duration) {
        let info = models.current().info().clone();
        if self.0.models.set(models).is_ok() {
            self.0.metrics.model_loaded_in(load_time);
            self.0.metrics.model_changed(&info);
            tracing::info!(name = %info.name, version = %info.version, variant = info.variant.as_str(), "serving model");
        }
    }

    /// Records why no model answers (e.g. "loading from models:/spikewatch@prod").
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self.0.not_ready.write().unwrap_or_else(|e| e.into_inner()) = reason.into();
    }

    /// The model answering now, or 503 with the reason there is none.
    pub fn model(&self) -> Result<Arc<dyn Model>, ApiError> {
        Ok(self.control()?.current())
    }

    /// The training rows' feature reference of the loaded model, if it has one.
    pub fn reference(&self) -> Option<Arc<crate::model::Reference>> {
        self.0.models.get().and_then(|m| m.reference())
    }

    /// The model answering now, if any.
    pub fn model_if_loaded(&self) -> Option<Arc<dyn Model>> {
        self.0.models.get().map(|m| m.current())
    }

    /// Why no model answers, or `None` when one does.
    pub fn not_ready_reason(&self) -> Option<String> {
        match self.0.models.get() {
            Some(_) => None,
            None => Some(self.0.not_ready.read().unwrap_or_else(|e| e.into_inner()).clone()),
        }
    }

    fn control(&self) -> Result<&ModelHandle, ApiError> {
        self.0
            .models
            .get()
            .ok_or_else(|| ApiError::ModelNotReady { reason: self.not_ready_reason().unwrap_or_default() })
    }

    /// Reloads the model from its source and swaps it in; the old one serves until then.
    pub async fn reload(&self) -> Result<ModelInfo, ApiError> {
        let control = self.control()?;
        let _one_at_a_time = self.0.admin_lock.lock().await;
        let started = Instant::now();
        let result = control.reload().await.map(drop);
        self.finish_update(result, Some(started.elapsed()), "reload")
    }

    /// Switches variant; both variants stay loaded, so this is immediate.
    pub async fn set_variant(&self, variant: ModelVariant) -> Result<ModelInfo, ApiError> {
        let control = self.control()?;
        let _one_at_a_time = self.0.admin_lock.lock().await;
        let result = control.set_variant(variant).map(drop);
        self.finish_update(result, None, "variant switch")
    }

    fn finish_update(
        &self,
        result: Result<(), ModelError>,
        load_time: Option<Duration>,
        what: &str,
    ) -> Result<ModelInfo, ApiError> {
        let metrics = &self.0.metrics;
        let current = self.model()?;
        let info = current.info().clone();
        match result {
            Ok(()) => {
                metrics.reloads.with_label_values(&["success"]).inc();
                if let Some(elapsed) = load_time {
                    metrics.model_loaded_in(elapsed);
                }
                metrics.model_changed(&info);
                tracing::info!(name = %info.name, version = %info.version, variant = info.variant.as_str(), "{what} done");
                Ok(info)
            }
            Err(err) => {
                metrics.reloads.with_label_values(&["failure"]).inc();
                Err(ApiError::ModelUpdate {
                    reason: format!(
                        "{what} failed, still serving {} {} ({}): {err}",
                        info.name,
                        info.version,
                        info.variant.as_str()
                    ),
                })
            }
        }
    }
}
