//! `spikewatch replay`: publish recorded tickers to the raw topic at the original pace × speed,
//! once or in a loop.

use prometheus::Registry;

use crate::config::Config;
use crate::pipeline::pacing::Speed;
use crate::pipeline::replay::{ReplayMetrics, ReplayOptions, run_kafka};
use crate::pipeline::shutdown;
use crate::sources::download;
use crate::telemetry::server::{self, Health};
use crate::transport::kafka::wait_for_brokers;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings (NDJSON: Exchange wrapper, Advanced Trade ticker objects or the mirror format;
    /// or flat tick CSV; plain or gzip), merged by exchange time: files, or `https://` URLs
    /// downloaded once at start. Default: the bundled hour of BTC-USD, ETH-USD and SOL-USD.
    #[arg(long = "input", value_name = "FILE|URL", num_args = 1..)]
    pub inputs: Vec<String>,
    /// `max` (as fast as the broker acknowledges) or a multiple of the original pace (`1`, `10`).
    #[arg(long, value_name = "SPEED", default_value = "1")]
    pub speed: Speed,
    /// Longest pause between two ticks, in seconds: longer holes in a recording are compressed.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub max_sleep: f64,
    /// Start over at the end of the recordings until stopped, each pass shifted in exchange time
    /// to follow the previous one (a recording as an endless feed, e.g. on a cluster without
    /// internet access). A restarted loop continues after the latest tick already on the raw
    /// topic, so the featurizer never sees it go back in time.
    #[arg(long = "loop")]
    pub repeat: bool,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    if !(args.max_sleep.is_finite() && args.max_sleep >= 0.0) {
        anyhow::bail!("--max-sleep must be a non-negative number of seconds, got {}", args.max_sleep);
    }
    let registry = Registry::new();
    let metrics = ReplayMetrics::register(&registry)?;
    // Ready once the first tick is handed to the producer (see `publish_ticks`), not before.
    let health = Health::default();
    let addr = server::spawn(&config.metrics.bind, registry, health.clone(), None).await?;
    tracing::info!(%addr, "serving /metrics and /health");
    // The inputs first: a recording that cannot be had is an error whatever the broker does.
    let inputs = download::resolve_inputs(&args.inputs).await?;
    let shutdown = shutdown::on_signal();
    if !wait_for_brokers(&config.kafka, "replay", &shutdown).await {
        tracing::info!("stopped before a broker answered");
        return Ok(());
    }
    let options = ReplayOptions {
        inputs: inputs.paths.clone(),
        speed: args.speed,
        max_sleep: std::time::Duration::from_secs_f64(args.max_sleep),
        repeat: args.repeat,
    };
    tracing::info!(speed = %options.speed, repeat = options.repeat, topic = %config.kafka.topics.raw, "replay started");

    let (replayed, published) = run_kafka(&config, &options, &metrics, &health, shutdown).await?;
    health.set_ready(false);
    tracing::info!(
        ticks = replayed.ticks,
        passes = replayed.passes,
        acknowledged = published.acknowledged,
        skipped_frames = replayed.skipped_frames,
        malformed_lines = replayed.malformed_lines,
        stopped_early = replayed.stopped_early,
        "replay finished"
    );
    println!(
        "replayed: ticks={} published={} skipped_frames={} malformed_lines={} passes={}",
        replayed.ticks, published.acknowledged, replayed.skipped_frames, replayed.malformed_lines, replayed.passes
    );
    Ok(())
}
