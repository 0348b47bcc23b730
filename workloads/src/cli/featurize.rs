//! `spikewatch featurize`: consume `ticks.raw`, publish feature vectors to `ticks.features`.

use prometheus::Registry;

use crate::config::Config;
use crate::pipeline::featurize::{FeaturizerMetrics, run_kafka};
use crate::pipeline::shutdown;
use crate::telemetry::server::{self, Health};
use crate::transport::kafka::wait_for_brokers;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, config: Config) -> anyhow::Result<()> {
    crate::features::check_config(&config.features).map_err(anyhow::Error::msg)?;
    let registry = Registry::new();
    let metrics = FeaturizerMetrics::register(&registry)?;
    let health = Health::default();
    let addr = server::spawn(&config.metrics.bind, registry, health.clone(), None).await?;
    tracing::info!(
        %addr,
        input = %config.kafka.topics.raw,
        output = %config.kafka.topics.features,
        group = %config.kafka.featurizer_group_id,
        "featurizer starting; metrics served"
    );
    let shutdown = shutdown::on_signal();
    // Ready (and alive) as before: the liveness probe reads /health, and a broker that starts
    // after this pod is no reason to restart it.
    health.set_ready(true);
    if !wait_for_brokers(&config.kafka, "featurizer", &shutdown).await {
        tracing::info!("stopped before a broker answered");
        return Ok(());
    }
    let totals = run_kafka(&config, metrics, shutdown).await;
    health.set_ready(false);
    let totals = totals?;
    println!(
        "featurized: consumed={} skipped={} published={} batches={}",
        totals.consumed, totals.skipped, totals.produced, totals.batches
    );
    Ok(())
}
