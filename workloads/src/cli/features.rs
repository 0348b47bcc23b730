//! `spikewatch features`: recordings → the offline training table (Parquet or CSV): one labelled
//! row per evaluated second, or (`--every-tick`) every tick's feature vector. `--describe` prints
//! the feature set itself (the training pipeline and docs/features.md are checked against it).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, FeaturesConfig};
use crate::domain::Tick;
use crate::features::offline::{Rows, TrainingTable, build_table};
use crate::features::{EngineStats, check_config};
use crate::sinks::table::{self, TableFormat};
use crate::sources::coinbase::FrameParser;
use crate::sources::merge::MergedTicks;
use crate::sources::recording::{self, RecordingStats};
use crate::sources::recording_blocks::{self, BlockOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recordings (NDJSON in the Exchange, Advanced Trade or mirror layout, or flat tick CSV;
    /// plain or gzip), several merged by exchange time, each in file order, exactly as a replay
    /// publishes them.
    #[arg(long, value_name = "FILE", required_unless_present = "describe", num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// The table to write: `.parquet` or `.csv`.
    #[arg(long, value_name = "FILE", required_unless_present = "describe")]
    pub output: Option<PathBuf>,
    /// Every accepted tick's feature vector, unlabelled (what `featurize` publishes), instead of
    /// one labelled row per evaluated second.
    #[arg(long)]
    pub every_tick: bool,
    /// Print the feature set (name, unit, range, imputation, formula) and exit.
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with_all = ["input", "output"])]
    pub describe: Option<crate::features::describe::Format>,
    /// Overrides `features.max_gap_secs`: a silence longer than this resets a product's windows.
    #[arg(long, value_name = "SECONDS")]
    pub max_gap_secs: Option<f64>,
    /// Overrides `features.out_of_order_tolerance_ms`.
    #[arg(long, value_name = "MILLISECONDS")]
    pub out_of_order_tolerance_ms: Option<u64>,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    if let Some(format) = args.describe {
        print!("{}", crate::features::describe::render(format));
        return Ok(());
    }
    let features = effective_config(&args, config.features);
    check_config(&features).map_err(anyhow::Error::msg)?;
    let output = args.output.clone().ok_or_else(|| anyhow::anyhow!("--output is required"))?;
    // Fail before the work when the output name is wrong or cannot be written.
    TableFormat::from_path(&output)?;
    super::errors::check_output("--output", &output)?;
    let rows = if args.every_tick { Rows::EveryTick } else { Rows::PerSecond };
    tokio::task::spawn_blocking(move || build(&args.input, &output, &features, rows)).await?
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

fn build(inputs: &[PathBuf], output: &Path, config: &FeaturesConfig, kind: Rows) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Reading and parsing (block-parallel, on other threads) overlaps with the feature engine
    // (this thread): the ticks go over in chunks, in file order, as a single-threaded loop
    // would see them.
    let (sender, chunks) = std::sync::mpsc::sync_channel::<Vec<Tick>>(16);
    let (read, table) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_all(inputs, sender));
        let mut count = 0usize;
        let table = build_table(chunks.iter().inspect(|chunk| count += chunk.len()).flatten(), config, kind);
        let read = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read.map(|()| count), table)
    });
    let ticks = read?;
    let TrainingTable { rows, stats } = table;
    if rows.is_empty() {
        anyhow::bail!(
            "no feature row from {ticks} ticks (rejected: {} duplicate, {} out of order, {} invalid); nothing written",
            stats.duplicates,
            stats.out_of_order,
            stats.invalid
        );
    }
    let built = started.elapsed();
    table::write(output, &rows, kind)?;
    tracing::info!(
        ticks,
        read_and_features_seconds = built.as_secs_f64(),
        write_seconds = (started.elapsed() - built).as_secs_f64(),
        "table written"
    );
    println!("{}", summary(ticks, rows.len(), kind, &stats, output));
    if stats.out_of_order > 0 {
        tracing::warn!(
            dropped = stats.out_of_order,
            "ticks older than the out-of-order tolerance were dropped: give the inputs in chronological order"
        );
    }
    Ok(())
}

/// Ticks sent at a time when several inputs are merged.
const MERGED_CHUNK: usize = 8192;

/// Reads the inputs and sends their ticks in chunks; stops at the first input that cannot be
/// read (or when the receiver is gone). One input streams in file order (parsed
/// block-parallel); several stream merged by exchange time, as `replay` plays them
/// (`crate::sources::merge`; line by line, one pending tick per input).
fn read_all(inputs: &[PathBuf], sender: std::sync::mpsc::SyncSender<Vec<Tick>>) -> anyhow::Result<()> {
    if let [path] = inputs {
        return read_one(path, |ticks| {
            // A closed channel means the engine side is gone; reading on is pointless but harmless.
            let _ = sender.send(ticks);
        });
    }
    let readers = inputs
        .iter()
        .map(|path| recording::open(path).with_context(|| format!("opening {}", path.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut merged = MergedTicks::new(readers);
    let mut chunk = Vec::with_capacity(MERGED_CHUNK);
    for (input, item) in merged.by_ref() {
        match item {
            Ok(tick) => chunk.push(tick),
            Err(err) => tracing::debug!(path = %inputs[input].display(), "{err}"),
        }
        if chunk.len() == MERGED_CHUNK
            && sender.send(std::mem::replace(&mut chunk, Vec::with_capacity(MERGED_CHUNK))).is_err()
        {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        let _ = sender.send(chunk);
    }
    for (path, reader) in inputs.iter().zip(merged.inputs()) {
        let stats = reader.stats();
        log_recording(path, stats);
        if stats.ticks == 0 {
            anyhow::bail!("{}", stats.no_tick_message(&path.display().to_string()));
        }
    }
    Ok(())
}

/// Reads one input, handing its ticks to `sink` in chunks, and logs what it held.
fn read_one(path: &Path, sink: impl FnMut(Vec<Tick>)) -> anyhow::Result<()> {
    let stats = read_recording_with(path, sink)?;
    log_recording(path, &stats);
    Ok(())
}

fn log_recording(path: &Path, stats: &RecordingStats) {
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

/// Appends the ticks of one recording; malformed lines are counted by the reader and skipped.
pub(crate) fn read_recording(path: &Path, ticks: &mut Vec<Tick>) -> anyhow::Result<RecordingStats> {
    read_recording_with(path, |chunk| ticks.extend(chunk))
}

/// Hands the ticks of one recording to `sink` in chunks, in file order (parsed block-parallel);
/// malformed lines are counted by the reader and skipped. Errors when the file cannot be read
/// or holds no tick.
fn read_recording_with(path: &Path, mut sink: impl FnMut(Vec<Tick>)) -> anyhow::Result<RecordingStats> {
    let input = recording::open_input(path).with_context(|| format!("opening {}", path.display()))?;
    let stats = recording_blocks::read_blocks(input, FrameParser::default(), BlockOptions::default(), |block| {
        for err in &block.errors {
            tracing::debug!(path = %path.display(), "{err}");
        }
        if !block.ticks.is_empty() {
            sink(block.ticks);
        }
    })
    .with_context(|| format!("reading {}", path.display()))?;
    if stats.ticks == 0 {
        anyhow::bail!("{}", stats.no_tick_message(&path.display().to_string()));
    }
    Ok(stats)
}

fn summary(ticks: usize, rows: usize, kind: Rows, stats: &EngineStats, output: &Path) -> String {
    let what = match kind {
        Rows::PerSecond => "labelled rows (one per evaluated second)",
        Rows::EveryTick => "rows (one per accepted tick)",
    };
    format!(
        "{rows} {what} from {ticks} ticks → {}\n\
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
