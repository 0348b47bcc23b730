//! Cluster mode's source of live predictions: `spikewatch serve` reads `kafka.topics.predictions`
//! into its [`PredictionFeed`] (`api.predictions_from_kafka: true`).
//!
//! The reader assigns itself every partition of the topic by hand, starting at the end, and
//! never joins a consumer group or commits (its `group.id` is a unique placeholder librdkafka
//! needs for incremental assignment; see `reader_config`). Why not the predictor's group, or a
//! group joined with `auto.offset.reset=latest`:
//!
//! - every API replica serves its own stream clients, so each needs every prediction; replicas in
//!   one group would split the partitions between them;
//! - nothing is joined, rebalanced or committed: the predictor's group, its offsets and its lag
//!   (what the operator scales the predictor on) are untouched, and restarts leave no orphaned
//!   groups with committed offsets on the brokers, as a joined group per process would;
//! - a live view starts at "now": after a restart, old predictions are not replayed to clients.
//!
//! Partitions that appear later are found by a periodic metadata refresh and read from their
//! beginning (everything in them is newer than the reader). Records that are not a prediction
//! of the current schema are counted in `volatility_api_feed_errors_total{error_type="malformed"}`
//! and skipped.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::feed::{PredictionFeed, error_type};
use crate::config::KafkaConfig;
use crate::domain::{PREDICTION_SCHEMA, Prediction};
use crate::transport::kafka::{TransportError, reader_config};

/// How often the topic's partitions are looked up again.
const PARTITION_REFRESH: Duration = Duration::from_secs(30);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a consumer error: errors such as an unreachable broker repeat.
const ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Reads the predictions topic into a feed, outside any consumer group.
pub struct PredictionTail {
    consumer: Arc<StreamConsumer>,
    topic: String,
}

impl PredictionTail {
    /// A reader of `kafka.topics.predictions` (no connection is made yet).
    pub fn new(kafka: &KafkaConfig) -> Result<PredictionTail, TransportError> {
        let consumer: StreamConsumer = reader_config(kafka).create().map_err(TransportError::Config)?;
        Ok(PredictionTail { consumer: Arc::new(consumer), topic: kafka.topics.predictions.clone() })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Makes this reader `feed`'s source and runs it in the background until the feed is closed.
    pub fn spawn(self, feed: PredictionFeed) -> tokio::task::JoinHandle<()> {
        feed.set_source(format!("Kafka topic {}", self.topic));
        tokio::spawn(self.run(feed))
    }

    /// Publishes every prediction of the topic into `feed` until the feed is closed.
    pub async fn run(self, feed: PredictionFeed) {
        let mut assigned = BTreeSet::new();
        let mut refresh = tokio::time::interval(PARTITION_REFRESH);
        let mut first_look = true;
        loop {
            tokio::select! {
                biased;
                () = feed.closed() => break,
                _ = refresh.tick() => {
                    // Partitions there at start are read from their end, later ones from their beginning.
                    let start = if first_look { Offset::End } else { Offset::Beginning };
                    first_look = false;
                    self.assign_new_partitions(&mut assigned, start, &feed).await;
                }
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        match parse(message.payload()) {
                            Ok(prediction) => feed.publish(prediction),
                            Err(reason) => {
                                feed.metrics().error(error_type::MALFORMED).inc();
                                tracing::warn!(
                                    topic = %self.topic,
                                    partition = message.partition(),
                                    offset = message.offset(),
                                    %reason,
                                    "skipping a record that is not a prediction"
                                );
                            }
                        }
                    }
                    Err(err) => {
                        feed.metrics().error(error_type::CONSUME).inc();
                        tracing::warn!(topic = %self.topic, %err, "consumer error");
                        tokio::time::sleep(ERROR_PAUSE).await;
                    }
                },
            }
        }
        tracing::info!(topic = %self.topic, "stopped reading predictions");
    }

    /// Assigns the partitions of the topic not yet assigned, at `start`.
    async fn assign_new_partitions(&self, assigned: &mut BTreeSet<i32>, start: Offset, feed: &PredictionFeed) {
        let partitions = match self.partitions().await {
            Ok(partitions) => partitions,
            Err(err) => {
                feed.metrics().error(error_type::CONSUME).inc();
                tracing::warn!(topic = %self.topic, %err, "cannot look up the partitions; retrying later");
                return;
            }
        };
        if partitions.is_empty() {
            tracing::info!(topic = %self.topic, "the predictions topic does not exist yet; looking again later");
            return;
        }
        let mut list = TopicPartitionList::new();
        for partition in partitions.into_iter().filter(|p| !assigned.contains(p)) {
            if let Err(err) = list.add_partition_offset(&self.topic, partition, start) {
                tracing::warn!(topic = %self.topic, partition, %err, "cannot add the partition");
            }
        }
        if list.count() == 0 {
            return;
        }
        match self.consumer.incremental_assign(&list) {
            Ok(()) => {
                let added: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(topic = %self.topic, partitions = ?added, from = ?start, "reading predictions");
                assigned.extend(added);
            }
            Err(err) => {
                feed.metrics().error(error_type::CONSUME).inc();
                tracing::warn!(topic = %self.topic, %err, "cannot assign the partitions; retrying later");
            }
        }
    }

    /// Partition ids of the topic (empty when it does not exist).
    async fn partitions(&self) -> Result<Vec<i32>, String> {
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        // Metadata requests block; keep them off the async workers. All topics (None), never one
        // by name: a by-name request may create the topic on brokers that auto-create.
        tokio::task::spawn_blocking(move || {
            let metadata = consumer.fetch_metadata(None, METADATA_TIMEOUT).map_err(|e| e.to_string())?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect())
        })
        .await
        .map_err(|e| format!("metadata task failed: {e}"))?
    }
}

/// A record's value as a prediction of the current schema with a plausible product id.
fn parse(payload: Option<&[u8]>) -> Result<Prediction, String> {
    let payload = payload.ok_or("record has no value")?;
    let prediction: Prediction = serde_json::from_slice(payload).map_err(|e| format!("not a prediction: {e}"))?;
    if prediction.schema != PREDICTION_SCHEMA {
        return Err(format!("schema {} (this version reads schema {PREDICTION_SCHEMA})", prediction.schema));
    }
    super::check_product_id(&prediction.product_id).map_err(|e| format!("product_id {e}"))?;
    Ok(prediction)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"schema":1,"product_id":"BTC-USD","event_time":"2025-11-12T07:20:11Z",
        "probability":0.25,"prediction":0,"threshold":0.31,"model_name":"m","model_version":"1",
        "model_variant":"ml","processing_latency_seconds":0.001,"midprice":100.5}"#;

    #[test]
    fn a_prediction_parses() {
        let prediction = parse(Some(VALID.as_bytes())).unwrap();
        assert_eq!(prediction.product_id, "BTC-USD");
        assert_eq!(prediction.midprice, Some(100.5));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        assert_eq!(parse(None).unwrap_err(), "record has no value");
        assert!(parse(Some(b"not json")).unwrap_err().starts_with("not a prediction"));
        assert!(parse(Some(br#"{"schema":1}"#)).unwrap_err().contains("missing field"));
        let future = VALID.replace(r#""schema":1"#, r#""schema":2"#);
        assert!(parse(Some(future.as_bytes())).unwrap_err().contains("schema 2"));
        let garbage_id = VALID.replace("BTC-USD", "<b>");
        assert!(parse(Some(garbage_id.as_bytes())).unwrap_err().starts_with("product_id"));
    }
}
