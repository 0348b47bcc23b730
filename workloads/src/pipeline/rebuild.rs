//! Rebuilding the feature windows of one `ticks.raw` partition before the featurizer emits from
//! it (after a start, or a rebalance that hands it the partition), so that its vectors are those
//! of an uninterrupted run.
//!
//! The engine's state at a tick depends only on the ticks of the preceding
//! [`FeatureEngine::warmup_horizon`] of event time. So the partition is read from the last tick
//! at or before `t − horizon − skew` (or from its start), `t` being the event time of the first
//! tick to emit, up to the offset where consumption resumes, and those ticks go through a fresh
//! engine whose vectors are dropped. The start is found by probing single records: backwards in
//! doubling steps until one is old enough, then by bisection to within [`PRECISION`] records;
//! `skew` ([`PRODUCT_SKEW`]) covers products of one partition whose ticks interleave a little out
//! of event-time order.
//!
//! This runs on the stage's thread, blocking (the stage must not emit before it is done), with
//! its own reader that never joins a group or commits.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{FeaturesConfig, KafkaConfig};
use crate::domain::Tick;
use crate::features::FeatureEngine;
use crate::transport::kafka::reader_config;

/// Margin added to the warm-up horizon for products of one partition whose ticks are not in
/// event-time order with each other (a live feed delivers them within well under a second).
pub const PRODUCT_SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// First backward step of the search for the rebuild's start, in records; it doubles.
const FIRST_STEP: i64 = 1024;

/// The bisection stops when the start is known to within this many records (read for nothing).
const PRECISION: i64 = 256;

/// Longest wait for the next record while reading; a broker that sends nothing for this long
/// fails the rebuild (and the stage, which is restarted and tries again).
const STALL_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("cannot rebuild the windows of {topic}[{partition}]: {during}: {source}")]
    Kafka { topic: String, partition: i32, during: &'static str, source: KafkaError },
    #[error("cannot rebuild the windows of {topic}[{partition}]: no record at or after offset {offset} within {}s", STALL_LIMIT.as_secs())]
    Stalled { topic: String, partition: i32, offset: i64 },
}

/// What a rebuild did.
#[derive(Debug)]
pub struct Rebuilt {
    pub engine: FeatureEngine,
    /// First offset read.
    pub from_offset: i64,
    /// Offset where consumption resumes (not read).
    pub resume_offset: i64,
    /// Ticks folded into the engine.
    pub ticks: u64,
    /// The rebuild started at the partition's first record (it holds less than the horizon).
    pub from_partition_start: bool,
    pub elapsed: Duration,
}

/// Where a rebuild must start, given the partition's first offset `low`, the `resume` offset and
/// the event time `target` the first rebuilt tick must be at or before. `time_at(o)` is the event
/// time of the first tick at or after offset `o` (before `resume`), `None` when there is none.
pub fn find_rebuild_start<E>(
    low: i64,
    resume: i64,
    target: DateTime<Utc>,
    mut time_at: impl FnMut(i64) -> Result<Option<DateTime<Utc>>, E>,
) -> Result<i64, E> {
    let mut old_enough = |offset| time_at(offset).map(|time| time.is_some_and(|time| time <= target));
    // `late`: an offset known to start after the target (the resume offset itself: nothing
    // after it counts).
    let mut late = resume;
    let mut step = FIRST_STEP;
    let mut early = loop {
        let offset = resume.saturating_sub(step).max(low);
        if offset >= late {
            return Ok(late.max(low));
        }
        if old_enough(offset)? {
            break offset;
        }
        if offset <= low {
            return Ok(low);
        }
        late = offset;
        step = step.saturating_mul(2);
    };
    while late - early > PRECISION {
        let middle = early + (late - early) / 2;
        if old_enough(middle)? {
            early = middle;
        } else {
            late = middle;
        }
    }
    Ok(early)
}

/// Rebuilds the windows of `topic[partition]` for resuming at `resume` with a first tick at
/// `first_time`.
pub fn rebuild_partition(
    kafka: &KafkaConfig,
    features: &FeaturesConfig,
    topic: &str,
    partition: i32,
    resume: i64,
    first_time: DateTime<Utc>,
) -> Result<Rebuilt, RebuildError> {
    let started = Instant::now();
    let reader = PartitionReader::new(kafka, topic, partition)?;
    let (low, _high) = reader.watermarks()?;
    let mut engine = FeatureEngine::new(features);
    let target = first_time - FeatureEngine::warmup_horizon(features) - PRODUCT_SKEW;
    let start = find_rebuild_start(low, resume, target, |offset| reader.first_tick_time(offset, resume))?;
    let mut ticks = 0;
    if start < resume {
        reader.read(start, resume, |tick| {
            let _ = engine.update(&tick);
            ticks += 1;
        })?;
    }
    Ok(Rebuilt {
        engine,
        from_offset: start,
        resume_offset: resume,
        ticks,
        from_partition_start: start <= low,
        elapsed: started.elapsed(),
    })
}

/// A reader of one partition, outside any consumer group.
struct PartitionReader {
    consumer: BaseConsumer,
    topic: String,
    partition: i32,
}

impl PartitionReader {
    fn new(kafka: &KafkaConfig, topic: &str, partition: i32) -> Result<PartitionReader, RebuildError> {
        let reader =
            |source| RebuildError::Kafka { topic: topic.to_string(), partition, during: "creating the reader", source };
        let consumer: BaseConsumer = reader_config(kafka).create().map_err(reader)?;
        Ok(PartitionReader { consumer, topic: topic.to_string(), partition })
    }

    fn kafka_error(&self, during: &'static str) -> impl FnOnce(KafkaError) -> RebuildError + '_ {
        move |source| RebuildError::Kafka { topic: self.topic.clone(), partition: self.partition, during, source }
    }

    fn watermarks(&self) -> Result<(i64, i64), RebuildError> {
        self.consumer
            .fetch_watermarks(&self.topic, self.partition, Duration::from_secs(30))
            .map_err(self.kafka_error("reading the partition's offsets"))
    }

    fn seek(&self, offset: i64) -> Result<(), RebuildError> {
        let mut list = TopicPartitionList::with_capacity(1);
        list.add_partition_offset(&self.topic, self.partition, Offset::Offset(offset))
            .map_err(self.kafka_error("positioning the reader"))?;
        self.consumer.assign(&list).map_err(self.kafka_error("positioning the reader"))
    }

    /// Calls `visit` with every record's offset and decoded tick (`None` for a record that is
    /// not a tick) from `from` until `visit` returns false or the record before `end` was seen.
    fn scan(&self, from: i64, end: i64, mut visit: impl FnMut(i64, Option<Tick>) -> bool) -> Result<(), RebuildError> {
        self.seek(from)?;
        let mut waiting_since = Instant::now();
        let mut next = from;
        while next < end {
            match self.consumer.poll(Duration::from_millis(500)) {
                None => {
                    if waiting_since.elapsed() > STALL_LIMIT {
                        return Err(RebuildError::Stalled {
                            topic: self.topic.clone(),
                            partition: self.partition,
                            offset: next,
                        });
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(topic = %self.topic, partition = self.partition, %err, "reader error while rebuilding windows");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Some(Ok(message)) => {
                    waiting_since = Instant::now();
                    let offset = message.offset();
                    if offset < next {
                        continue;
                    }
                    if offset >= end {
                        break;
                    }
                    next = offset + 1;
                    let tick = message.payload().and_then(|payload| serde_json::from_slice::<Tick>(payload).ok());
                    if !visit(offset, tick) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Event time of the first tick at or after `from` and before `end`.
    fn first_tick_time(&self, from: i64, end: i64) -> Result<Option<DateTime<Utc>>, RebuildError> {
        let mut found = None;
        self.scan(from, end, |_, tick| match tick {
            Some(tick) => {
                found = Some(tick.exchange_time);
                false
            }
            None => true,
        })?;
        Ok(found)
    }

    /// Every tick in `[from, end)`, in offset order.
    fn read(&self, from: i64, end: i64, mut visit: impl FnMut(Tick)) -> Result<(), RebuildError> {
        self.scan(from, end, |_, tick| {
            if let Some(tick) = tick {
                visit(tick);
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    /// A partition of `n` records from offset `low`, one tick per second from time 0.
    fn search(low: i64, resume: i64, target_secs: i64) -> (i64, Vec<i64>) {
        let mut probes = Vec::new();
        let start = find_rebuild_start(low, resume, at(target_secs), |offset| {
            probes.push(offset);
            Ok::<_, ()>(Some(at(offset - low)))
        })
        .unwrap();
        (start, probes)
    }

    #[test]
    fn the_search_doubles_its_steps_then_bisects_to_the_target() {
        // Resume at 100,000, target time 90,000 s: probes 1,024, 2,048, 4,096, 8,192, 16,384 back,
        // then bisection between 83,616 (old enough) and 91,808 (too late).
        let (start, probes) = search(0, 100_000, 90_000);
        assert_eq!(probes[..5], [98_976, 97_952, 95_904, 91_808, 83_616]);
        assert!(start <= 90_000, "at or before the target: {start}");
        assert!(90_000 - start <= PRECISION, "within {PRECISION} records of it: {start}");
        assert!(probes.len() <= 5 + 6, "{probes:?}");
    }

    #[test]
    fn a_partition_shorter_than_the_horizon_is_read_from_its_start() {
        // Every tick of offsets 500..3,000 is after the target: read them all.
        assert_eq!(search(500, 3_000, -10).0, 500);
        // The target is inside: the search ends near it (offset 1,500) instead.
        let start = search(500, 3_000, 1_000).0;
        assert!((1_500 - PRECISION..=1_500).contains(&start), "{start}");
        // Nothing before the resume offset: nothing to probe.
        assert_eq!(search(700, 700, 0), (700, vec![]));
    }

    #[test]
    fn records_that_are_not_ticks_make_the_search_go_further_back() {
        let start =
            find_rebuild_start(0, 10_000, at(0), |offset| Ok::<_, ()>((offset < 5_000).then(|| at(0)))).unwrap();
        assert!((4_744..=5_000).contains(&start), "just before the first records that are no tick: {start}");
    }
}
