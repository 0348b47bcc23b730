//! `spikewatch features`: recordings → the offline training table (Parquet or CSV).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, FeaturesConfig};
use crate::domain::Tick;
use crate::features::offline::{TrainingTable, build_table};
use crate::features::{EngineStats, check_config};
use crate::sinks::table::{self, TableFormat};
use crate::sources::recording::{self, RecordingStats};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings (NDJSON in the Exchange, Advanced Trade or mirror layout, or flat tick CSV;
    /// plain or gzip), processed in the order given, each in file order, exactly as a replay
    /// would publish them.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// The table to write: `.parquet` or `.csv`.
    #[arg(long)]
    pub output: PathBuf,
    /// Overrides `features.max_gap_secs`: a silence longer than this resets a product's windows.
    #[arg(long)]
    pub max_gap_secs: Option<f64>,
    /// Overrides `features.out_of_order_tolerance_ms`.
    #[arg(long)]
    pub out_of_order_tolerance_ms: Option<u64>,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let features = effective_config(&args, config.features);
    check_config(&features).map_err(anyhow::Error::msg)?;
    // Fail before the work when the output name is wrong.
    TableFormat::from_path(&args.output)?;
    tokio::task::spawn_blocking(move || build(&args.input, &args.output, &features)).await?
}

fn effective_config(args: &Args, mut features: FeaturesConfig) -> FeaturesConfig {
    if let Some(secs) = args.max_gap_secs {
        features.max_gap_secs = secs;
    }
    if let Some(ms) = args.out_of_order_tolerance_ms {
        features.out_of_order_tolerance_ms = ms;
    }
    features
}

fn build(inputs: &[PathBuf], output: &Path, config: &FeaturesConfig) -> anyhow::Result<()> {
    let mut ticks = Vec::new();
    for path in inputs {
        let stats = read_recording(path, &mut ticks)?;
        tracing::info!(
            path = %path.display(),
            ticks = stats.ticks,
            skipped = stats.skipped_total(),
            malformed = stats.errors_total(),
            "read recording"
        );
        if stats.errors_total() > 0 {
            tracing::warn!(path = %path.display(), errors = ?stats.errors, "malformed lines skipped");
        }
    }
    let TrainingTable { rows, stats } = build_table(&ticks, config);
    table::write(output, &rows).with_context(|| format!("writing {}", output.display()))?;
    let complete = rows.iter().filter(|r| r.future_window_complete).count();
    println!("{}", summary(ticks.len(), rows.len(), complete, &stats, output));
    if stats.out_of_order > 0 {
        tracing::warn!(
            dropped = stats.out_of_order,
            "ticks older than the out-of-order tolerance were dropped: give the inputs in chronological order"
        );
    }
    Ok(())
}

/// Appends the ticks of one recording; malformed lines are counted by the reader and skipped.
pub(crate) fn read_recording(path: &Path, ticks: &mut Vec<Tick>) -> anyhow::Result<RecordingStats> {
    let mut reader = recording::open(path).with_context(|| format!("opening {}", path.display()))?;
    for item in &mut reader {
        match item {
            Ok(tick) => ticks.push(tick),
            Err(recording::RecordingError::Io(err)) => {
                return Err(err).with_context(|| format!("reading {}", path.display()));
            }
            Err(err) => tracing::debug!(path = %path.display(), "{err}"),
        }
    }
    let stats = reader.stats().clone();
    if stats.ticks == 0 {
        anyhow::bail!(
            "{}: no tick in {} lines ({} malformed): {}",
            path.display(),
            stats.lines,
            stats.errors_total(),
            recording::LAYOUTS
        );
    }
    Ok(stats)
}

fn summary(ticks: usize, rows: usize, complete: usize, stats: &EngineStats, output: &Path) -> String {
    format!(
        "{rows} rows ({complete} with a complete future window) from {ticks} ticks → {}\n\
         rejected: {} duplicate, {} out of order, {} invalid; {} late ticks applied at the latest time; \
         {} window resets after gaps",
        output.display(),
        stats.duplicates,
        stats.out_of_order,
        stats.invalid,
        stats.late_accepted,
        stats.resets,
    )
}
