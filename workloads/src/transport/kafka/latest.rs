//! The latest event time already on a topic of ticks: where a restarted `replay --loop` must
//! continue, so that its ticks are not older than what the featurizer has seen.
//!
//! Reads the end of every partition with a reader outside any consumer group (see
//! [`reader_config`]): from the reported high watermark − 1 to the end. Some brokers report the
//! watermark as the base offset of the last record batch plus one (tansu 0.6 does), so the read
//! may return the whole last batch; the latest exchange time of everything read is the answer.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use super::client::reader_config;
use crate::config::KafkaConfig;

/// The field of a tick this needs: other layouts of the topic's records are skipped.
#[derive(Deserialize)]
struct EventTime {
    exchange_time: DateTime<Utc>,
}

/// The latest `exchange_time` at the end of `topic`'s partitions; `None` when the topic is
/// empty or missing. Blocks (librdkafka's calls do): run it off the async runtime.
pub fn latest_event_time(
    kafka: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Option<DateTime<Utc>>, KafkaError> {
    let consumer: BaseConsumer = reader_config(kafka).set("enable.partition.eof", "true").create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none()) else {
        return Ok(None);
    };
    let mut assignment = TopicPartitionList::new();
    let mut pending = BTreeSet::new();
    for partition in found.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            assignment.add_partition_offset(topic, partition.id(), Offset::Offset(high - 1))?;
            pending.insert(partition.id());
        }
    }
    if pending.is_empty() {
        return Ok(None);
    }
    consumer.assign(&assignment)?;
    let mut latest: Option<DateTime<Utc>> = None;
    let deadline = Instant::now() + timeout;
    while !pending.is_empty() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let time = message.payload().and_then(|p| serde_json::from_slice::<EventTime>(p).ok());
                if let Some(EventTime { exchange_time }) = time {
                    latest = latest.max(Some(exchange_time));
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.remove(&partition);
            }
            Some(Err(e)) => tracing::debug!(error = %e, topic, "reading the end of the topic"),
            None => {}
        }
    }
    if !pending.is_empty() {
        tracing::warn!(topic, partitions = ?pending, "the end of some partitions was not read in time");
    }
    Ok(latest)
}
