//! The at-least-once stage loop shared by every consuming workload (featurizer, predictor).
//!
//! One cycle:
//! 1. poll a batch from the input topic: wait for the first record (or shutdown), then take the
//!    records already fetched, up to [`BatchPolicy::max_records`] (and, only with a non-zero
//!    [`BatchPolicy::max_wait`], wait that long for more);
//! 2. deserialize each value as JSON into `I` (failures are counted as `deserialize`, logged and
//!    skipped: a poison record must not stall the partition);
//! 3. call the user function with the batch; it returns the output records `(key, O)`;
//! 4. enqueue every output with the producer, and go on with the next batch without waiting for
//!    the broker's acknowledgements (pipelining: batch N+1 is consumed, processed and produced
//!    while the acks of batch N are in flight);
//! 5. as acknowledgements arrive, store the offsets of the oldest batches whose outputs were
//!    all acknowledged (and those of every earlier batch); stored offsets are committed
//!    asynchronously every [`COMMIT_INTERVAL`], and synchronously at shutdown.
//!
//! An output the broker did not acknowledge stops the stage with an error: its batch's offsets
//! and those of every later batch are never stored, so the committed offset never passes an
//! input whose output was lost, and the next owner of the partition consumes it again. A crash
//! anywhere means the batches after the last commit are consumed again: outputs may be
//! duplicated, never lost. Per-partition order is preserved because the producer is idempotent
//! (ordered retries) and batches are enqueued in consumption order.
//!
//! ```no_run
//! # async fn example(config: spikewatch::config::Config) -> anyhow::Result<()> {
//! use spikewatch::domain::{FeatureVector, Prediction};
//! use spikewatch::metric_names::predictor as names;
//! use spikewatch::transport::kafka::{
//!     BatchPolicy, Inbound, Outbound, Stage, StageMetricNames, StageMetrics, StageSpec, ensure_topics,
//! };
//!
//! let kafka = &config.kafka;
//! ensure_topics(kafka, &[&kafka.topics.features, &kafka.topics.predictions]).await?;
//! let metrics = StageMetrics::register(
//!     &prometheus::Registry::new(),
//!     StageMetricNames {
//!         consumed: names::MESSAGES_PROCESSED,
//!         produced: names::PREDICTIONS_MADE,
//!         errors: names::ERRORS,
//!         processing_seconds: names::PROCESSING_SECONDS,
//!     },
//! )?;
//! let spec = StageSpec {
//!     name: "predictor",
//!     group_id: &kafka.predictor_group_id,
//!     input_topic: &kafka.topics.features,
//!     output_topic: &kafka.topics.predictions,
//!     batch: BatchPolicy::from_config(kafka),
//! };
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let score = |batch: &[FeatureVector]| -> Vec<Prediction> { unimplemented!() };
//! let _totals = Stage::new(kafka, spec, metrics)?
//!     .run(shutdown.cancelled_owned(), |batch: Vec<Inbound<FeatureVector>>| {
//!         let vectors: Vec<FeatureVector> = batch.into_iter().map(|record| record.value).collect();
//!         score(&vectors)
//!             .into_iter()
//!             .map(|prediction| Outbound { key: prediction.product_id.clone(), value: prediction })
//!             .collect()
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::consumer::is_nothing_to_commit;
use super::{
    Assignments, ErrorKind, JsonPublisher, StageConsumer, StageContext, StageMetrics, TransportError,
    create_group_consumer, create_producer,
};
use crate::config::KafkaConfig;

/// How many records a cycle takes at most, and how long it waits to fill up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    pub max_records: usize,
    /// Counted from the arrival of the batch's first record.
    pub max_wait: Duration,
}

impl BatchPolicy {
    /// `kafka.max_batch` / `kafka.max_batch_wait_ms`.
    pub fn from_config(kafka: &KafkaConfig) -> BatchPolicy {
        BatchPolicy { max_records: kafka.max_batch.max(1), max_wait: Duration::from_millis(kafka.max_batch_wait_ms) }
    }
}

/// Where a stage reads from and writes to.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec<'a> {
    /// Name used in logs (`featurizer`, `predictor`).
    pub name: &'a str,
    pub group_id: &'a str,
    pub input_topic: &'a str,
    pub output_topic: &'a str,
    pub batch: BatchPolicy,
}

/// One deserialized input record.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound<I> {
    pub key: Option<String>,
    pub value: I,
    pub partition: i32,
    pub offset: i64,
    /// When this process received the record.
    pub received: Instant,
}

/// One output record: JSON-serialized `value`, published with `key` (the product id).
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound<O> {
    pub key: String,
    pub value: O,
}

/// What a stage did until it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTotals {
    /// Batches whose outputs were all acknowledged and whose offsets were stored.
    pub batches: u64,
    /// Input records received (including those that failed to deserialize).
    pub consumed: u64,
    /// Input records skipped because their value was not valid JSON for the input type.
    pub skipped: u64,
    /// Output records acknowledged by the broker.
    pub produced: u64,
}

/// A consuming stage: a group consumer on the input topic and a JSON publisher on the output
/// topic, driven by [`Stage::run`].
pub struct Stage {
    name: String,
    consumer: StageConsumer,
    assignments: Assignments,
    publisher: JsonPublisher,
    batch: BatchPolicy,
    metrics: StageMetrics,
}

/// Offsets consumed in a batch: `(topic, partition)` → highest offset.
type ConsumedOffsets = BTreeMap<(String, i32), i64>;

/// How often stored offsets are committed while batches keep completing. Between commits, a
/// crash costs at most this much reprocessing (duplicates, never losses).
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// A processed batch whose outputs are enqueued: its publisher group, what it consumed, and
/// when its inputs arrived.
struct PendingBatch {
    group: u64,
    offsets: ConsumedOffsets,
    received: Vec<Instant>,
}

/// When stored offsets were last committed, and whether newer ones are stored.
struct CommitClock {
    last: tokio::time::Instant,
    dirty: bool,
}

impl CommitClock {
    fn new() -> CommitClock {
        CommitClock { last: tokio::time::Instant::now(), dirty: false }
    }

    fn is_due(&self) -> bool {
        self.last.elapsed() >= COMMIT_INTERVAL
    }

    fn due(&self) -> tokio::time::Sleep {
        tokio::time::sleep_until(self.last + COMMIT_INTERVAL)
    }

    fn committed(&mut self) {
        self.last = tokio::time::Instant::now();
        self.dirty = false;
    }
}

/// How many records a produce error stands for.
fn produce_failures(err: &TransportError) -> u64 {
    match err {
        TransportError::Produce { failed, .. } => *failed,
        _ => 0,
    }
}

impl Stage {
    /// Creates the producer and the consumer (subscribed to `spec.input_topic` in
    /// `spec.group_id`). Topics are not created here: call `ensure_topics` first.
    pub fn new(kafka: &KafkaConfig, spec: StageSpec<'_>, metrics: StageMetrics) -> Result<Stage, TransportError> {
        let context = StageContext::new(spec.name, Some(metrics.error(ErrorKind::Commit)));
        let assignments = context.assignments();
        let consumer = create_group_consumer(kafka, spec.group_id, &[spec.input_topic], context)?;
        let publisher = JsonPublisher::new(create_producer(kafka)?, spec.output_topic)
            .with_acknowledged_counter(metrics.produced.clone());
        Ok(Stage { name: spec.name.to_string(), consumer, assignments, publisher, batch: spec.batch, metrics })
    }

    /// Counts the rebalances that assigned partitions to this stage's consumer.
    pub fn assignments(&self) -> Assignments {
        self.assignments.clone()
    }

    /// The underlying consumer (assignment, positions, lag queries).
    pub fn consumer(&self) -> &StageConsumer {
        &self.consumer
    }

    /// Runs cycles until `shutdown` completes, then flushes the producer, stores the offsets of
    /// every acknowledged batch and commits synchronously.
    ///
    /// `process` maps one batch of inputs to its outputs; it may return fewer or more records
    /// than it received (an input rejected by the domain logic simply has no output; count it
    /// in the function). Returns an error, without committing the batch whose output failed or
    /// any later one, when the broker did not acknowledge an output: the process should exit
    /// and be restarted, which resumes from the last committed offsets.
    pub async fn run<I, O, F, S>(self, shutdown: S, mut process: F) -> Result<StageTotals, TransportError>
    where
        I: DeserializeOwned,
        O: Serialize,
        F: FnMut(Vec<Inbound<I>>) -> Vec<Outbound<O>>,
        S: Future<Output = ()>,
    {
        self.try_run(shutdown, |batch| Ok::<_, std::convert::Infallible>(process(batch))).await
    }

    /// [`Stage::run`] with a function that can fail: an `Err` stops the stage at once with
    /// [`TransportError::Process`], without producing or committing that batch (it is consumed
    /// again after a restart). For failures that must not be skipped, such as a model that
    /// cannot score; failures of single records belong in the function's own counting.
    pub async fn try_run<I, O, E, F, S>(mut self, shutdown: S, mut process: F) -> Result<StageTotals, TransportError>
    where
        I: DeserializeOwned,
        O: Serialize,
        E: std::fmt::Display,
        F: FnMut(Vec<Inbound<I>>) -> Result<Vec<Outbound<O>>, E>,
        S: Future<Output = ()>,
    {
        let mut totals = StageTotals::default();
        let mut pending = VecDeque::<PendingBatch>::new();
        let mut commit = CommitClock::new();
        tokio::pin!(shutdown);
        tracing::info!(stage = %self.name, output = %self.publisher.topic(), "stage started");
        loop {
            // Wait for the next input; meanwhile, settle delivery reports (a batch whose outputs
            // are all acknowledged gets its offsets stored) and commit stored offsets when due.
            let first = tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = self.publisher.settle_one(), if self.publisher.in_flight() > 0 => {
                    self.settle_ready(&mut pending, &mut totals, &mut commit)?;
                    continue;
                }
                () = commit.due(), if commit.dirty => {
                    self.commit_stored(&mut commit);
                    continue;
                }
                first = self.consumer.recv() => first,
            };
            let first = match first {
                Ok(message) => message,
                Err(err) => {
                    self.consume_failed(&err).await;
                    continue;
                }
            };
            let mut offsets = ConsumedOffsets::new();
            let mut inputs = Vec::with_capacity(self.batch.max_records);
            self.accept(&first, &mut inputs, &mut offsets, &mut totals);
            drop(first);
            self.fill_batch(&mut inputs, &mut offsets, &mut totals).await;

            let received: Vec<Instant> = inputs.iter().map(|r| r.received).collect();
            let outputs = match process(inputs) {
                Ok(outputs) => outputs,
                Err(err) => {
                    tracing::error!(stage = %self.name, %err, "stage function failed; stopping without committing the batch");
                    self.commit_acknowledged(&mut pending, &mut totals, &mut commit);
                    self.commit_sync();
                    return Err(TransportError::Process(err.to_string()));
                }
            };
            // Enqueue the outputs; their acknowledgements are awaited while the next batches
            // are consumed and processed (pipelining), not here.
            if let Err(err) = self.publish_all(&outputs).await {
                self.commit_acknowledged(&mut pending, &mut totals, &mut commit);
                self.commit_sync();
                return Err(err);
            }
            let group = self.publisher.end_group();
            pending.push_back(PendingBatch { group, offsets, received });
            self.settle_ready(&mut pending, &mut totals, &mut commit)?;
        }
        tracing::info!(stage = %self.name, ?totals, "stopping: flushing the producer and committing offsets");
        let flushed = self.publisher.flush().await;
        // Store what was acknowledged even when a later output failed: those inputs are done.
        self.commit_acknowledged(&mut pending, &mut totals, &mut commit);
        totals.produced = self.publisher.totals().acknowledged;
        self.commit_sync();
        if let Err(err) = flushed {
            self.metrics.error(ErrorKind::Produce).inc_by(produce_failures(&err));
            return Err(err);
        }
        self.publisher.close().await?;
        Ok(totals)
    }

    /// Takes the delivery reports that are already in without waiting, stores the offsets of
    /// the batches now fully acknowledged and commits when due. Errors (after committing what was
    /// acknowledged before) when an output was not acknowledged.
    fn settle_ready(
        &mut self,
        pending: &mut VecDeque<PendingBatch>,
        totals: &mut StageTotals,
        commit: &mut CommitClock,
    ) -> Result<(), TransportError> {
        while let Some(true) = self.publisher.settle_one().now_or_never() {}
        self.commit_acknowledged(pending, totals, commit);
        if let Some(err) = self.publisher.take_failure() {
            self.metrics.error(ErrorKind::Produce).inc_by(produce_failures(&err));
            tracing::error!(stage = %self.name, %err, "output not acknowledged; stopping without committing its batch");
            self.commit_sync();
            return Err(err);
        }
        if commit.dirty && commit.is_due() {
            self.commit_stored(commit);
        }
        Ok(())
    }

    /// Stores the offsets of the leading batches whose outputs (and those of every earlier
    /// batch) were all acknowledged, and observes their processing latency.
    fn commit_acknowledged(
        &mut self,
        pending: &mut VecDeque<PendingBatch>,
        totals: &mut StageTotals,
        commit: &mut CommitClock,
    ) {
        totals.produced = self.publisher.totals().acknowledged;
        let Some(through) = self.publisher.take_acknowledged_groups() else { return };
        let acked = Instant::now();
        let mut offsets = ConsumedOffsets::new();
        while let Some(batch) = pending.front()
            && batch.group <= through
        {
            let batch = pending.pop_front().expect("front exists");
            for received in batch.received {
                self.metrics.processing_seconds.observe(acked.duration_since(received).as_secs_f64());
            }
            for (partition, offset) in batch.offsets {
                let slot = offsets.entry(partition).or_insert(offset);
                *slot = (*slot).max(offset);
            }
            totals.batches += 1;
        }
        if !offsets.is_empty() && self.store(&offsets) {
            commit.dirty = true;
        }
    }

    /// Takes the records already fetched, up to a full batch, without waiting; then, only with a
    /// non-zero `max_wait`, waits for more until the batch is full or `max_wait` has passed since
    /// its start.
    async fn fill_batch<I: DeserializeOwned>(
        &self,
        inputs: &mut Vec<Inbound<I>>,
        offsets: &mut ConsumedOffsets,
        totals: &mut StageTotals,
    ) {
        // A poll can come back empty after serving an internal event although records follow:
        // try a couple of times before deciding nothing is ready.
        let mut empty_polls = 0;
        while inputs.len() < self.batch.max_records && empty_polls < 2 {
            match self.consumer.recv().now_or_never() {
                None => empty_polls += 1,
                Some(Ok(message)) => {
                    empty_polls = 0;
                    self.accept(&message, inputs, offsets, totals);
                }
                Some(Err(err)) => {
                    self.consume_failed(&err).await;
                    return;
                }
            }
        }
        if self.batch.max_wait.is_zero() {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.batch.max_wait;
        while inputs.len() < self.batch.max_records {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Err(_elapsed) => break,
                Ok(Ok(message)) => self.accept(&message, inputs, offsets, totals),
                Ok(Err(err)) => {
                    self.consume_failed(&err).await;
                    break;
                }
            }
        }
    }

    /// Records the message's offset and, when its value deserializes, adds it to the batch.
    fn accept<I: DeserializeOwned>(
        &self,
        message: &BorrowedMessage<'_>,
        inputs: &mut Vec<Inbound<I>>,
        offsets: &mut ConsumedOffsets,
        totals: &mut StageTotals,
    ) {
        totals.consumed += 1;
        self.metrics.consumed.inc();
        let slot = offsets.entry((message.topic().to_string(), message.partition())).or_insert(message.offset());
        *slot = (*slot).max(message.offset());
        let key = message.key_view::<str>().and_then(Result::ok).map(str::to_string);
        let parsed = match message.payload() {
            Some(payload) => serde_json::from_slice::<I>(payload).map_err(|e| e.to_string()),
            None => Err("record has no value".to_string()),
        };
        match parsed {
            Ok(value) => inputs.push(Inbound {
                key,
                value,
                partition: message.partition(),
                offset: message.offset(),
                received: Instant::now(),
            }),
            Err(error) => {
                totals.skipped += 1;
                self.metrics.error(ErrorKind::Deserialize).inc();
                tracing::warn!(
                    stage = %self.name,
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    %error,
                    "skipping a record that is not valid input"
                );
            }
        }
    }

    /// Enqueues every output (waiting only when too many are unacknowledged).
    async fn publish_all<O: Serialize>(&mut self, outputs: &[Outbound<O>]) -> Result<(), TransportError> {
        for output in outputs {
            if let Err(err) = self.publisher.publish(&output.key, &output.value).await {
                self.metrics.error(ErrorKind::Produce).inc();
                return Err(err);
            }
        }
        Ok(())
    }

    /// Stores the next offset of every partition in `offsets` that this member still owns
    /// (committed later, by [`Stage::commit_stored`]); false when nothing was stored. A partition
    /// revoked while its batch was in flight is skipped, not an error: its new owner consumes
    /// the batch again from the last commit (at least once).
    fn store(&self, offsets: &ConsumedOffsets) -> bool {
        let assignment = self.consumer.assignment().ok();
        let mut list = TopicPartitionList::with_capacity(offsets.len());
        for ((topic, partition), offset) in offsets {
            if let Some(assigned) = &assignment
                && assigned.find_partition(topic, *partition).is_none()
            {
                tracing::info!(
                    stage = %self.name,
                    topic,
                    partition,
                    "partition revoked while its batch was in flight; its new owner consumes the batch again"
                );
                continue;
            }
            if let Err(err) = list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1)) {
                tracing::warn!(stage = %self.name, %err, "cannot build the offset list");
            }
        }
        if list.count() == 0 {
            return false;
        }
        if let Err(err) = self.consumer.store_offsets(&list) {
            self.metrics.error(ErrorKind::Commit).inc();
            tracing::warn!(stage = %self.name, %err, "cannot store consumed offsets");
            return false;
        }
        true
    }

    /// Commits the stored offsets asynchronously (failures arrive in the context's commit
    /// callback). A failure only means some batches may be consumed again.
    fn commit_stored(&self, commit: &mut CommitClock) {
        commit.committed();
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Async)
            && !is_nothing_to_commit(&err)
        {
            self.metrics.error(ErrorKind::Commit).inc();
            tracing::warn!(stage = %self.name, %err, "cannot commit consumed offsets");
        }
    }

    /// Commits the stored offsets and waits for the broker's answer (at shutdown or failure).
    fn commit_sync(&self) {
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Sync)
            && !is_nothing_to_commit(&err)
        {
            self.metrics.error(ErrorKind::Commit).inc();
            tracing::warn!(stage = %self.name, %err, "final commit failed");
        }
    }

    async fn consume_failed(&self, err: &rdkafka::error::KafkaError) {
        self.metrics.error(ErrorKind::Consume).inc();
        tracing::warn!(stage = %self.name, %err, "consumer error");
        // Errors such as an unreachable broker repeat; do not spin on them.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
