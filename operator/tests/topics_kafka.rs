//! Topic management against a real Kafka-protocol broker (tansu): create with partitions,
//! grow partitions, idempotent re-apply, delete.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use spikewatch_operator::topics::{KafkaConnection, KafkaTopicAdmin, TopicAdmin, TopicChange, TopicError, TopicSpec};
use spikewatch_test_broker::Broker;

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec { name: name.into(), partitions, replication_factor: 1, retention_ms: None }
}

/// Partition counts as a plain client sees them (independent of the code under test).
fn partitions_on_broker(broker: &Broker, topic: &str) -> Option<usize> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap_servers()).create().expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none()).map(|t| t.partitions().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topics_are_created_with_their_partitions() {
    let broker = Broker::start();
    let connection = KafkaConnection::plaintext(broker.bootstrap_servers());
    let admin = KafkaTopicAdmin::default();

    let desired = [spec("ticks.raw", 3), spec("ticks.features", 2)];
    let report = admin.ensure(&connection, &desired).await.expect("ensure");

    assert_eq!(report.applied, vec![TopicChange::Create(desired[0].clone()), TopicChange::Create(desired[1].clone())]);
    assert_eq!(partitions_on_broker(&broker, "ticks.raw"), Some(3));
    assert_eq!(partitions_on_broker(&broker, "ticks.features"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_applying_the_same_topics_changes_nothing() {
    let broker = Broker::start();
    let connection = KafkaConnection::plaintext(broker.bootstrap_servers());
    let admin = KafkaTopicAdmin::default();
    let desired = [spec("ticks.raw", 3)];

    admin.ensure(&connection, &desired).await.expect("first ensure");
    let second = admin.ensure(&connection, &desired).await.expect("second ensure");

    assert!(second.applied.is_empty(), "second apply changed {:?}", second.applied);
    assert_eq!(partitions_on_broker(&broker, "ticks.raw"), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_never_shrunk() {
    let broker = Broker::start();
    let connection = KafkaConnection::plaintext(broker.bootstrap_servers());
    let admin = KafkaTopicAdmin::default();
    admin.ensure(&connection, &[spec("ticks.raw", 3)]).await.expect("create");

    let shrink = admin.ensure(&connection, &[spec("ticks.raw", 1)]).await.expect("shrink is reported, not an error");

    assert!(shrink.applied.is_empty(), "{:?}", shrink.applied);
    assert_eq!(shrink.shrink_refused.len(), 1);
    assert_eq!(shrink.shrink_refused[0].observed, 3);
    assert_eq!(partitions_on_broker(&broker, "ticks.raw"), Some(3));
}

/// tansu 0.6 does not implement the CreatePartitions request (its ApiVersions answer omits
/// it), so against tansu growing a topic must surface as the broker's refusal, naming the
/// operation, and never as "unreachable" (which would make the reconciler retry forever as if
/// the network were down). Growth itself is covered by the plan's unit tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_partitions_on_a_broker_without_create_partitions_is_a_clear_refusal() {
    let broker = Broker::start();
    let connection = KafkaConnection::plaintext(broker.bootstrap_servers());
    let admin = KafkaTopicAdmin::default();
    admin.ensure(&connection, &[spec("ticks.raw", 2)]).await.expect("create");

    let err = admin.ensure(&connection, &[spec("ticks.raw", 4)]).await.expect_err("tansu lacks CreatePartitions");

    match &err {
        TopicError::Rejected { operation, topic, reason } => {
            assert_eq!(*operation, "grow partitions of");
            assert_eq!(topic, "ticks.raw");
            assert!(reason.contains("not supported"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(partitions_on_broker(&broker, "ticks.raw"), Some(2));
}

/// Retention goes into CreateTopics' configs and reads back through DescribeConfigs. tansu 0.6 answers DescribeConfigs but not
/// AlterConfigs, so changing the retention of an existing topic is refused there, clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_set_at_creation() {
    let broker = Broker::start();
    let connection = KafkaConnection::plaintext(broker.bootstrap_servers());
    let admin = KafkaTopicAdmin::default();
    let desired = [TopicSpec { retention_ms: Some(3_600_000), ..spec("ticks.raw", 1) }];

    let first = admin.ensure(&connection, &desired).await.expect("create with retention");
    assert_eq!(first.applied, vec![TopicChange::Create(desired[0].clone())]);
    let again = admin.ensure(&connection, &desired).await.expect("re-apply with retention");
    assert!(again.applied.is_empty(), "{:?}", again.applied);

    let changed = [TopicSpec { retention_ms: Some(7_200_000), ..spec("ticks.raw", 1) }];
    match admin.ensure(&connection, &changed).await {
        Err(TopicError::Rejected { operation, .. }) => assert_eq!(operation, "set retention of"),
        other => panic!("expected tansu to refuse AlterConfigs, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_topics_disappear_and_deleting_again_is_fine() {
    let broker = Broker::start();
    let connection = KafkaConnection::plaintext(broker.bootstrap_servers());
    let admin = KafkaTopicAdmin::default();
    admin.ensure(&connection, &[spec("ticks.raw", 1)]).await.expect("create");

    let topics = vec!["ticks.raw".to_string()];
    admin.delete(&connection, &topics).await.expect("delete");
    assert_eq!(partitions_on_broker(&broker, "ticks.raw"), None);
    admin.delete(&connection, &topics).await.expect("deleting a missing topic is not an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_reported_as_such() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap();
    let connection = KafkaConnection::plaintext(addr.to_string());
    let admin = KafkaTopicAdmin::with_timeout(Duration::from_secs(2));

    let err = admin.ensure(&connection, &[spec("ticks.raw", 1)]).await.expect_err("no broker");
    assert!(matches!(err, TopicError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.reason(), "BrokerUnreachable");
}
