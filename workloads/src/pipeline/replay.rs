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
use crate::metric_names::replay as names;
use crate::sources::merge::MergedTicks;
use crate::sources::recording::{self, RecordingReader, RecordingStats};
use crate::telemetry::server::Health;
use crate::transport::kafka::{JsonPublisher, PublishTotals, create_producer, ensure_topics, latest_event_time};
use crate::transport::memory::{self, LinkSender};

/// What to replay and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// Recordings, replayed together merged by exchange time (several products' files of the
    /// same hours play as one market); empty = the bundled recording.
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
            ticks_read: IntCounter::new(names::TICKS_READ, "Ticks read from recordings")?,
            ticks_published: IntCounter::new(
                names::TICKS_PUBLISHED,
                "Ticks acknowledged by the broker on the raw topic",
            )?,
            frames_skipped: IntCounterVec::new(
                Opts::new(names::FRAMES_SKIPPED, "Well-formed frames without tickers, by frame type"),
                &["frame_type"],
            )?,
            malformed_lines: IntCounterVec::new(
                Opts::new(names::MALFORMED_LINES, "Recording lines that could not be parsed, by kind"),
                &["error_type"],
            )?,
            passes: IntCounter::new(names::PASSES, "Passes over the recordings completed (they repeat with --loop)")?,
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
    replay_continuing(options, None, out, shutdown, metrics).await
}

/// [`replay`], continuing in event time after `after` (the latest exchange time a previous run
/// left on the topic): when the recording is older, every pass is shifted so that the first
/// tick comes [`PASS_GAP`] after it. A looping replay that restarts (a new pod, a config
/// change) thus never sends ticks older than those the featurizer has already seen, which it
/// would drop until the replay caught up.
pub async fn replay_continuing(
    options: &ReplayOptions,
    after: Option<DateTime<Utc>>,
    out: LinkSender<Tick>,
    shutdown: CancellationToken,
    metrics: Option<&ReplayMetrics>,
) -> anyhow::Result<ReplayTotals> {
    let mut run = Run {
        after,
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
    /// Event time the first tick must come after ([`replay_continuing`]); taken once.
    after: Option<DateTime<Utc>>,
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
    /// One pass over every input, merged by exchange time (`crate::sources::merge`).
    async fn pass(&mut self, options: &ReplayOptions) -> anyhow::Result<()> {
        if options.inputs.is_empty() {
            self.inputs(&["embedded recording".to_string()], vec![recording::embedded()]).await;
        } else {
            let names: Vec<String> = options.inputs.iter().map(|path| path.display().to_string()).collect();
            let readers = options
                .inputs
                .iter()
                .map(|path| recording::open(path).with_context(|| format!("cannot open recording {}", path.display())))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let stats = self.inputs(&names, readers).await;
            if self.totals.stopped_early {
                return Ok(());
            }
            if let Some((name, stats)) = names.iter().zip(&stats).find(|(_, stats)| stats.ticks == 0) {
                anyhow::bail!("{}", stats.no_tick_message(name));
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

    /// Replays the recordings `readers` (named `names`), merged by exchange time; returns what
    /// each reader saw.
    async fn inputs<R: BufRead>(&mut self, names: &[String], readers: Vec<RecordingReader<R>>) -> Vec<RecordingStats> {
        tracing::info!(inputs = ?names, "replaying");
        let mut merged = MergedTicks::new(readers);
        for (input, item) in merged.by_ref() {
            let mut tick = match item {
                Ok(tick) => tick,
                Err(err) => {
                    self.totals.malformed_lines += 1;
                    if let Some(m) = self.metrics {
                        m.malformed_lines.with_label_values(&[err.kind()]).inc();
                    }
                    tracing::warn!(input = names[input], %err, "skipping a malformed line");
                    continue;
                }
            };
            let recorded = tick.exchange_time;
            if let Some(after) = self.after.take() {
                self.shift = continuing_shift(recorded, after);
                tracing::info!(%after, shift_s = self.shift.num_seconds(), "continuing after the topic's latest tick");
            }
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
        let mut all = Vec::with_capacity(names.len());
        for (name, reader) in names.iter().zip(merged.inputs()) {
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
            all.push(stats.clone());
        }
        all
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

/// The shift that puts a recording whose first tick was recorded at `first` just after `after`:
/// [`PASS_GAP`] after it, or none when the recording is later already.
pub fn continuing_shift(first: DateTime<Utc>, after: DateTime<Utc>) -> TimeDelta {
    let gap = TimeDelta::from_std(PASS_GAP).unwrap_or(TimeDelta::seconds(1));
    (after + gap - first).max(TimeDelta::zero())
}

/// `spikewatch replay`: creates the raw topic when missing, replays into it, waits for every
/// acknowledgement. `ready` turns true once the first tick is handed to the producer. With
/// `--loop`, the replay continues after the latest tick on the topic (see [`replay_continuing`]).
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
    let after = match options.repeat {
        true => latest_on_topic(kafka).await?,
        false => None,
    };
    let (tx, rx) = memory::link(memory::DEFAULT_CAPACITY);
    let publishing = tokio::spawn(publish_ticks(rx, publisher, Some(ready.clone())));
    let replayed = replay_continuing(options, after, tx, shutdown, Some(metrics)).await;
    // The link closed when `replay` returned; the publisher drains it and waits for the acks.
    let published = publishing.await.context("the publishing task failed")??;
    Ok((replayed?, published))
}

/// How long reading the end of the raw topic may take at start.
const LATEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The latest exchange time on the raw topic. An unreachable broker is an error: starting the
/// loop from the recording's own time could stall the featurizer for as long as the previous
/// run had been replaying.
async fn latest_on_topic(kafka: &crate::config::KafkaConfig) -> anyhow::Result<Option<DateTime<Utc>>> {
    let (kafka, topic) = (kafka.clone(), kafka.topics.raw.clone());
    let latest = tokio::task::spawn_blocking(move || latest_event_time(&kafka, &topic, LATEST_TIMEOUT))
        .await
        .context("the task reading the raw topic failed")?
        .context("cannot read the latest tick of the raw topic")?;
    match latest {
        Some(time) => tracing::info!(latest = %time, "the raw topic's latest tick: the replay continues after it"),
        None => tracing::info!("the raw topic is empty: the replay starts at the recording's own time"),
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_recording_older_than_the_topic_is_shifted_to_just_after_it() {
        let shift = continuing_shift(at("2026-04-04T00:00:00Z"), at("2026-04-05T12:00:00Z"));
        assert_eq!(at("2026-04-04T00:00:00Z") + shift, at("2026-04-05T12:00:00Z") + TimeDelta::seconds(1));
    }

    #[test]
    fn a_recording_later_than_the_topic_is_not_moved() {
        assert_eq!(continuing_shift(at("2026-04-06T00:00:00Z"), at("2026-04-05T12:00:00Z")), TimeDelta::zero());
    }
}
