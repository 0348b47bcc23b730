//! The at-least-once stage loop shared by every consuming workload (featurizer, predictor).
//!
//! One cycle:
//! 1. poll a batch from the input topic: wait for the first record (or shutdown), then take
//!    more until [`BatchPolicy::max_records`] or [`BatchPolicy::max_wait`];
//! 2. deserialize each value as JSON into `I` (failures are counted as `deserialize`, logged and
//!    skipped: a poison record must not stall the partition);
//! 3. call the user function with the batch; it returns the output records `(key, O)`;
//! 4. produce every output as JSON and wait until the broker acknowledged all of them;
//! 5. store and commit the offsets of the consumed records.
//!
//! A crash anywhere before 5 means the batch is consumed again by the next owner of the
//! partitions: outputs may be duplicated, never lost. Per-partition order is preserved because
//! the producer is idempotent and batches are processed one after the other.
//!
//! ```no_run
//! # async fn example(config: spikewatch::config::Config) -> anyhow::Result<()> {
//! use spikewatch::domain::{FeatureVector, Prediction};
//! use spikewatch::transport::kafka::{
//!     BatchPolicy, Inbound, Outbound, Stage, StageMetricNames, StageMetrics, StageSpec, ensure_topics,
//! };
//!
//! let kafka = &config.kafka;
//! ensure_topics(kafka, &[&kafka.topics.features, &kafka.topics.predictions]).await?;
//! let metrics = StageMetrics::register(
//!     &prometheus::Registry::new(),
//!     StageMetricNames {
//!         consumed: "volatility_consumer_messages_processed_total",
//!         produced: "volatility_consumer_predictions_made_total",
//!         errors: "volatility_consumer_errors_total",
//!         processing_seconds: "volatility_consumer_processing_seconds",
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

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::consumer::is_nothing_to_commit;
use super::{
    ErrorKind, JsonPublisher, StageConsumer, StageContext, StageMetrics, TransportError, create_group_consumer,
    create_producer,
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
    /// Completed produce → ack → commit cycles.
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
    publisher: JsonPublisher,
    batch: BatchPolicy,
    metrics: StageMetrics,
}

/// Offsets consumed in a batch: `(topic, partition)` → highest offset.
type ConsumedOffsets = BTreeMap<(String, i32), i64>;

impl Stage {
    /// Creates the producer and the consumer (subscribed to `spec.input_topic` in
    /// `spec.group_id`). Topics are not created here: call `ensure_topics` first.
    pub fn new(kafka: &KafkaConfig, spec: StageSpec<'_>, metrics: StageMetrics) -> Result<Stage, TransportError> {
        let context = StageContext::new(spec.name, Some(metrics.error(ErrorKind::Commit)));
        let consumer = create_group_consumer(kafka, spec.group_id, &[spec.input_topic], context)?;
        let publisher = JsonPublisher::new(create_producer(kafka)?, spec.output_topic)
            .with_acknowledged_counter(metrics.produced.clone());
        Ok(Stage { name: spec.name.to_string(), consumer, publisher, batch: spec.batch, metrics })
    }

    /// The underlying consumer (assignment, positions, lag queries).
    pub fn consumer(&self) -> &StageConsumer {
        &self.consumer
    }

    /// Runs cycles until `shutdown` completes, then finishes the current batch, flushes the
    /// producer and commits synchronously.
    ///
    /// `process` maps one batch of inputs to its outputs; it may return fewer or more records
    /// than it received (an input rejected by the domain logic simply has no output; count it
    /// in the function). Returns an error, without committing the failed batch, when the
    /// broker did not acknowledge an output: the process should exit and be restarted, which
    /// resumes from the last committed offsets.
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
        tokio::pin!(shutdown);
        tracing::info!(stage = %self.name, output = %self.publisher.topic(), "stage started");
        loop {
            let first = tokio::select! {
                biased;
                () = &mut shutdown => break,
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
                    return Err(TransportError::Process(err.to_string()));
                }
            };
            self.publish_all(&outputs).await?;
            totals.produced = self.publisher.totals().acknowledged;
            let acked = Instant::now();
            for received in received {
                self.metrics.processing_seconds.observe(acked.duration_since(received).as_secs_f64());
            }
            self.commit(&offsets);
            totals.batches += 1;
        }
        tracing::info!(stage = %self.name, ?totals, "stopping: flushing the producer and committing offsets");
        self.publisher.close().await?;
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Sync)
            && !is_nothing_to_commit(&err)
        {
            self.metrics.error(ErrorKind::Commit).inc();
            tracing::warn!(stage = %self.name, %err, "final commit failed");
        }
        Ok(totals)
    }

    /// Takes further records until the batch is full or `max_wait` has passed since its start.
    async fn fill_batch<I: DeserializeOwned>(
        &self,
        inputs: &mut Vec<Inbound<I>>,
        offsets: &mut ConsumedOffsets,
        totals: &mut StageTotals,
    ) {
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

    async fn publish_all<O: Serialize>(&mut self, outputs: &[Outbound<O>]) -> Result<(), TransportError> {
        let produce_errors = self.metrics.error(ErrorKind::Produce);
        for output in outputs {
            if let Err(err) = self.publisher.publish(&output.key, &output.value).await {
                produce_errors.inc();
                return Err(err);
            }
        }
        match self.publisher.flush().await {
            Ok(_) => Ok(()),
            Err(err) => {
                if let TransportError::Produce { failed, .. } = &err {
                    produce_errors.inc_by(*failed);
                }
                Err(err)
            }
        }
    }

    /// Stores the next offset of every consumed partition and commits asynchronously (failures
    /// arrive in the context's commit callback). A failure here only means the batch may be
    /// consumed again, which at-least-once allows.
    fn commit(&self, offsets: &ConsumedOffsets) {
        let mut list = TopicPartitionList::with_capacity(offsets.len());
        for ((topic, partition), offset) in offsets {
            if let Err(err) = list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1)) {
                tracing::warn!(stage = %self.name, %err, "cannot build the offset list");
            }
        }
        if let Err(err) = self.consumer.store_offsets(&list) {
            // Typically: the partition was revoked while the batch was in flight.
            self.metrics.error(ErrorKind::Commit).inc();
            tracing::warn!(stage = %self.name, %err, "cannot store consumed offsets");
            return;
        }
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Async)
            && !is_nothing_to_commit(&err)
        {
            self.metrics.error(ErrorKind::Commit).inc();
            tracing::warn!(stage = %self.name, %err, "cannot commit consumed offsets");
        }
    }

    async fn consume_failed(&self, err: &rdkafka::error::KafkaError) {
        self.metrics.error(ErrorKind::Consume).inc();
        tracing::warn!(stage = %self.name, %err, "consumer error");
        // Errors such as an unreachable broker repeat; do not spin on them.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
