//! `spikewatch replay`: recorded NDJSON → Ticks at the original pace × speed.
//!
//! [`replay`] feeds a [`LinkSender<Tick>`]; the Kafka workload forwards that link to `ticks.raw`
//! ([`run_kafka`]) and `spikewatch run` hands it to the feature stage directly.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

use super::pacing::{Pacer, Speed};
use super::publish::publish_ticks;
use crate::config::Config;
use crate::domain::Tick;
use crate::sources::recording::{self, RecordingReader, RecordingStats};
use crate::telemetry::server::Health;
use crate::transport::kafka::{JsonPublisher, PublishTotals, create_producer, ensure_topics};
use crate::transport::memory::{self, LinkSender};

/// What to replay and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// Recordings, replayed one after the other; empty = the bundled Exchange recording.
    pub inputs: Vec<PathBuf>,
    pub speed: Speed,
    /// Longest pause between two ticks (holes in a recording are compressed to this).
    pub max_sleep: Duration,
    /// Start over at the end of the inputs, until shutdown. Each pass is shifted in exchange
    /// time to just after the previous one, so event time keeps moving forward and the feature
    /// engine accepts the repeated ticks instead of rejecting them as late.
    pub repeat: bool,
}

/// Exchange-time pause between the last tick of a pass and the first of the next one.
pub const PASS_GAP: Duration = Duration::from_secs(1);

/// What a replay read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayTotals {
    /// Ticks handed to the sink.
    pub ticks: u64,
    /// Well-formed frames without tickers (subscription acks, heartbeats).
    pub skipped_frames: u64,
    /// Lines that could not be parsed.
    pub malformed_lines: u64,
    /// Shutdown (or a closed sink) ended the replay before the end of the inputs.
    pub stopped_early: bool,
    /// Passes over the inputs completed (more than one only with [`ReplayOptions::repeat`]).
    pub passes: u64,
}

/// `spikewatch_replay_*` metrics.
#[derive(Clone)]
pub struct ReplayMetrics {
    pub ticks_read: IntCounter,
    pub ticks_published: IntCounter,
    pub frames_skipped: IntCounterVec,
    pub malformed_lines: IntCounterVec,
    pub passes: IntCounter,
}

impl ReplayMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<ReplayMetrics> {
        let metrics = ReplayMetrics {
            ticks_read: IntCounter::new("spikewatch_replay_ticks_read_total", "Ticks read from recordings")?,
            ticks_published: IntCounter::new(
                "spikewatch_replay_ticks_published_total",
                "Ticks acknowledged by the broker on the raw topic",
            )?,
            frames_skipped: IntCounterVec::new(
                Opts::new(
                    "spikewatch_replay_frames_skipped_total",
                    "Well-formed frames without tickers, by frame type",
                ),
                &["frame_type"],
            )?,
            malformed_lines: IntCounterVec::new(
                Opts::new(
                    "spikewatch_replay_malformed_lines_total",
                    "Recording lines that could not be parsed, by kind",
                ),
                &["error_type"],
            )?,
            passes: IntCounter::new(
                "spikewatch_replay_passes_total",
                "Passes over the recordings completed (they repeat with --loop)",
            )?,
        };
        registry.register(Box::new(metrics.ticks_read.clone()))?;
        registry.register(Box::new(metrics.ticks_published.clone()))?;
        registry.register(Box::new(metrics.frames_skipped.clone()))?;
        registry.register(Box::new(metrics.malformed_lines.clone()))?;
        registry.register(Box::new(metrics.passes.clone()))?;
        Ok(metrics)
    }
}

/// Sends the ticks of every input to `out`, paced by `options`, until the inputs end (or, with
/// [`ReplayOptions::repeat`], forever), `shutdown` is cancelled or the receiver is gone.
/// Replayed ticks are stamped with the current time as their receive time: this process is what
/// receives them, and consumer lag is measured from it (features only ever use exchange time).
pub async fn replay(
    options: &ReplayOptions,
    out: LinkSender<Tick>,
    shutdown: CancellationToken,
    metrics: Option<&ReplayMetrics>,
) -> anyhow::Result<ReplayTotals> {
    let mut run = Run {
        pacer: Pacer::new(options.speed, options.max_sleep),
        start: tokio::time::Instant::now(),
        out,
        shutdown,
        metrics,
        totals: ReplayTotals::default(),
        shift: TimeDelta::zero(),
        span: None,
    };
    loop {
        run.pass(options).await?;
        if run.totals.stopped_early || !options.repeat {
            return Ok(run.totals);
        }
        run.next_pass();
    }
}

struct Run<'a> {
    pacer: Pacer,
    start: tokio::time::Instant,
    out: LinkSender<Tick>,
    shutdown: CancellationToken,
    metrics: Option<&'a ReplayMetrics>,
    totals: ReplayTotals,
    /// Added to every exchange time of the current pass.
    shift: TimeDelta,
    /// Earliest and latest exchange time of the inputs, as recorded (seen in the first pass).
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Run<'_> {
    /// One pass over every input, in order.
    async fn pass(&mut self, options: &ReplayOptions) -> anyhow::Result<()> {
        if options.inputs.is_empty() {
            self.input("embedded recording", recording::embedded()).await;
        } else {
            for path in &options.inputs {
                let reader =
                    recording::open(path).with_context(|| format!("cannot open recording {}", path.display()))?;
                let stats = self.input(&path.display().to_string(), reader).await;
                if self.totals.stopped_early {
                    return Ok(());
                }
                if stats.ticks == 0 {
                    anyhow::bail!("{}", stats.no_tick_message(&path.display().to_string()));
                }
            }
        }
        if !self.totals.stopped_early {
            self.totals.passes += 1;
            if let Some(m) = self.metrics {
                m.passes.inc();
            }
        }
        Ok(())
    }

    /// Shifts the next pass to start [`PASS_GAP`] after the latest exchange time of this one.
    fn next_pass(&mut self) {
        if let Some((first, last)) = self.span {
            let gap = TimeDelta::from_std(PASS_GAP).unwrap_or(TimeDelta::seconds(1));
            self.shift += (last - first) + gap;
        }
        tracing::info!(pass = self.totals.passes + 1, shift_s = self.shift.num_seconds(), "replaying the inputs again");
    }

    /// Replays one recording; returns what its reader saw.
    async fn input<R: BufRead>(&mut self, name: &str, mut reader: RecordingReader<R>) -> RecordingStats {
        tracing::info!(input = name, "replaying");
        for item in reader.by_ref() {
            let mut tick = match item {
                Ok(tick) => tick,
                Err(err) => {
                    self.totals.malformed_lines += 1;
                    if let Some(m) = self.metrics {
                        m.malformed_lines.with_label_values(&[err.kind()]).inc();
                    }
                    tracing::warn!(input = name, %err, "skipping a malformed line");
                    continue;
                }
            };
            let recorded = tick.exchange_time;
            self.span = Some(match self.span {
                None => (recorded, recorded),
                Some((first, last)) => (first.min(recorded), last.max(recorded)),
            });
            tick.exchange_time = recorded + self.shift;
            if !self.wait_until_due(&tick).await {
                self.totals.stopped_early = true;
                break;
            }
            tick.receive_time = Utc::now();
            let sent = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => false,
                sent = self.out.send(tick) => sent.is_ok(),
            };
            if !sent {
                self.totals.stopped_early = true;
                break;
            }
            self.totals.ticks += 1;
            if let Some(m) = self.metrics {
                m.ticks_read.inc();
            }
        }
        let stats = reader.stats();
        self.totals.skipped_frames += stats.skipped_total();
        if let Some(m) = self.metrics {
            for (frame_type, count) in &stats.skipped {
                m.frames_skipped.with_label_values(&[frame_type]).inc_by(*count);
            }
        }
        tracing::info!(
            input = name,
            ticks = stats.ticks,
            skipped = stats.skipped_total(),
            malformed = stats.errors_total(),
            "input done"
        );
        stats.clone()
    }

    /// Sleeps until the tick is due; false when shutdown came first.
    async fn wait_until_due(&mut self, tick: &Tick) -> bool {
        match self.pacer.due(tick.exchange_time) {
            None => !self.shutdown.is_cancelled(),
            Some(due) => tokio::select! {
                biased;
                () = self.shutdown.cancelled() => false,
                () = tokio::time::sleep_until(self.start + due) => true,
            },
        }
    }
}

/// `spikewatch replay`: creates the raw topic when missing, replays into it, waits for every
/// acknowledgement. `ready` turns true once the first tick is handed to the producer.
pub async fn run_kafka(
    config: &Config,
    options: &ReplayOptions,
    metrics: &ReplayMetrics,
    ready: &Health,
    shutdown: CancellationToken,
) -> anyhow::Result<(ReplayTotals, PublishTotals)> {
    let kafka = &config.kafka;
    if kafka.create_topics {
        ensure_topics(kafka, &[&kafka.topics.raw]).await?;
    }
    let publisher = JsonPublisher::new(create_producer(kafka)?, kafka.topics.raw.clone())
        .with_acknowledged_counter(metrics.ticks_published.clone());
    let (tx, rx) = memory::link(memory::DEFAULT_CAPACITY);
    let publishing = tokio::spawn(publish_ticks(rx, publisher, Some(ready.clone())));
    let replayed = replay(options, tx, shutdown, Some(metrics)).await;
    // The link closed when `replay` returned; the publisher drains it and waits for the acks.
    let published = publishing.await.context("the publishing task failed")??;
    Ok((replayed?, published))
}
