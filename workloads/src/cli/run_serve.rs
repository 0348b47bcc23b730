//! `spikewatch run --serve`: the prediction API and the live page, next to the in-process
//! pipeline, for as long as the process runs.
//!
//! The API serves the pipeline's own model (`/version`, `/predict` answer with it) and streams
//! the predictions of its predict stage. After a finite replay the server keeps running until
//! SIGINT/SIGTERM, so the page stays open on the final state.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AdminAuth, ApiMetrics, AppState, Limits};
use crate::config::{ApiConfig, Config};
use crate::model::ModelHandle;
use crate::prediction_feed::PredictionFeed;

/// Where `run --serve` listens without `--bind`: this machine only, unless the config (or
/// `PORT`) moved `api.bind` off its default.
pub const LOCAL_BIND: &str = "127.0.0.1:8000";

/// `--bind` if given, else `api.bind` when it is not the built-in default, else [`LOCAL_BIND`].
pub fn bind_address(flag: Option<&str>, port: Option<u16>, config: &ApiConfig) -> String {
    let bind = match flag {
        Some(bind) => bind.to_string(),
        None if config.bind != ApiConfig::default().bind => config.bind.clone(),
        None => LOCAL_BIND.to_string(),
    };
    match port {
        Some(port) => format!("{}:{port}", bind.rsplit_once(':').map_or(bind.as_str(), |(host, _)| host)),
        None => bind,
    }
}

/// The API of a local run, serving until its shutdown token is cancelled.
pub struct LocalServer {
    pub addr: SocketAddr,
    feed: PredictionFeed,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalServer {
    /// Binds `bind` and starts serving `model` (or answering 503 with `model`'s load error).
    pub async fn start(
        bind: &str,
        config: &Config,
        model: Result<ModelHandle, String>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<LocalServer> {
        let admin = AdminAuth::from_file(config.api.admin_token_file.as_deref())?;
        let state = AppState::new(Limits::from_config(&config.api), admin, ApiMetrics::new()?);
        match model {
            Ok(model) => state.install(model, Duration::ZERO),
            Err(reason) => state.set_not_ready(format!("model load failed: {reason}")),
        }
        let feed = state.feed().clone();
        feed.set_source("the in-process pipeline");
        let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "prediction API listening");
        let task = tokio::spawn(api::serve(listener, state, shutdown.cancelled_owned()));
        Ok(LocalServer { addr, feed, task })
    }

    /// The feed the pipeline's predict stage publishes into.
    pub fn feed(&self) -> PredictionFeed {
        self.feed.clone()
    }

    /// Waits until the server has stopped (its shutdown token was cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("the API task failed")?.context("prediction API failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_run_listens_on_loopback_unless_told_otherwise() {
        let default = ApiConfig::default();
        assert_eq!(bind_address(None, None, &default), "127.0.0.1:8000");
        assert_eq!(bind_address(Some("0.0.0.0:9000"), None, &default), "0.0.0.0:9000");
        let configured = ApiConfig { bind: "127.0.0.1:9100".into(), ..ApiConfig::default() };
        assert_eq!(bind_address(None, None, &configured), "127.0.0.1:9100");
        assert_eq!(bind_address(Some("127.0.0.1:0"), None, &configured), "127.0.0.1:0");
    }

    #[test]
    fn port_keeps_the_host_of_the_default_or_configured_address() {
        assert_eq!(bind_address(None, Some(9000), &ApiConfig::default()), "127.0.0.1:9000", "loopback still");
        let configured = ApiConfig { bind: "0.0.0.0:9100".into(), ..ApiConfig::default() };
        assert_eq!(bind_address(None, Some(9200), &configured), "0.0.0.0:9200");
        let ipv6 = ApiConfig { bind: "[::1]:9100".into(), ..ApiConfig::default() };
        assert_eq!(bind_address(None, Some(9200), &ipv6), "[::1]:9200");
    }
}
