//! The Kafka transport against a real broker (tansu): topic creation, JSON round trip, and the
//! at-least-once stage loop (produce → ack → commit, poison records, resume after restart).

mod common;

use std::time::Duration;

use prometheus::Registry;
use rdkafka::message::Message;
use serde::{Deserialize, Serialize};
use spikewatch::transport::kafka::{
    BatchPolicy, Inbound, JsonPublisher, Outbound, Stage, StageContext, StageMetricNames, StageMetrics, StageSpec,
    StageTotals, TransportError, create_group_consumer, create_producer, ensure_topics,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Number {
    product_id: String,
    n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doubled {
    product_id: String,
    n: u64,
    doubled: u64,
}

#[tokio::test(flavor = "multi_thread")]
async fn ensure_topics_creates_missing_topics_with_configured_partitions_and_is_idempotent() {
    let broker = common::Broker::start();
    let mut kafka = common::kafka_config(&broker);
    kafka.partitions = 4;

    let first = ensure_topics(&kafka, &["ticks.raw", "ticks.features"]).await.expect("CreateTopics");
    assert!(first.iter().all(|t| t.created && t.partitions == 4), "{first:?}");
    for topic in ["ticks.raw", "ticks.features"] {
        assert_eq!(common::topics::partitions(&broker.bootstrap_servers(), topic), vec![0, 1, 2, 3], "{topic}");
    }

    let second = ensure_topics(&kafka, &["ticks.raw", "ticks.features", "ticks.predictions"]).await.unwrap();
    let created: Vec<(&str, bool)> = second.iter().map(|t| (t.name.as_str(), t.created)).collect();
    assert_eq!(created, vec![("ticks.raw", false), ("ticks.features", false), ("ticks.predictions", true)]);
    assert_eq!(common::topics::partitions(&broker.bootstrap_servers(), "ticks.raw").len(), 4, "not re-created");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_records_round_trip_through_a_group_consumer_in_key_order() {
    let broker = common::Broker::start();
    let kafka = common::kafka_config(&broker);
    ensure_topics(&kafka, &["numbers"]).await.unwrap();

    let mut publisher = JsonPublisher::new(create_producer(&kafka).unwrap(), "numbers");
    for n in 0..100u64 {
        let product_id = if n % 2 == 0 { "BTC-USD" } else { "ETH-USD" };
        publisher.publish(product_id, &Number { product_id: product_id.into(), n }).await.unwrap();
    }
    let totals = publisher.close().await.unwrap();
    assert_eq!((totals.enqueued, totals.acknowledged, totals.failed), (100, 100, 0));

    let consumer = create_group_consumer(&kafka, "round-trip", &["numbers"], StageContext::new("test", None)).unwrap();
    let mut received = Vec::new();
    while received.len() < 100 {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("no record within 60 s")
            .unwrap();
        let value: Number = serde_json::from_slice(message.payload().unwrap()).unwrap();
        assert_eq!(message.key_view::<str>().unwrap().unwrap(), value.product_id, "keyed by product");
        received.push(value);
    }
    for product in ["BTC-USD", "ETH-USD"] {
        let ns: Vec<u64> = received.iter().filter(|v| v.product_id == product).map(|v| v.n).collect();
        assert_eq!(ns.len(), 50, "{product}");
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "{product} out of order: {ns:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_acknowledged_count_advances_while_publishing_not_only_at_flush() {
    let broker = common::Broker::start();
    let kafka = common::kafka_config(&broker);
    ensure_topics(&kafka, &["numbers"]).await.unwrap();
    let counter = prometheus::IntCounter::new("acknowledged", "acknowledged records").unwrap();
    let mut publisher =
        JsonPublisher::new(create_producer(&kafka).unwrap(), "numbers").with_acknowledged_counter(counter.clone());

    // A steady trickle far below the in-flight limit: nothing forces a wait for reports, yet the
    // count must follow the broker's acknowledgements (the replay's progress metric reads it).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut n = 0u64;
    while publisher.totals().acknowledged == 0 {
        assert!(std::time::Instant::now() < deadline, "no acknowledgement counted after {n} records");
        publisher.publish("BTC-USD", &Number { product_id: "BTC-USD".into(), n }).await.unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counter.get(), publisher.totals().acknowledged);
    let totals = publisher.close().await.unwrap();
    assert_eq!((totals.enqueued, totals.acknowledged, totals.failed), (n, n, 0));
}

fn stage_metrics(registry: &Registry) -> StageMetrics {
    StageMetrics::register(
        registry,
        StageMetricNames {
            consumed: "test_consumed_total",
            produced: "test_produced_total",
            errors: "test_errors_total",
            processing_seconds: "test_processing_seconds",
        },
    )
    .unwrap()
}

async fn publish_numbers(kafka: &spikewatch::config::KafkaConfig, range: std::ops::Range<u64>) {
    let mut publisher = JsonPublisher::new(create_producer(kafka).unwrap(), "in");
    for n in range {
        let product_id = ["BTC-USD", "ETH-USD", "SOL-USD"][(n % 3) as usize];
        publisher.publish(product_id, &Number { product_id: product_id.into(), n }).await.unwrap();
    }
    publisher.close().await.unwrap();
}

type Running = (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<StageTotals, TransportError>>);

/// Starts the doubling stage (group `doubler`, `in` → `out`); send on the returned channel to stop it.
fn spawn_doubling_stage(kafka: &spikewatch::config::KafkaConfig, metrics: StageMetrics) -> Running {
    let spec = StageSpec {
        name: "doubler",
        group_id: "doubler",
        input_topic: "in",
        output_topic: "out",
        batch: BatchPolicy { max_records: 7, max_wait: Duration::from_millis(20) },
    };
    let stage = Stage::new(kafka, spec, metrics).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(stage.run(
        async move {
            let _ = stopped.await;
        },
        |batch: Vec<Inbound<Number>>| {
            assert!(batch.len() <= 7, "batch of {} exceeds max_records", batch.len());
            batch
                .into_iter()
                .map(|r| Outbound {
                    key: r.value.product_id.clone(),
                    value: Doubled { product_id: r.value.product_id, n: r.value.n, doubled: r.value.n * 2 },
                })
                .collect()
        },
    ));
    (stop, handle)
}

async fn stop_stage((stop, handle): Running) -> StageTotals {
    stop.send(()).unwrap();
    handle.await.unwrap().expect("stage failed")
}

/// Waits until `out` holds a doubled record for every n in `range`; returns all its records.
async fn wait_for_outputs(bootstrap: &str, range: std::ops::Range<u64>) -> Vec<common::topics::Record<Doubled>> {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        common::topics::read_until::<Doubled>(&bootstrap, "out", |records| {
            let seen: std::collections::HashSet<u64> = records.iter().map(|r| r.value.n).collect();
            range.clone().all(|n| seen.contains(&n))
        })
    })
    .await
    .unwrap()
}

/// Waits until consumer group `group` has `members` members and no rebalance in progress.
///
/// tansu 0.6 mishandles a member that leaves while a join is pending: the departed member stays
/// the group's leader and the remaining member never gets an assignment (Kafka elects a new
/// leader). A test that stops a member right after another joined must let the rebalance settle
/// first, or it measures that broker bug instead of the stage.
async fn wait_for_stable_group(bootstrap: &str, group: &str, members: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (bootstrap, name) = (bootstrap.to_string(), group.to_string());
        let (state, current) =
            tokio::task::spawn_blocking(move || common::topics::group_members(&bootstrap, &name)).await.unwrap();
        if state == "Stable" && current.len() == members {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {group} not stable with {members} members: {state} {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the doubling stage until the output topic holds `expect_outputs` records, then stops it.
async fn run_doubling_stage(
    kafka: &spikewatch::config::KafkaConfig,
    metrics: StageMetrics,
    expect_outputs: usize,
) -> StageTotals {
    let running = spawn_doubling_stage(kafka, metrics);
    let bootstrap = kafka.bootstrap_servers.clone();
    tokio::task::spawn_blocking(move || common::topics::read_at_least::<Doubled>(&bootstrap, "out", expect_outputs))
        .await
        .unwrap();
    stop_stage(running).await
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_loop_publishes_outputs_commits_inputs_and_skips_poison_records() {
    let broker = common::Broker::start();
    let bootstrap = broker.bootstrap_servers();
    let kafka = common::kafka_config(&broker);
    ensure_topics(&kafka, &["in", "out"]).await.unwrap();
    publish_numbers(&kafka, 0..40).await;
    // A record that is not a `Number`: counted and skipped, never retried forever.
    let mut poison = JsonPublisher::new(create_producer(&kafka).unwrap(), "in");
    poison.publish("BTC-USD", &serde_json::json!({"unexpected": true})).await.unwrap();
    poison.close().await.unwrap();

    let registry = Registry::new();
    let metrics = stage_metrics(&registry);
    let totals = run_doubling_stage(&kafka, metrics.clone(), 40).await;

    assert_eq!(totals.consumed, 41);
    assert_eq!(totals.skipped, 1);
    assert_eq!(totals.produced, 40);
    assert_eq!(metrics.errors.with_label_values(&["deserialize"]).get(), 1);
    assert_eq!(metrics.errors.with_label_values(&["produce"]).get(), 0);
    assert_eq!(metrics.produced.get(), 40);
    assert_eq!(metrics.processing_seconds.get_sample_count(), 40);

    let outputs = common::topics::read_at_least::<Doubled>(&bootstrap, "out", 40);
    let mut ns: Vec<u64> = outputs.iter().map(|r| r.value.n).collect();
    ns.sort();
    assert_eq!(ns, (0..40).collect::<Vec<_>>());
    assert!(outputs.iter().all(|r| r.value.doubled == 2 * r.value.n && r.key.as_deref() == Some(&r.value.product_id)));

    // Every consumed input (the poison record included) is committed.
    let inputs = common::topics::read_at_least::<serde_json::Value>(&bootstrap, "in", 41);
    assert_eq!(common::topics::committed_offsets(&bootstrap, "doubler", "in"), common::topics::next_offsets(&inputs));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_stage_resumes_after_the_committed_offsets() {
    let broker = common::Broker::start();
    let bootstrap = broker.bootstrap_servers();
    let kafka = common::kafka_config(&broker);
    ensure_topics(&kafka, &["in", "out"]).await.unwrap();

    publish_numbers(&kafka, 0..30).await;
    let first = run_doubling_stage(&kafka, stage_metrics(&Registry::new()), 30).await;
    assert_eq!(first.consumed, 30);

    publish_numbers(&kafka, 30..45).await;
    let second = run_doubling_stage(&kafka, stage_metrics(&Registry::new()), 45).await;
    assert_eq!(second.consumed, 15, "only the records published after the first run's commit");

    let mut ns: Vec<u64> =
        common::topics::read_at_least::<Doubled>(&bootstrap, "out", 45).iter().map(|r| r.value.n).collect();
    ns.sort();
    assert_eq!(ns, (0..45).collect::<Vec<_>>(), "nothing lost, nothing duplicated on a clean restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_joining_and_leaving_a_group_lose_no_record() {
    let broker = common::Broker::start();
    let bootstrap = broker.bootstrap_servers();
    let kafka = common::kafka_config(&broker);
    ensure_topics(&kafka, &["in", "out"]).await.unwrap();

    publish_numbers(&kafka, 0..60).await;
    let first = spawn_doubling_stage(&kafka, stage_metrics(&Registry::new()));
    wait_for_outputs(&bootstrap, 0..60).await;

    // A second member joins: the partitions are revoked (offsets committed) and split.
    let second = spawn_doubling_stage(&kafka, stage_metrics(&Registry::new()));
    publish_numbers(&kafka, 60..120).await;
    wait_for_outputs(&bootstrap, 0..120).await;
    wait_for_stable_group(&bootstrap, "doubler", 2).await;

    // The first member leaves cleanly: the second takes over its partitions.
    let first_totals = stop_stage(first).await;
    publish_numbers(&kafka, 120..180).await;
    let outputs = wait_for_outputs(&bootstrap, 0..180).await;
    let second_totals = stop_stage(second).await;

    assert!(first_totals.consumed >= 60, "{first_totals:?}");
    assert!(second_totals.consumed >= 60, "the remaining member consumed the last 60: {second_totals:?}");
    assert!(outputs.iter().all(|r| r.value.doubled == 2 * r.value.n));
    let duplicates = outputs.len() - 180;
    assert_eq!(first_totals.produced + second_totals.produced, outputs.len() as u64);
    eprintln!("rebalances: {} outputs for 180 inputs ({duplicates} duplicates)", outputs.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_stage_function_stops_the_stage_without_committing_its_batch() {
    let broker = common::Broker::start();
    let bootstrap = broker.bootstrap_servers();
    let kafka = common::kafka_config(&broker);
    ensure_topics(&kafka, &["in", "out"]).await.unwrap();
    publish_numbers(&kafka, 0..10).await;

    let spec = StageSpec {
        name: "failing",
        group_id: "failing",
        input_topic: "in",
        output_topic: "out",
        batch: BatchPolicy { max_records: 100, max_wait: Duration::from_millis(200) },
    };
    let stage = Stage::new(&kafka, spec, stage_metrics(&Registry::new())).unwrap();
    let err = stage
        .try_run(std::future::pending(), |_batch: Vec<Inbound<Number>>| {
            Err::<Vec<Outbound<Doubled>>, _>("model unavailable")
        })
        .await
        .unwrap_err();
    assert!(matches!(&err, TransportError::Process(reason) if reason == "model unavailable"), "{err}");
    assert!(common::topics::committed_offsets(&bootstrap, "failing", "in").is_empty(), "nothing committed");
}
