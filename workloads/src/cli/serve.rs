//! `spikewatch serve`: the prediction API on port 8000.
//!
//! The listener is up at once; the model loads in the background (`/health` answers 503 with
//! the reason meanwhile). A failed initial load stops the process with the error, so that the
//! orchestrator restarts it with backoff. SIGHUP reloads the model; SIGINT/SIGTERM stop
//! accepting connections, end the prediction streams and let in-flight requests finish.
//! With `api.predictions_from_kafka`, `/predictions/stream` and `/predictions/latest` serve the
//! predictions topic ([`crate::prediction_feed::kafka`]).

use std::time::Instant;

use anyhow::Context;

use crate::api::{self, AdminAuth, ApiMetrics, AppState, Limits};
use crate::config::Config;
use crate::domain::ModelVariant;
use crate::model::ModelHandle;
use crate::prediction_feed::kafka::PredictionTail;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on, on the host of `api.bind` (`SPIKEWATCH_PORT` does the same).
    #[arg(long, value_name = "PORT", conflicts_with = "bind")]
    pub port: Option<u16>,
    /// Address to listen on, `host:port` (overrides `api.bind`).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Model source: `builtin:spikewatch-gbdt`, an artifact directory, an `https://` URL, or
    /// `models:/<name>/<version|@alias>` (overrides `model.source` / `SPIKEWATCH_MODEL_SOURCE`).
    #[arg(long, value_name = "SOURCE")]
    pub model: Option<String>,
    /// Variant answering at start (overrides `model.variant` / `SPIKEWATCH_MODEL_VARIANT`).
    #[arg(long, value_name = "VARIANT", value_enum)]
    pub variant: Option<ModelVariant>,
}

impl Args {
    /// Command-line flags win over the config file and the environment.
    pub fn apply(&self, config: &mut Config) {
        if let Some(bind) = &self.bind {
            config.api.bind = bind.clone();
        }
        if let Some(port) = self.port {
            let host = config.api.bind.rsplit_once(':').map_or("0.0.0.0", |(host, _)| host);
            config.api.bind = format!("{host}:{port}");
        }
        if let Some(model) = &self.model {
            config.model.source = model.clone();
        }
        if let Some(variant) = self.variant {
            config.model.variant = variant;
        }
    }
}

pub async fn run(args: Args, mut config: Config) -> anyhow::Result<()> {
    args.apply(&mut config);
    let admin = AdminAuth::from_file(config.api.admin_token_file.as_deref())?;
    if matches!(admin, AdminAuth::Disabled) {
        tracing::warn!(
            "admin endpoints disabled: set api.admin_token_file (or SPIKEWATCH_ADMIN_TOKEN_FILE) to enable reload and variant switch"
        );
    }
    let state = AppState::new(Limits::from_config(&config.api), admin, ApiMetrics::new()?);
    if config.api.predictions_from_kafka {
        let tail = PredictionTail::new(&config.kafka).context("cannot create the reader of the predictions topic")?;
        tracing::info!(topic = tail.topic(), "streaming predictions from Kafka");
        tail.spawn(state.feed().clone());
    }
    let listener = tokio::net::TcpListener::bind(&config.api.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.api.bind))?;
    tracing::info!(addr = %listener.local_addr()?, "prediction API listening");

    let (load_failed, mut load_failure) = tokio::sync::oneshot::channel::<String>();
    state.set_not_ready(format!("loading model from {}", config.model.source));
    let loader_state = state.clone();
    let model_config = config.model.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        match ModelHandle::load(&model_config).await {
            Ok(handle) => loader_state.install(handle, started.elapsed()),
            Err(err) => {
                let reason = format!("model load failed: {err}");
                loader_state.set_not_ready(reason.clone());
                let _ = load_failed.send(reason);
            }
        }
    });
    #[cfg(unix)]
    let _sighup = api::reload_on_sighup(state.clone()).context("cannot install the SIGHUP handler")?;

    let failure = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let shutdown = {
        let failure = failure.clone();
        async move {
            tokio::select! {
                () = stop_signal() => tracing::info!("stop signal: finishing in-flight requests"),
                Ok(reason) = &mut load_failure => {
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
                }
            }
        }
    };
    let service = match &config.api.admin_bind {
        None => api::router(state.clone()),
        Some(bind) => {
            let admin = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind} (api.admin_bind)"))?;
            tracing::info!(admin_addr = %admin.local_addr()?, "admin endpoints listening");
            let router = api::admin_router(state.clone());
            tokio::spawn(async move {
                if let Err(err) = axum::serve(admin, router).await {
                    tracing::error!(%err, "admin endpoints stopped");
                }
            });
            api::router_without_admin(state.clone())
        }
    };
    api::serve_router(listener, service, state, shutdown).await.context("prediction API failed")?;
    match failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(reason) => anyhow::bail!(reason),
        None => Ok(()),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM (Kubernetes pod deletion).
async fn stop_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_config() {
        let mut config = Config::default();
        Args {
            port: Some(9100),
            bind: None,
            model: Some("models:/spikewatch@prod".into()),
            variant: Some(ModelVariant::Baseline),
        }
        .apply(&mut config);
        assert_eq!(config.api.bind, "0.0.0.0:9100");
        assert_eq!(config.model.source, "models:/spikewatch@prod");
        assert_eq!(config.model.variant, ModelVariant::Baseline);
        let mut config = Config::default();
        config.api.bind = "127.0.0.1:1".into();
        Args { port: Some(9200), bind: None, model: None, variant: None }.apply(&mut config);
        assert_eq!(config.api.bind, "127.0.0.1:9200", "the configured host");
        assert_eq!(config.model.source, Config::default().model.source);
    }
}
