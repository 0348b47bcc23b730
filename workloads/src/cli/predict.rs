//! `spikewatch predict`: consume `ticks.features`, publish predictions to `ticks.predictions`.
//!
//! The model comes from `model.source` (`MODEL_SOURCE`; a path, URL or `models:/` URI) with
//! `model.variant` (`MODEL_VARIANT`) answering. SIGHUP re-fetches the source and swaps the model
//! atomically; batches in flight finish with the model they started with. With
//! `api.admin_token_file` set, `POST /admin/variant` and `POST /admin/reload` on the metrics
//! port (or on `api.admin_bind` alone, when set) switch the variant or reload the model at run
//! time (the operator's automatic rollback), exactly as on the API (`crate::admin`).

use std::time::Instant;

use prometheus::Registry;

use crate::admin::{AdminAuth, ModelLever, ModelMetrics};
use crate::config::Config;
use crate::domain::ModelVariant;
use crate::model::ModelHandle;
use crate::pipeline::predict::{PredictorMetrics, run_kafka};
use crate::pipeline::shutdown;
use crate::telemetry::server::{self, Health};
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
    let started = Instant::now();
    let model = ModelHandle::load(&config.model).await?;
    let info = model.current().info().clone();
    tracing::info!(model = %info.name, version = %info.version, variant = info.variant.as_str(), threshold = info.threshold, "model loaded");

    let registry = Registry::new();
    let metrics = PredictorMetrics::register(&registry)?;
    let health = Health::default();
    // The operator's rollback switches the variant here, as on the API (same token file, same
    // endpoints, same metrics).
    let auth = AdminAuth::from_file(config.api.admin_token_file.as_deref())?;
    let lever = ModelLever::serving(auth, ModelMetrics::register(&registry)?, model.clone(), started.elapsed());
    // With api.admin_bind, the admin endpoints listen there alone.
    let beside_metrics = config.api.admin_bind.is_none().then(|| lever.clone());
    let addr = server::spawn(&config.metrics.bind, registry, health.clone(), beside_metrics).await?;
    tracing::info!(
        %addr,
        input = %config.kafka.topics.features,
        output = %config.kafka.topics.predictions,
        group = %config.kafka.predictor_group_id,
        "predictor starting; metrics served"
    );
    if let Some(bind) = &config.api.admin_bind {
        let admin_addr = server::spawn_router(bind, server::admin_router(lever.clone()), "admin endpoint").await?;
        tracing::info!(admin_addr = %admin_addr, "admin endpoint listening");
    }
    #[cfg(unix)]
    if let Err(err) = crate::admin::lever::reload_on_sighup(lever) {
        tracing::warn!(%err, "cannot listen for SIGHUP; hot reload disabled");
    }
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
