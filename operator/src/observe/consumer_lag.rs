//! Consumer lag from Kafka itself, as KEDA's Kafka scaler measures it: for every partition of
//! the features topic, the end offset minus the predictor group's committed offset (the low
//! watermark when the group has committed nothing: the predictor starts from the earliest).
//!
//! The end offset is measured, not only asked for. Some brokers answer ListOffsets with the
//! base offset of the partition's last record batch plus one, so a batch of 500 records reads
//! as one (tansu 0.6 does; `operator/tests/consumer_lag.rs` shows it). The measurement reads
//! from the reported high watermark − 1 to the end of the partition: a fetch returns whole
//! batches, so the last record read gives the true end. Against a broker that reports the
//! watermark correctly this reads exactly one record per partition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::automation::LagObservation;
use crate::topics::connection::client_config;
use crate::topics::{KafkaConnection, TopicError};

/// Lag of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    /// Offset of the next record to be written (measured, see the module documentation).
    pub end: i64,
    /// The group's committed offset; `None` when it has committed nothing on this partition.
    pub committed: Option<i64>,
    /// Messages not yet committed.
    pub lag: i64,
}

/// Lag of a consumer group on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }

    pub fn observation(&self) -> LagObservation {
        LagObservation { total: self.total(), partitions: i32::try_from(self.partitions.len()).unwrap_or(i32::MAX) }
    }
}

/// Measures a consumer group's lag; a trait object in the controller's context so tests can
/// stand in a broker.
pub trait ConsumerLag: Send + Sync {
    fn lag<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        group: &'a str,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<GroupLag, TopicError>>;
}

/// [`ConsumerLag`] over the Kafka protocol (librdkafka).
#[derive(Debug, Clone)]
pub struct KafkaConsumerLag {
    /// Bound on each broker round trip, and on reading the partitions' last batches.
    pub timeout: Duration,
}

impl Default for KafkaConsumerLag {
    fn default() -> Self {
        KafkaConsumerLag { timeout: Duration::from_secs(10) }
    }
}

impl ConsumerLag for KafkaConsumerLag {
    fn lag<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        group: &'a str,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<GroupLag, TopicError>> {
        let connection = connection.clone();
        let (group, topic, timeout) = (group.to_string(), topic.to_string(), self.timeout);
        async move {
            // librdkafka's calls block until the broker answers: keep them off the runtime.
            tokio::task::spawn_blocking(move || measure(&connection, &group, &topic, timeout))
                .await
                .map_err(|e| TopicError::Config(format!("lag measurement task failed: {e}")))?
        }
        .boxed()
    }
}

fn measure(connection: &KafkaConnection, group: &str, topic: &str, timeout: Duration) -> Result<GroupLag, TopicError> {
    let unreachable = |e: KafkaError| TopicError::Unreachable {
        bootstrap_servers: connection.bootstrap_servers.clone(),
        reason: e.to_string(),
    };
    let (mut config, _ca_file) = client_config(connection)?;
    // The group id only names whose offsets to read: this client never subscribes (so it
    // never joins the group) and never commits.
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create().map_err(unreachable)?;

    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(unreachable)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(TopicError::Rejected {
            operation: "measure the lag of",
            topic: topic.to_string(),
            reason: "the topic does not exist".into(),
        });
    }

    let mut query = TopicPartitionList::new();
    for &p in &partitions {
        query.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(query, timeout).map_err(unreachable)?;
    let committed: BTreeMap<i32, Option<i64>> =
        committed.elements().iter().map(|e| (e.partition(), offset_value(e.offset()))).collect();

    let mut watermarks = BTreeMap::new();
    for &p in &partitions {
        watermarks.insert(p, consumer.fetch_watermarks(topic, p, timeout).map_err(unreachable)?);
    }
    let ends = read_ends(&consumer, topic, &watermarks, timeout)?;

    let partitions = partitions
        .iter()
        .map(|&p| {
            let (low, _) = watermarks[&p];
            let end = ends[&p];
            let committed = committed.get(&p).copied().flatten();
            let from = committed.unwrap_or(low);
            PartitionLag { partition: p, end, committed, lag: (end - from).max(0) }
        })
        .collect();
    Ok(GroupLag { partitions })
}

fn offset_value(offset: Offset) -> Option<i64> {
    match offset {
        Offset::Offset(n) if n >= 0 => Some(n),
        _ => None,
    }
}

/// The end offset of every partition: one past the last record read from `high − 1` on, or
/// `high` itself when nothing is there (an empty partition).
fn read_ends(
    consumer: &BaseConsumer,
    topic: &str,
    watermarks: &BTreeMap<i32, (i64, i64)>,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, TopicError> {
    let mut ends: BTreeMap<i32, i64> = watermarks.iter().map(|(&p, &(_, high))| (p, high)).collect();
    let mut assignment = TopicPartitionList::new();
    let mut pending: Vec<i32> = vec![];
    for (&p, &(low, high)) in watermarks {
        if high > low {
            assignment
                .add_partition_offset(topic, p, Offset::Offset(high - 1))
                .map_err(|e| TopicError::Config(e.to_string()))?;
            pending.push(p);
        }
    }
    if pending.is_empty() {
        return Ok(ends);
    }
    consumer.assign(&assignment).map_err(|e| TopicError::Config(format!("cannot assign {topic}: {e}")))?;
    let deadline = Instant::now() + timeout;
    while !pending.is_empty() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let end = ends.entry(message.partition()).or_insert(0);
                *end = (*end).max(message.offset() + 1);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => pending.retain(|&q| q != p),
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => {
                return Err(TopicError::Rejected {
                    operation: "measure the lag of",
                    topic: topic.to_string(),
                    reason: "the topic disappeared".into(),
                });
            }
            Some(Err(e)) => tracing::debug!(error = %e, "reading the end of {topic}"),
            None => {}
        }
    }
    // A partition that did not reach its end in time keeps what was read so far (at least the
    // reported watermark): the lag is then a lower bound.
    if !pending.is_empty() {
        tracing::warn!(topic, partitions = ?pending, "end offsets not confirmed within the timeout");
    }
    Ok(ends)
}
