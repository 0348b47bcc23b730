//! Idempotent producer and a JSON publisher that tracks broker acknowledgements.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use prometheus::IntCounter;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use super::TransportError;
use super::client::producer_config;
use crate::config::KafkaConfig;

/// An idempotent producer (`enable.idempotence=true`, `acks=all`) for `kafka`.
pub fn create_producer(kafka: &KafkaConfig) -> Result<FutureProducer, TransportError> {
    producer_config(kafka).create().map_err(TransportError::Config)
}

/// Counts of one [`JsonPublisher`] since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishTotals {
    pub enqueued: u64,
    pub acknowledged: u64,
    pub failed: u64,
}

/// Publishes serde values as JSON to one topic, keyed (by product id), and keeps the delivery
/// futures so that [`JsonPublisher::flush`] can tell whether everything reached the broker.
///
/// `publish` only waits when `max_in_flight` records are unacknowledged or librdkafka's local
/// queue is full, so a fast producer is paced by the broker instead of growing memory.
///
/// Records can also be tracked in groups (one group per consumed input batch): the records
/// published since the previous [`JsonPublisher::end_group`] form the group it closes, and
/// [`JsonPublisher::take_acknowledged_groups`] reports the groups whose records, and those of
/// every earlier group, were all acknowledged. The stage loop commits an input batch's offsets
/// only then, while later batches are already being produced.
pub struct JsonPublisher {
    producer: FutureProducer,
    topic: std::sync::Arc<str>,
    in_flight: FuturesUnordered<Tagged>,
    /// Groups not yet reported by `take_acknowledged_groups`, oldest first; ids are consecutive.
    groups: VecDeque<Group>,
    next_group: u64,
    max_in_flight: usize,
    totals: PublishTotals,
    /// Failures not yet reported by `flush`, with the first error's text.
    unreported_failures: u64,
    first_error: Option<String>,
    acknowledged_counter: Option<IntCounter>,
}

impl JsonPublisher {
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

    pub fn new(producer: FutureProducer, topic: impl Into<String>) -> JsonPublisher {
        JsonPublisher {
            producer,
            topic: std::sync::Arc::from(topic.into()),
            in_flight: FuturesUnordered::new(),
            groups: VecDeque::new(),
            next_group: 0,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            totals: PublishTotals::default(),
            unreported_failures: 0,
            first_error: None,
            acknowledged_counter: None,
        }
    }

    /// Most records waiting for an acknowledgement before `publish` waits.
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> JsonPublisher {
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    /// A counter incremented for every record the broker acknowledges.
    pub fn with_acknowledged_counter(mut self, counter: IntCounter) -> JsonPublisher {
        self.acknowledged_counter = Some(counter);
        self
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    pub fn totals(&self) -> PublishTotals {
        self.totals
    }

    /// Serializes `value` and enqueues it with `key`. Errors only for a value that cannot be
    /// serialized or a record librdkafka refuses outright (e.g. larger than `message.max.bytes`);
    /// delivery failures are reported by [`JsonPublisher::flush`].
    pub async fn publish<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), TransportError> {
        let payload = serde_json::to_vec(value)
            .map_err(|source| TransportError::Serialize { topic: self.topic.to_string(), source })?;
        // A handle of its own: the record borrows the topic while `self` is awaited mutably.
        let topic = std::sync::Arc::clone(&self.topic);
        let mut record = FutureRecord::to(&topic).key(key).payload(&payload);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    let group = self.open_group();
                    group.pending += 1;
                    let group = group.id;
                    self.in_flight.push(Tagged { group, delivery });
                    self.totals.enqueued += 1;
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    // Make room: wait for one acknowledgement (or give librdkafka a moment).
                    if !self.settle_one().await {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
                Err((err, _)) => {
                    self.totals.failed += 1;
                    return Err(TransportError::Produce {
                        topic: self.topic.to_string(),
                        failed: 1,
                        first_error: err.to_string(),
                    });
                }
            }
        }
        // Take the delivery reports already in (without waiting), so the acknowledged counter
        // and totals stay current while a long run of records is published.
        while let Some(true) = self.settle_one().now_or_never() {}
        while self.in_flight.len() >= self.max_in_flight {
            self.settle_one().await;
        }
        Ok(())
    }

    /// Waits until every enqueued record is acknowledged or failed. Errors when any record
    /// failed since the previous flush (the caller must then not commit what produced them).
    pub async fn flush(&mut self) -> Result<PublishTotals, TransportError> {
        while self.settle_one().await {}
        match self.take_failure() {
            Some(err) => Err(err),
            None => Ok(self.totals),
        }
    }

    /// Records waiting for their delivery report.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The group records are currently published into (a new one after `end_group`).
    fn open_group(&mut self) -> &mut Group {
        if self.groups.back().is_none_or(|g| g.closed) {
            self.groups.push_back(Group { id: self.next_group, pending: 0, failed: 0, closed: false });
            self.next_group += 1;
        }
        self.groups.back_mut().expect("just ensured")
    }

    /// Closes the group of the records published since the previous call (possibly none) and
    /// returns its id. Ids count up from 0.
    pub fn end_group(&mut self) -> u64 {
        let group = self.open_group();
        group.closed = true;
        group.id
    }

    /// Pops the closed groups at the front whose records were all acknowledged and returns the
    /// id of the last one (`None` when the oldest group is still waiting or failed). A group
    /// after a group with a failure is never reported: its records may have been acknowledged,
    /// but the inputs of the failed group must be processed again first.
    pub fn take_acknowledged_groups(&mut self) -> Option<u64> {
        let mut last = None;
        while let Some(front) = self.groups.front()
            && front.closed
            && front.pending == 0
            && front.failed == 0
        {
            last = Some(front.id);
            self.groups.pop_front();
        }
        last
    }

    /// The failures not yet reported, as the error `flush` would return (and forgets them).
    pub fn take_failure(&mut self) -> Option<TransportError> {
        if self.unreported_failures == 0 {
            return None;
        }
        let failed = std::mem::take(&mut self.unreported_failures);
        let first_error = self.first_error.take().unwrap_or_default();
        Some(TransportError::Produce { topic: self.topic.to_string(), failed, first_error })
    }

    /// Awaits one outstanding delivery report; false when none was outstanding. Cancel-safe:
    /// a report is taken only when the future completes.
    pub async fn settle_one(&mut self) -> bool {
        let Some((group, outcome)) = self.in_flight.next().await else {
            return false;
        };
        let front = self.groups.front().map_or(0, |g| g.id);
        let group = group.checked_sub(front).and_then(|i| self.groups.get_mut(i as usize));
        let error = match outcome {
            Ok(Ok(_delivery)) => None,
            Ok(Err((err, _message))) => Some(err.to_string()),
            Err(_canceled) => Some("the producer was dropped before the delivery report".to_string()),
        };
        if let Some(group) = group {
            group.pending -= 1;
            group.failed += u64::from(error.is_some());
        }
        match error {
            None => {
                self.totals.acknowledged += 1;
                if let Some(counter) = &self.acknowledged_counter {
                    counter.inc();
                }
            }
            Some(error) => {
                tracing::warn!(topic = %self.topic, %error, "record not acknowledged by the broker");
                self.totals.failed += 1;
                self.unreported_failures += 1;
                self.first_error.get_or_insert(error);
            }
        }
        true
    }

    /// Flushes and then waits for librdkafka's own queue to drain (used at shutdown).
    pub async fn close(mut self) -> Result<PublishTotals, TransportError> {
        let totals = self.flush().await?;
        let producer = self.producer.clone();
        // `Producer::flush` blocks; the deliveries above are already settled, so it returns fast.
        let _ = tokio::task::spawn_blocking(move || producer.flush(std::time::Duration::from_secs(10))).await;
        Ok(totals)
    }
}

/// Records of one group: published, not yet reported, failed.
#[derive(Debug)]
struct Group {
    id: u64,
    pending: usize,
    failed: u64,
    /// No more records join it.
    closed: bool,
}

/// A delivery report future with the id of its record's group.
struct Tagged {
    group: u64,
    delivery: DeliveryFuture,
}

impl Future for Tagged {
    type Output = (u64, <DeliveryFuture as Future>::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let group = self.group;
        Pin::new(&mut self.delivery).poll(cx).map(|outcome| (group, outcome))
    }
}
