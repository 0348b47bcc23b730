//! `spikewatch replay`: publish recorded tickers to the raw topic at the original pace × speed.

use std::path::PathBuf;

use prometheus::Registry;

use crate::config::Config;
use crate::pipeline::pacing::Speed;
use crate::pipeline::replay::{ReplayMetrics, ReplayOptions, run_kafka};
use crate::pipeline::shutdown;
use crate::telemetry::server::{self, Health};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings (NDJSON: Exchange wrapper, Advanced Trade ticker objects or the mirror format;
    /// or flat tick CSV; plain or gzip), replayed in order. Default: the bundled Exchange
    /// recording.
    #[arg(long = "input", value_name = "FILE", num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// `max` (as fast as the broker acknowledges) or a multiple of the original pace (`1`, `10`).
    #[arg(long, default_value = "1")]
    pub speed: Speed,
    /// Longest pause between two ticks, in seconds: longer holes in a recording are compressed.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub max_sleep: f64,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    if !(args.max_sleep.is_finite() && args.max_sleep >= 0.0) {
        anyhow::bail!("--max-sleep must be a non-negative number of seconds, got {}", args.max_sleep);
    }
    let options = ReplayOptions {
        inputs: args.inputs,
        speed: args.speed,
        max_sleep: std::time::Duration::from_secs_f64(args.max_sleep),
    };
    let registry = Registry::new();
    let metrics = ReplayMetrics::register(&registry)?;
    let health = Health::default();
    let addr = server::spawn(&config.metrics.bind, registry, health.clone()).await?;
    tracing::info!(%addr, speed = %options.speed, topic = %config.kafka.topics.raw, "replay started; metrics served");
    health.set_ready(true);

    let (replayed, published) = run_kafka(&config, &options, &metrics, shutdown::on_signal()).await?;
    tracing::info!(
        ticks = replayed.ticks,
        acknowledged = published.acknowledged,
        skipped_frames = replayed.skipped_frames,
        malformed_lines = replayed.malformed_lines,
        stopped_early = replayed.stopped_early,
        "replay finished"
    );
    println!(
        "replayed: ticks={} published={} skipped_frames={} malformed_lines={}",
        replayed.ticks, published.acknowledged, replayed.skipped_frames, replayed.malformed_lines
    );
    Ok(())
}
