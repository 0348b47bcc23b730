//! The lever itself: the model slot of a serving process, and the one way to pull it (a
//! reload or a variant switch), whoever pulls it: an HTTP request on the API or on the
//! predictor's metrics port, or SIGHUP.
//!
//! Pulls run one at a time: a reload re-creates the models with the variant active when it
//! started, so a switch landing mid-reload would be silently undone. Each pull is counted
//! (`model_reloads_total{result}`) and leaves the model metrics describing what answers.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use super::auth::AdminAuth;
use super::metrics::ModelMetrics;
use crate::domain::ModelVariant;
use crate::http::ApiError;
use crate::model::{Fallback, Model, ModelError, ModelHandle, ModelInfo};

/// Cheap to clone; every clone pulls the same lever.
#[derive(Clone)]
pub struct ModelLever(Arc<Inner>);

struct Inner {
    auth: AdminAuth,
    metrics: ModelMetrics,
    models: OnceLock<ModelHandle>,
    /// Why no model answers yet (shown by `/health`).
    not_ready: RwLock<String>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl ModelLever {
    /// A lever with no model yet: [`ModelLever::model`] answers 503 with the reason given to
    /// [`ModelLever::set_not_ready`] until [`ModelLever::install`].
    pub fn new(auth: AdminAuth, metrics: ModelMetrics) -> Self {
        ModelLever(Arc::new(Inner {
            auth,
            metrics,
            models: OnceLock::new(),
            not_ready: RwLock::new("no model loaded yet".into()),
            one_at_a_time: tokio::sync::Mutex::new(()),
        }))
    }

    /// A lever over `models`, loaded in `load_time`.
    pub fn serving(auth: AdminAuth, metrics: ModelMetrics, models: ModelHandle, load_time: Duration) -> Self {
        let lever = ModelLever::new(auth, metrics);
        lever.install(models, load_time);
        lever
    }

    pub fn auth(&self) -> &AdminAuth {
        &self.0.auth
    }

    pub fn metrics(&self) -> &ModelMetrics {
        &self.0.metrics
    }

    /// Starts serving `models`, loaded in `load_time`. Only the first call has an effect.
    pub fn install(&self, models: ModelHandle, load_time: Duration) {
        let info = models.current().info().clone();
        let fallback = models.fallback();
        if self.0.models.set(models).is_ok() {
            self.0.metrics.model_loaded_in(load_time);
            self.0.metrics.model_changed(&info, fallback.as_deref());
            match fallback {
                None => {
                    tracing::info!(name = %info.name, version = %info.version, variant = info.variant.as_str(), "serving model")
                }
                Some(fallback) => {
                    tracing::warn!(name = %info.name, version = %info.version, variant = info.variant.as_str(), reason = fallback.reason.as_str(), detail = %fallback.detail, "serving the baseline in place of the ML model")
                }
            }
        }
    }

    /// Records why no model answers (e.g. "loading from models:/spikewatch@prod").
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self.0.not_ready.write().unwrap_or_else(|e| e.into_inner()) = reason.into();
    }

    /// The models, or 503 with the reason there are none.
    pub fn handle(&self) -> Result<&ModelHandle, ApiError> {
        self.0
            .models
            .get()
            .ok_or_else(|| ApiError::ModelNotReady { reason: self.not_ready_reason().unwrap_or_default() })
    }

    /// The model answering now, or 503 with the reason there is none.
    pub fn model(&self) -> Result<Arc<dyn Model>, ApiError> {
        Ok(self.handle()?.current())
    }

    /// The model answering now, if any.
    pub fn model_if_loaded(&self) -> Option<Arc<dyn Model>> {
        self.0.models.get().map(|m| m.current())
    }

    /// Why the baseline answers in place of the configured ML model, when it does.
    pub fn fallback(&self) -> Option<Arc<Fallback>> {
        self.0.models.get().and_then(|m| m.fallback())
    }

    /// Why no model answers, or `None` when one does.
    pub fn not_ready_reason(&self) -> Option<String> {
        match self.0.models.get() {
            Some(_) => None,
            None => Some(self.0.not_ready.read().unwrap_or_else(|e| e.into_inner()).clone()),
        }
    }

    /// Reloads the model from its source and swaps it in; the old one serves until then.
    pub async fn reload(&self) -> Result<ModelInfo, ApiError> {
        let models = self.handle()?;
        let _one_at_a_time = self.0.one_at_a_time.lock().await;
        let started = Instant::now();
        let result = models.reload().await.map(drop);
        self.finish(result, Some(started.elapsed()), "reload")
    }

    /// Switches variant; both variants stay loaded, so this is immediate.
    pub async fn set_variant(&self, variant: ModelVariant) -> Result<ModelInfo, ApiError> {
        let models = self.handle()?;
        let _one_at_a_time = self.0.one_at_a_time.lock().await;
        let result = models.set_variant(variant).map(drop);
        self.finish(result, None, "variant switch")
    }

    fn finish(
        &self,
        result: Result<(), ModelError>,
        load_time: Option<Duration>,
        what: &str,
    ) -> Result<ModelInfo, ApiError> {
        let metrics = &self.0.metrics;
        let models = self.handle()?;
        let info = models.current().info().clone();
        match result {
            Ok(()) => {
                metrics.reloads.with_label_values(&["success"]).inc();
                if let Some(elapsed) = load_time {
                    metrics.model_loaded_in(elapsed);
                }
                metrics.model_changed(&info, models.fallback().as_deref());
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

/// Reloads the model on every SIGHUP, for as long as the process runs; a failed reload keeps
/// the current model serving.
#[cfg(unix)]
pub fn reload_on_sighup(lever: ModelLever) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the model");
            if let Err(err) = lever.reload().await {
                tracing::error!("{err}");
            }
        }
    }))
}
