//! Consumer lag and lag-driven scaling against a real broker (tansu) and real predictors.
//!
//! - The lag of the predictor's group is measured from Kafka itself (committed offsets against
//!   each partition's end). tansu reports a partition's high watermark as the base offset of its
//!   last record batch plus one; the measurement reads past it, and the test shows both numbers.
//! - The autoscaler, driven by that measurement through the reconciler (mock API server), scales
//!   the predictor up by the formula at once, and back down only after the stabilization window
//!   once real `spikewatch predict` processes drained the backlog.
//!
//! Needs `source scripts/env` (tansu, ONNX Runtime for the predictors).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;
use spikewatch::transport::kafka::{JsonPublisher, create_producer};
use spikewatch_operator::controller::{Context, FINALIZER, reconcile};
use spikewatch_operator::crd::{ConditionType, ConsumerStatus, find_condition};
use spikewatch_operator::desired::desired_config;
use spikewatch_operator::discovery::Capabilities;
use spikewatch_operator::fixtures::{ApiServer, FakeBroker, path, pipeline_from};
use spikewatch_operator::observe::{ConsumerLag, KafkaConsumerLag};
use spikewatch_operator::topics::{KafkaConnection, KafkaTopicAdmin, TopicAdmin, TopicSpec};
use spikewatch_test_broker::Broker;
use spikewatch_types::config::Config;
use spikewatch_types::domain::{FEATURE_SET_VERSION, FEATURE_VECTOR_SCHEMA, FeatureVector, Features};

use common::processes::{Process, repo_root, spikewatch};

const GROUP: &str = "spikewatch.testns.test.predictor";
const FEATURES: &str = "ticks.features";
const PATIENCE: Duration = Duration::from_secs(180);

async fn create_topics(broker: &Broker, partitions: i32) {
    let topics: Vec<TopicSpec> = ["ticks.raw", FEATURES, "ticks.predictions"]
        .iter()
        .map(|name| TopicSpec { name: name.to_string(), partitions, replication_factor: 1, retention_ms: None })
        .collect();
    KafkaTopicAdmin::default()
        .ensure(&KafkaConnection::plaintext(broker.bootstrap_servers()), &topics)
        .await
        .expect("create topics");
}

/// The committed model's fixture rows (real feature values).
fn feature_rows() -> Vec<Features> {
    let path = repo_root().join("models/artifacts/spikewatch-gbdt/fixtures.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["rows"].as_array().unwrap().iter().map(|r| serde_json::from_value(r["features"].clone()).unwrap()).collect()
}

/// Real product ids whose keys land on every one of four partitions.
const PRODUCTS: [&str; 8] = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "DOGE-USD", "XRP-USD", "LTC-USD", "AVAX-USD"];

/// Publishes `n` feature vectors over eight product keys (so every partition gets some), the
/// way the featurizer does (librdkafka batches them: many records per batch).
async fn publish_features(broker: &Broker, n: usize) {
    let mut kafka =
        spikewatch_types::config::KafkaConfig { bootstrap_servers: broker.bootstrap_servers(), ..Default::default() };
    kafka.topics.features = FEATURES.into();
    let mut publisher = JsonPublisher::new(create_producer(&kafka).unwrap(), FEATURES);
    let rows = feature_rows();
    let base = Utc.with_ymd_and_hms(2025, 11, 14, 0, 53, 39).unwrap();
    for i in 0..n {
        let product = PRODUCTS[i % PRODUCTS.len()].to_string();
        let event_time = base + ChronoDuration::milliseconds(i as i64);
        let vector = FeatureVector {
            schema: FEATURE_VECTOR_SCHEMA,
            product_id: product.clone(),
            event_time,
            receive_time: event_time,
            feature_set: FEATURE_SET_VERSION.into(),
            features: rows[i % rows.len()],
        };
        publisher.publish(&product, &vector).await.unwrap();
    }
    publisher.flush().await.unwrap();
}

/// High watermarks as the broker reports them (what a lag computed from ListOffsets alone sees).
fn reported_ends(broker: &Broker) -> i64 {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap_servers()).create().unwrap();
    (0..4).map(|p| consumer.fetch_watermarks(FEATURES, p, Duration::from_secs(10)).unwrap().1).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_of_a_group_is_measured_past_the_reported_watermark() {
    let broker = Broker::start();
    create_topics(&broker, 4).await;
    let connection = KafkaConnection::plaintext(broker.bootstrap_servers());
    let lag = KafkaConsumerLag::default();

    let empty = lag.lag(&connection, GROUP, FEATURES).await.expect("measure");
    assert_eq!((empty.total(), empty.partitions.len()), (0, 4), "an empty topic has no lag");

    publish_features(&broker, 3500).await;
    let measured = lag.lag(&connection, GROUP, FEATURES).await.expect("measure");
    let reported = reported_ends(&broker);
    println!("3500 records: the broker reports end offsets summing to {reported}, measured {}", measured.total());
    assert_eq!(measured.total(), 3500, "{measured:?}");
    assert!(measured.partitions.iter().all(|p| p.committed.is_none() && p.lag > 0), "{measured:?}");
    assert!(reported <= 3500);

    // The group commits: its lag shrinks by exactly what it committed.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", GROUP)
        .create()
        .unwrap();
    let mut commit = TopicPartitionList::new();
    let first = measured.partitions[0];
    commit.add_partition_offset(FEATURES, first.partition, Offset::Offset(first.end - 10)).unwrap();
    consumer.commit(&commit, CommitMode::Sync).unwrap();
    let after = lag.lag(&connection, GROUP, FEATURES).await.expect("measure");
    assert_eq!(after.partitions[0].committed, Some(first.end - 10));
    assert_eq!(after.partitions[0].lag, 10);
    assert_eq!(after.total(), 3500 - first.end + 10);

    let missing = lag.lag(&connection, GROUP, "no.such.topic").await;
    assert!(missing.is_err(), "{missing:?}");
}

/// A `spikewatch predict` process in the pipeline's consumer group.
fn predictor(broker: &Broker, dir: &std::path::Path, index: usize) -> Process {
    let vp = pipeline();
    let mut config: Config = desired_config(&vp);
    config.kafka.bootstrap_servers = broker.bootstrap_servers();
    config.kafka.properties.insert("session.timeout.ms".into(), "6000".into());
    config.kafka.properties.insert("heartbeat.interval.ms".into(), "500".into());
    config.metrics.bind = "127.0.0.1:0".into();
    config.api.admin_token_file = None;
    config.model.source = repo_root().join("models/artifacts/spikewatch-gbdt").display().to_string();
    let file = dir.join(format!("predictor-{index}.yaml"));
    std::fs::write(&file, serde_yaml::to_string(&config).unwrap()).unwrap();
    Process::spawn(spikewatch(&["predict", "--config", file.to_str().unwrap()]))
}

const WINDOW_SECONDS: u64 = 20;

fn pipeline() -> spikewatch_operator::crd::VolatilityPipeline {
    let mut vp = pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "set-by-the-test:9092", "partitions": 4},
        "autoscaling": {"enabled": true, "minReplicas": 1, "maxReplicas": 4, "lagPerReplica": 1000,
                        "maxScaleUpStep": 4, "stabilizationWindowSeconds": WINDOW_SECONDS, "pollingIntervalSeconds": 1},
        "rollback": {"enabled": false},
    }));
    vp.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    vp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predictor_scales_up_with_the_lag_and_down_only_after_the_window() {
    let broker = Broker::start();
    create_topics(&broker, 4).await;
    let mut vp = pipeline();
    vp.spec.kafka.bootstrap_servers = broker.bootstrap_servers();
    let (client, server) = ApiServer::start();
    server.insert_pipeline(&vp);
    let ctx = Context::test_with_lag(
        client,
        FakeBroker::reachable(),
        Arc::new(KafkaConsumerLag::default()),
        Capabilities::default(),
    );
    let reconcile_now = async || reconcile(Arc::new(server.pipeline()), ctx.clone()).await.expect("reconcile");
    let consumer =
        |server: &ApiServer| -> ConsumerStatus { server.pipeline().status.unwrap().consumer.expect("consumer status") };
    let predictor_path = path("apps/v1", "deployments", "test-predictor");
    let replicas = |server: &ApiServer| server.get(&predictor_path).unwrap()["spec"]["replicas"].as_i64().unwrap();

    reconcile_now().await;
    server.mark_deployments_ready();
    reconcile_now().await;
    assert_eq!(consumer(&server).lag, Some(0));
    assert_eq!(replicas(&server), 1);

    // A backlog of 3500 vectors with no predictor running: ceil(3500 / 1000) = 4 at once.
    publish_features(&broker, 3500).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the next poll is due
    reconcile_now().await;
    let status = consumer(&server);
    assert_eq!((status.lag, status.partitions, status.desired_replicas), (Some(3500), Some(4), 4), "{status:?}");
    // When a poll last measured a lag above one replica's share (the operator's own clock).
    let mut last_high = status.observed_time.clone().unwrap();
    assert_eq!(replicas(&server), 4, "scaled through the scale subresource");
    assert_eq!(
        server.field_owners(&predictor_path, "/spec/replicas"),
        vec!["spikewatch-operator-autoscaler/Update"],
        "the autoscaler owns the replicas"
    );
    let scaling = server.pipeline().status.unwrap();
    let condition = find_condition(&scaling.conditions, ConditionType::Scaling).unwrap();
    assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("True", "ScaledUp"), "{condition:?}");
    assert!(server.event_reasons().contains(&"ScaledUp".to_string()));
    // The operator's own applies leave the autoscaler's replicas alone.
    server.mark_deployments_ready();
    reconcile_now().await;
    assert_eq!(replicas(&server), 4);

    // Two real predictors drain the backlog.
    let dir = tempfile::tempdir().unwrap();
    let _predictors: Vec<Process> = (0..2).map(|i| predictor(&broker, dir.path(), i)).collect();
    let mut waited_for_stabilization = false;
    let deadline = Instant::now() + PATIENCE;
    loop {
        reconcile_now().await;
        let status = consumer(&server);
        if status.lag.is_some_and(|lag| lag > 1000) {
            last_high = status.observed_time.clone().unwrap();
        }
        if status.desired_replicas == 4 && status.lag == Some(0) {
            let c = server.pipeline().status.unwrap();
            let reason = find_condition(&c.conditions, ConditionType::Scaling).unwrap().reason.clone();
            waited_for_stabilization |= reason == "WaitingForStabilization";
        }
        if status.desired_replicas == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no scale-down; status: {status:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let scaled_down = consumer(&server).last_scale_time.expect("scale time");
    let held = (scaled_down.0.as_millisecond() - last_high.0.as_millisecond()) as f64 / 1000.0;
    println!("drained; scaled down {held:.1} s after the last poll with a high lag (window {WINDOW_SECONDS} s)");
    // Status times have whole-second precision, hence the second of slack.
    assert!(held > WINDOW_SECONDS as f64 - 1.0, "scaled down {held} s after the last high lag, inside the window");
    assert!(waited_for_stabilization, "the lower target waited for the window");
    assert_eq!(replicas(&server), 1);
    assert_eq!(consumer(&server).lag, Some(0));
    assert!(server.event_reasons().contains(&"ScaledDown".to_string()));
}
