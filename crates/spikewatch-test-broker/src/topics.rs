//! Reading topics back in tests, without a consumer group (manual assignment, no join delay).
//!
//! Counting goes through reading, not through high watermarks: tansu 0.6 can report a high
//! watermark below the partition's next offset after multi-record batches (seen with
//! librdkafka's ListOffsets), so watermarks are not a reliable record count there.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::de::DeserializeOwned;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on waiting for records a test expects; reaching it fails the test.
const PATIENCE: Duration = Duration::from_secs(180);
/// After the condition holds, records keep being read until none arrived for this long, so
/// duplicates written right after are seen too.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record<T> {
    pub key: Option<String>,
    pub partition: i32,
    pub offset: i64,
    pub value: T,
}

fn plain_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("cannot create a test consumer")
}

/// Partition ids of `topic`, sorted.
pub fn partitions(bootstrap: &str, topic: &str) -> Vec<i32> {
    let consumer = plain_consumer(bootstrap, "spikewatch-test-reader");
    let metadata = consumer.fetch_metadata(None, TIMEOUT).expect("metadata request failed");
    let mut ids: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    ids.sort();
    ids
}

/// Reads `topic` from the beginning (values parsed as JSON `T`) until `done(records so far)`,
/// then until the topic has been idle for a second. Panics when `done` never holds.
pub fn read_until<T: DeserializeOwned>(
    bootstrap: &str,
    topic: &str,
    mut done: impl FnMut(&[Record<T>]) -> bool,
) -> Vec<Record<T>> {
    read(bootstrap, topic, &mut done, true)
}

/// [`read_until`] that gives up after `patience` instead of panicking: `Err` with everything
/// read so far, so the caller can say what is missing.
pub fn try_read_until<T: DeserializeOwned>(
    bootstrap: &str,
    topic: &str,
    patience: Duration,
    mut done: impl FnMut(&[Record<T>]) -> bool,
) -> Result<Vec<Record<T>>, Vec<Record<T>>> {
    read_within(bootstrap, topic, &mut done, true, patience)
}

/// The first `count` records of `topic` (or a few more), returned as soon as they arrived, without
/// waiting for the topic to go idle: for a producer that never stops.
pub fn read_first<T: DeserializeOwned>(bootstrap: &str, topic: &str, count: usize) -> Vec<Record<T>> {
    read(bootstrap, topic, &mut |records| records.len() >= count, false)
}

/// Reads `topic` from the beginning until `done` holds for what was read and returns at once (no
/// draining): for waiting until a stage has made some progress while it goes on.
pub fn wait_until<T: DeserializeOwned>(bootstrap: &str, topic: &str, mut done: impl FnMut(&[Record<T>]) -> bool) {
    read(bootstrap, topic, &mut done, false);
}

/// Reads `topic` from the beginning until it yielded `count` records and returns at once (no
/// draining): for waiting until a stage has made progress.
pub fn wait_for_count(bootstrap: &str, topic: &str, count: usize) {
    read::<serde_json::Value>(bootstrap, topic, &mut |records| records.len() >= count, false);
}

fn read<T: DeserializeOwned>(
    bootstrap: &str,
    topic: &str,
    done: &mut dyn FnMut(&[Record<T>]) -> bool,
    drain: bool,
) -> Vec<Record<T>> {
    read_within(bootstrap, topic, done, drain, PATIENCE).unwrap_or_else(|records| {
        panic!("read {} records from {topic}; the expected ones never arrived", records.len())
    })
}

fn read_within<T: DeserializeOwned>(
    bootstrap: &str,
    topic: &str,
    done: &mut dyn FnMut(&[Record<T>]) -> bool,
    drain: bool,
    patience: Duration,
) -> Result<Vec<Record<T>>, Vec<Record<T>>> {
    let consumer = plain_consumer(bootstrap, "spikewatch-test-reader");
    let deadline = Instant::now() + patience;
    // The stage under test may not have created the topic yet.
    let mut ids = partitions(bootstrap, topic);
    while ids.is_empty() {
        assert!(Instant::now() < deadline, "topic {topic} was never created");
        std::thread::sleep(Duration::from_millis(200));
        ids = partitions(bootstrap, topic);
    }
    let mut assignment = TopicPartitionList::new();
    for partition in ids {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).expect("cannot assign partitions");
    let mut records = Vec::new();
    let mut satisfied_at: Option<Instant> = None;
    let mut last_record = Instant::now();
    loop {
        if satisfied_at.is_none() && done(&records) {
            satisfied_at = Some(Instant::now());
        }
        if satisfied_at.is_some() && (!drain || last_record.elapsed() >= DRAIN_IDLE) {
            break;
        }
        if Instant::now() >= deadline {
            records.sort_by_key(|r| (r.partition, r.offset));
            return Err(records);
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = message.expect("consumer error while reading back");
        last_record = Instant::now();
        let value = serde_json::from_slice(message.payload().expect("record without value")).unwrap_or_else(|e| {
            panic!("record at {topic}[{}]@{} is not the expected JSON: {e}", message.partition(), message.offset())
        });
        records.push(Record {
            key: message.key_view::<str>().and_then(Result::ok).map(str::to_string),
            partition: message.partition(),
            offset: message.offset(),
            value,
        });
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// Reads `topic` until it yielded at least `count` records (see [`read_until`]).
pub fn read_at_least<T: DeserializeOwned>(bootstrap: &str, topic: &str, count: usize) -> Vec<Record<T>> {
    read_until(bootstrap, topic, |records| records.len() >= count)
}

/// `(partition, last offset + 1)` per partition present in `records`, sorted by partition.
pub fn next_offsets<T>(records: &[Record<T>]) -> Vec<(i32, i64)> {
    let mut next = std::collections::BTreeMap::new();
    for r in records {
        let slot = next.entry(r.partition).or_insert(0);
        *slot = (*slot).max(r.offset + 1);
    }
    next.into_iter().collect()
}

/// Committed offsets of `group` on `topic`, for partitions that have one, sorted by partition.
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str) -> Vec<(i32, i64)> {
    let consumer = plain_consumer(bootstrap, group);
    let mut list = TopicPartitionList::new();
    for partition in partitions(bootstrap, topic) {
        list.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(list, TIMEOUT).expect("OffsetFetch failed");
    committed
        .elements()
        .iter()
        .filter_map(|e| if let Offset::Offset(o) = e.offset() { Some((e.partition(), o)) } else { None })
        .collect()
}

/// The state of consumer group `group` (`Stable`, `PreparingRebalance`, ...) and its members'
/// ids, from DescribeGroups; an empty state when the broker does not know the group.
pub fn group_members(bootstrap: &str, group: &str) -> (String, Vec<String>) {
    let consumer = plain_consumer(bootstrap, &format!("{group}-observer"));
    let groups = consumer.fetch_group_list(Some(group), TIMEOUT).expect("DescribeGroups failed");
    let Some(found) = groups.groups().first() else { return (String::new(), Vec::new()) };
    let members = found.members().iter().map(|m| m.id().to_string()).collect();
    (found.state().to_string(), members)
}
