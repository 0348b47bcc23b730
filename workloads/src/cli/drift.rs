//! `spikewatch drift`: how far recordings' features are from the ones a model was trained on,
//! per feature (PSI against the model's `reference.json`), as a table on stdout and optionally
//! an HTML report; `--fail-above` turns it into a gate for a pipeline promoting a model.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;
use crate::features::check_config;
use crate::features::offline::{Rows, build_table};
use crate::model::{ArtifactSource, Reference};
use crate::quality::DriftMonitor;
use crate::quality::report::DriftReport;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings to measure (the layouts `spikewatch features` reads), in order.
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// The model whose training rows are the reference: a path, https:// URL or models:/ URI
    /// (default: `model.source`). Only its `reference.json` is read.
    #[arg(long, value_name = "SOURCE")]
    pub model: Option<String>,
    /// Also write the report as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Exit with status 3 when any feature's PSI is above this value.
    #[arg(long, value_name = "PSI")]
    pub fail_above: Option<f64>,
    /// Exit with status 3 when any feature the model uses is further from the training rows than
    /// any training day was (its PSI above the model's `psi_limit`).
    #[arg(long)]
    pub fail_beyond_training: bool,
}

/// `--fail-above` exceeded: the command exits with status 3 (1 is any other error, 2 a usage error).
#[derive(Debug, thiserror::Error)]
#[error("PSI above {limit} for {}", features.join(", "))]
pub struct DriftAboveLimit {
    /// The limit: `--fail-above`'s value, or "the training days' drift".
    pub limit: String,
    pub features: Vec<&'static str>,
}

impl DriftAboveLimit {
    pub const EXIT_STATUS: u8 = 3;
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    check_config(&config.features).map_err(anyhow::Error::msg)?;
    if let Some(limit) = args.fail_above
        && !(limit.is_finite() && limit >= 0.0)
    {
        anyhow::bail!("--fail-above must be a non-negative number, got {limit}");
    }
    if let Some(path) = &args.report {
        super::errors::check_output("--report", path)?;
    }
    let source = args.model.clone().unwrap_or_else(|| config.model.source.clone());
    let fetched = ArtifactSource::parse(&source, config.model.mlflow_tracking_uri.as_deref())?.fetch(&[]).await?;
    let path = fetched.reference.clone().with_context(|| {
        format!("{}: no reference.json (models trained before feature set v2 have none)", fetched.source_uri)
    })?;
    let reference = Reference::load(&path)?;
    let features = config.features.clone();
    let inputs = args.input.clone();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<DriftReport> {
        let mut ticks = Vec::new();
        for input in &inputs {
            super::features::read_recording(input, &mut ticks)?;
        }
        // The rows the training reference was built from: one per evaluated second.
        let table = build_table(&ticks, &features, Rows::PerSecond);
        if table.rows.is_empty() {
            anyhow::bail!("no evaluated second in the input (a second needs a minute of ticks on either side)");
        }
        let mut monitor = DriftMonitor::new(&reference, 0);
        for row in &table.rows {
            monitor.observe(&row.features);
        }
        Ok(DriftReport::new(&reference.model_version, &monitor))
    })
    .await??;
    print!("{}", report.text());
    if let Some(path) = &args.report {
        std::fs::write(path, report.html()).with_context(|| format!("writing {}", path.display()))?;
        println!("report → {}", path.display());
    }
    if let Some(limit) = args.fail_above {
        let features: Vec<&'static str> = report.above(limit).iter().map(|f| f.name).collect();
        if !features.is_empty() {
            return Err(DriftAboveLimit { limit: limit.to_string(), features }.into());
        }
    }
    if args.fail_beyond_training {
        let features: Vec<&'static str> = report.beyond_training().iter().map(|f| f.name).collect();
        if !features.is_empty() {
            return Err(DriftAboveLimit { limit: "the training days' drift".into(), features }.into());
        }
    }
    Ok(())
}
