//! `spikewatch predict`: consume `ticks.features`, publish predictions to `ticks.predictions`.
//!
//! The model comes from `model.source` (`MODEL_SOURCE`; a path, URL or `models:/` URI) with
//! `model.variant` (`MODEL_VARIANT`) answering. SIGHUP re-fetches the source and swaps the model
//! atomically; batches in flight finish with the model they started with. With
//! `api.admin_token_file` set, `POST /admin/variant` on the metrics port (or on `api.admin_bind`
//! alone, when set) switches the variant at run time (the operator's automatic rollback).

use prometheus::Registry;

use crate::api::AdminAuth;
use crate::config::Config;
use crate::domain::ModelVariant;
use crate::model::ModelHandle;
use crate::pipeline::predict::{PredictorMetrics, run_kafka};
use crate::pipeline::shutdown;
use crate::telemetry::server::{self, Health, ModelAdmin};
use crate::transport::kafka::wait_for_brokers;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model source (overrides `model.source` / `SPIKEWATCH_MODEL_SOURCE`): `builtin:spikewatch-gbdt`,
    /// a path, an `https://` URL or `models:/<name>/<version|@alias>`.
    #[arg(long = "model", value_name = "SOURCE")]
    pub model: Option<String>,
    /// Which model answers (overrides `model.variant` / `SPIKEWATCH_MODEL_VARIANT`).
    #[arg(long, value_name = "VARIANT", value_enum)]
    pub variant: Option<ModelVariant>,
}

pub async fn run(args: Args, mut config: Config) -> anyhow::Result<()> {
    if let Some(source) = args.model {
        config.model.source = source;
    }
    if let Some(variant) = args.variant {
        config.model.variant = variant;
    }
    let model = ModelHandle::load(&config.model).await?;
    let info = model.current().info().clone();
    tracing::info!(model = %info.name, version = %info.version, variant = info.variant.as_str(), threshold = info.threshold, "model loaded");

    let registry = Registry::new();
    let metrics = PredictorMetrics::register(&registry)?;
    let health = Health::default();
    // The operator's rollback switches the variant here, as on the API (same token file).
    let admin = match AdminAuth::from_file(config.api.admin_token_file.as_deref())? {
        AdminAuth::Disabled => None,
        auth => Some(ModelAdmin { auth, model: model.clone() }),
    };
    // With api.admin_bind, the admin endpoint listens there alone (see below).
    let (beside_metrics, alone) = match &config.api.admin_bind {
        Some(bind) => (None, admin.map(|admin| (bind.clone(), admin))),
        None => (admin, None),
    };
    let addr = server::spawn_with_admin(&config.metrics.bind, registry, health.clone(), beside_metrics).await?;
    tracing::info!(
        %addr,
        input = %config.kafka.topics.features,
        output = %config.kafka.topics.predictions,
        group = %config.kafka.predictor_group_id,
        "predictor starting; metrics served"
    );
    if let Some((bind, admin)) = alone {
        let admin_addr = server::spawn_admin(&bind, admin).await?;
        tracing::info!(admin_addr = %admin_addr, "admin endpoint listening");
    }
    reload_on_sighup(model.clone());
    let shutdown = shutdown::on_signal();
    // Ready (and alive) as before: the liveness probe reads /health, and a broker that starts
    // after this pod is no reason to restart it.
    health.set_ready(true);
    if !wait_for_brokers(&config.kafka, "predictor", &shutdown).await {
        tracing::info!("stopped before a broker answered");
        return Ok(());
    }
    let totals = run_kafka(&config, model, metrics, shutdown).await;
    health.set_ready(false);
    let totals = totals?;
    println!(
        "predicted: consumed={} skipped={} published={} batches={}",
        totals.consumed, totals.skipped, totals.produced, totals.batches
    );
    Ok(())
}

/// SIGHUP → [`ModelHandle::reload`]; a failed reload keeps the current model serving.
fn reload_on_sighup(model: ModelHandle) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGHUP; hot reload disabled");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            match model.reload().await {
                Ok(info) => tracing::info!(version = %info.version, "SIGHUP: model reloaded"),
                Err(err) => tracing::error!(%err, "SIGHUP: reload failed; the current model keeps serving"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = model;
}
