//! The `spikewatch` command line: one subcommand per workload.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

pub mod drift;
pub mod features;
pub mod featurize;
pub mod healthcheck;
pub mod ingest;
pub mod predict;
pub mod replay;
pub mod run;
mod run_serve;
pub mod serve;

#[derive(Debug, Parser)]
#[command(name = "spikewatch", version = crate::VERSION, about = "Real-time volatility spike detection for crypto markets")]
pub struct Cli {
    /// YAML config file (docs/configuration.md). Environment variables override it.
    #[arg(long, global = true, env = "CONFIG_PATH")]
    pub config: Option<PathBuf>,
    /// Log format: `text` or `json` (one object per line). Default: text on a terminal, JSON
    /// otherwise.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, ignore_case = true)]
    pub log_format: Option<crate::telemetry::logging::LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream Coinbase tickers into `ticks.raw`.
    Ingest(ingest::Args),
    /// Replay recorded NDJSON into `ticks.raw`.
    Replay(replay::Args),
    /// Consume `ticks.raw`, publish feature vectors to `ticks.features`.
    Featurize(featurize::Args),
    /// Compute the offline feature table (training input) from recordings.
    Features(features::Args),
    /// Measure how far recordings' features are from a model's training rows (PSI per feature).
    Drift(drift::Args),
    /// Consume `ticks.features`, publish predictions to `ticks.predictions`.
    Predict(predict::Args),
    /// Serve the prediction API (port 8000).
    Serve(serve::Args),
    /// Exit 0 when a URL (a workload's /health) answers 2xx: the container health check.
    Healthcheck(healthcheck::Args),
    /// Replay → features → predictions in one process, no Kafka: the local one-command run
    /// (`--serve`: with the API and the live page).
    Run(run::Args),
}

impl Command {
    /// Whether the subcommand talks to Kafka (and so needs `kafka.bootstrap_servers`).
    fn uses_kafka(&self, config: &Config) -> bool {
        match self {
            Command::Ingest(_) | Command::Replay(_) | Command::Featurize(_) | Command::Predict(_) => true,
            Command::Serve(_) => config.api.predictions_from_kafka,
            Command::Features(_) | Command::Drift(_) | Command::Healthcheck(_) | Command::Run(_) => false,
        }
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        // Both TLS users (WebSocket feed, model downloads) share the ring provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (config, unknown_keys) = Config::load_reporting_unknown(self.config.as_deref())?;
        crate::telemetry::config_keys::report(&unknown_keys);
        if !matches!(self.command, Command::Healthcheck(_)) {
            config.validate()?;
        }
        if self.command.uses_kafka(&config) {
            config.kafka.check_bootstrap_servers()?;
        }
        match self.command {
            Command::Ingest(args) => ingest::run(args, config).await,
            Command::Replay(args) => replay::run(args, config).await,
            Command::Featurize(args) => featurize::run(args, config).await,
            Command::Features(args) => features::run(args, config).await,
            Command::Drift(args) => drift::run(args, config).await,
            Command::Predict(args) => predict::run(args, config).await,
            Command::Serve(args) => serve::run(args, config).await,
            Command::Run(args) => run::run(args, config).await,
            Command::Healthcheck(args) => healthcheck::run(args).await,
        }
    }
}
