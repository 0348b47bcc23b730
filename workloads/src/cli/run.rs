//! `spikewatch run`: replay (or the live feed) → features → summary in one process, no Kafka;
//! with `--serve`, also the prediction API and the live page while it runs, and after a finite
//! replay until interrupted.

use std::path::PathBuf;
use std::time::Duration;

use super::run_serve::{LocalServer, bind_address};
use crate::config::Config;
use crate::pipeline::local::{self, LocalOptions, LocalSource};
use crate::pipeline::pacing::Speed;
use crate::pipeline::predict::{local_model, local_predictor_for};
use crate::pipeline::replay::ReplayOptions;
use crate::pipeline::shutdown;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings to replay (NDJSON frames or flat tick CSV, plain or gzip), merged by exchange
    /// time. Default: the bundled hour of BTC-USD, ETH-USD and SOL-USD.
    #[arg(long = "input", value_name = "FILE", num_args = 1.., conflicts_with = "live")]
    pub inputs: Vec<PathBuf>,
    /// `max` or a multiple of the original pace (`1`, `10`).
    #[arg(long, value_name = "SPEED", default_value = "max")]
    pub speed: Speed,
    /// Longest pause between two replayed ticks, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub max_sleep: f64,
    /// Use the live Coinbase feed (`feed` in the config) instead of a recording; Ctrl-C stops.
    #[arg(long)]
    pub live: bool,
    /// Seconds between two summary lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub summary_interval: f64,
    /// Also serve the prediction API and the live page (`/`); after a finite replay, keep
    /// serving until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Address of the API with `--serve`, `host:port` (default: `api.bind` when configured,
    /// else 127.0.0.1:8000).
    #[arg(long, value_name = "ADDR", requires = "serve")]
    pub bind: Option<String>,
    /// Port of the API with `--serve`, on the host of `--bind`'s default (127.0.0.1 unless
    /// `api.bind` is configured).
    #[arg(long, value_name = "PORT", requires = "serve", conflicts_with = "bind")]
    pub port: Option<u16>,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    crate::features::check_config(&config.features).map_err(anyhow::Error::msg)?;
    if !(args.max_sleep.is_finite() && args.max_sleep >= 0.0) {
        anyhow::bail!("--max-sleep must be a non-negative number of seconds, got {}", args.max_sleep);
    }
    if !(args.summary_interval.is_finite() && args.summary_interval > 0.0) {
        anyhow::bail!("--summary-interval must be a positive number of seconds, got {}", args.summary_interval);
    }
    let source = if args.live {
        LocalSource::Live
    } else {
        LocalSource::Replay(ReplayOptions {
            inputs: args.inputs,
            speed: args.speed,
            max_sleep: Duration::from_secs_f64(args.max_sleep),
            repeat: false,
        })
    };
    let mut options = LocalOptions::new(source);
    options.summary_interval = Duration::from_secs_f64(args.summary_interval);
    options.predict_batch = config.model.max_batch.max(1);
    let model = match local_model(&config).await {
        // `model.require_ml`: no run without the ML model.
        Err(reason) if config.model.require_ml => anyhow::bail!(reason),
        model => model.inspect_err(|reason| tracing::warn!("predictions disabled: {reason}")),
    };
    options.predictor = model.clone().ok().and_then(local_predictor_for);
    options.model = model.clone().ok();

    let shutdown = shutdown::on_signal();
    let server = if args.serve {
        let bind = bind_address(args.bind.as_deref(), args.port, &config.api);
        let server = LocalServer::start(&bind, &config, model, shutdown.clone()).await?;
        println!("live page: http://{}/", server.addr);
        options.feed = Some(server.feed());
        Some(server)
    } else {
        None
    };
    local::run(&config, options, shutdown.clone(), std::io::stdout()).await?;
    if let Some(server) = server {
        if !shutdown.is_cancelled() {
            println!("input finished; still serving http://{}/ until Ctrl-C", server.addr);
        }
        server.wait().await?;
    }
    Ok(())
}
