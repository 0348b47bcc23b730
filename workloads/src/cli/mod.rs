//! The `spikewatch` command line: one subcommand per workload.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::Config;
use crate::telemetry::logging::LogFormat;

pub mod drift;
pub mod env;
pub mod errors;
pub mod features;
pub mod featurize;
pub mod healthcheck;
pub mod ingest;
pub mod predict;
pub mod replay;
pub mod run;
mod run_serve;
pub mod serve;

/// `--version`: the version, the commit and the build date.
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| spikewatch_types::build_info::long_version(crate::VERSION));

#[derive(Debug, Parser)]
#[command(
    name = "spikewatch",
    version = crate::VERSION,
    long_version = LONG_VERSION.as_str(),
    about = "Real-time volatility spike detection for crypto markets"
)]
pub struct Cli {
    /// YAML config file (docs/configuration.md). Environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "SPIKEWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: `text` or `json` (one object per line). Default: text on a terminal, JSON
    /// otherwise.
    #[arg(long, global = true, value_name = "FORMAT", env = "SPIKEWATCH_LOG_FORMAT", value_enum, ignore_case = true)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream Coinbase tickers into `ticks.raw`.
    Ingest(ingest::Args),
    /// Replay recordings (NDJSON or tick CSV, plain or gzip) into `ticks.raw`.
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
    /// Print a shell completion script (e.g. `spikewatch completions bash > /etc/bash_completion.d/spikewatch`).
    Completions(env::CompletionsArgs),
    /// Print the manual page (roff; e.g. `spikewatch man > spikewatch.1 && man ./spikewatch.1`).
    Man,
}

impl Command {
    /// Whether the subcommand talks to Kafka (and so needs `kafka.bootstrap_servers`).
    fn uses_kafka(&self, config: &Config) -> bool {
        match self {
            Command::Ingest(_) | Command::Replay(_) | Command::Featurize(_) | Command::Predict(_) => true,
            Command::Serve(_) => config.api.predictions_from_kafka,
            Command::Features(_)
            | Command::Drift(_)
            | Command::Healthcheck(_)
            | Command::Run(_)
            | Command::Completions(_)
            | Command::Man => false,
        }
    }
}

impl Cli {
    /// The command line, with the values of the deprecated environment variables `CONFIG_PATH`
    /// and `LOG_FORMAT` when neither the flag nor its `SPIKEWATCH_` variable is set.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        let mut cli = Cli::try_parse()?;
        let lookup = |name: &str| std::env::var(name).ok();
        if cli.config.is_none() {
            cli.config = env::deprecated("SPIKEWATCH_CONFIG", lookup).map(PathBuf::from);
        }
        if cli.log_format.is_none()
            && let Some(value) = env::deprecated("SPIKEWATCH_LOG_FORMAT", lookup)
        {
            let format = <LogFormat as clap::ValueEnum>::from_str(&value, true).map_err(|_| {
                Cli::command().error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("invalid value {value:?} for LOG_FORMAT (text or json)"),
                )
            })?;
            cli.log_format = Some(format);
        }
        Ok(cli)
    }

    pub async fn run(self) -> anyhow::Result<()> {
        match &self.command {
            Command::Completions(args) => return args.print(&mut Cli::command(), "spikewatch"),
            Command::Man => return env::print_man(Cli::command()),
            _ => {}
        }
        env::warn_deprecated(|name| std::env::var(name).ok());
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
            Command::Completions(_) | Command::Man => Ok(()),
        }
    }
}
