//! Consumer-group consumer with manual commits and a context that logs rebalances.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntCounter;
use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;

use super::TransportError;
use super::client::consumer_config;
use crate::config::KafkaConfig;

/// The consumer type of every consuming stage.
pub type StageConsumer = StreamConsumer<StageContext>;

/// Logs partition assignments and revocations, commits the stored offsets when partitions are
/// revoked (so the next owner starts after what this process finished), and counts failed
/// commits.
pub struct StageContext {
    stage: String,
    commit_errors: Option<IntCounter>,
    assignments: Assignments,
}

/// How many times partitions were assigned to the consumer (every rebalance that hands it
/// partitions): state kept per partition is only valid across a rebalance if consumption goes
/// on where it stopped.
#[derive(Debug, Clone, Default)]
pub struct Assignments(Arc<AtomicU64>);

impl Assignments {
    pub fn generation(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl StageContext {
    /// `stage` names the consumer in logs; `commit_errors` counts failed commits.
    pub fn new(stage: impl Into<String>, commit_errors: Option<IntCounter>) -> StageContext {
        StageContext { stage: stage.into(), commit_errors, assignments: Assignments::default() }
    }

    /// The assignment counter of this consumer.
    pub fn assignments(&self) -> Assignments {
        self.assignments.clone()
    }

    fn commit_failed(&self, err: &KafkaError, during: &str) {
        tracing::warn!(stage = %self.stage, %err, during, "offset commit failed");
        if let Some(counter) = &self.commit_errors {
            counter.inc();
        }
    }
}

/// librdkafka's errors are logged as warnings naming the stage (the default logs them as errors
/// without it); losing every broker is said in plain words.
impl ClientContext for StageContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                tracing::warn!(stage = %self.stage, %reason, "broker unreachable: all brokers are down")
            }
            _ => tracing::warn!(stage = %self.stage, %error, %reason, "Kafka client error"),
        }
    }
}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(stage = %self.stage, partitions = %describe(partitions), "partitions revoked; committing stored offsets");
                // Offsets are stored only after their outputs were acknowledged: committing them
                // here is safe and spares the next owner reprocessing them.
                if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync)
                    && !is_nothing_to_commit(&err)
                {
                    self.commit_failed(&err, "revoke");
                }
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(err) => tracing::warn!(stage = %self.stage, %err, "rebalance error"),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            self.assignments.advance();
            tracing::info!(stage = %self.stage, partitions = %describe(partitions), "partitions assigned");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(err) = result
            && !is_nothing_to_commit(&err)
        {
            self.commit_failed(&err, "commit");
        }
    }
}

/// librdkafka reports "no offset to commit" as an error; it is not one.
pub(super) fn is_nothing_to_commit(err: &KafkaError) -> bool {
    matches!(err, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
}

/// `topic[partition]` list for logs.
fn describe(partitions: &TopicPartitionList) -> String {
    partitions.elements().iter().map(|p| format!("{}[{}]", p.topic(), p.partition())).collect::<Vec<_>>().join(",")
}

/// A consumer in `group_id`, subscribed to `topics`, with manual offset storage and commits.
pub fn create_group_consumer(
    kafka: &KafkaConfig,
    group_id: &str,
    topics: &[&str],
    context: StageContext,
) -> Result<StageConsumer, TransportError> {
    let consumer: StageConsumer =
        consumer_config(kafka, group_id).create_with_context(context).map_err(TransportError::Config)?;
    consumer.subscribe(topics).map_err(|source| TransportError::Subscribe { topic: topics.join(","), source })?;
    Ok(consumer)
}
