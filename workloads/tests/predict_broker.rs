//! The predictor through a real broker (tansu): every feature vector on `ticks.features` gets a
//! prediction on `ticks.predictions`, also when the predictor process is killed with SIGKILL
//! mid-stream and restarted (at least once: duplicates are allowed and counted, losses are not).
//! Needs `source scripts/env` (tansu, ONNX Runtime).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use common::artifact::{artifact_dir, fixtures};
use prometheus::Registry;
use spikewatch::config::Config;
use spikewatch::domain::{FEATURE_SET_VERSION, FEATURE_VECTOR_SCHEMA, FeatureVector, ModelVariant, Prediction};
use spikewatch::model::ModelHandle;
use spikewatch::pipeline::predict::{PredictorMetrics, run_kafka};
use spikewatch::transport::kafka::{JsonPublisher, TransportError, create_producer, ensure_topics};
use tokio_util::sync::CancellationToken;

type Key = (String, DateTime<Utc>);

fn require_ort() {
    if std::env::var("ORT_DYLIB_PATH").map_or(true, |v| v.is_empty()) {
        panic!("ORT_DYLIB_PATH is not set: run `source scripts/env` (after `scripts/setup`) before the tests");
    }
}

fn test_config(broker: &common::Broker) -> Config {
    let mut config = Config { kafka: broker.kafka_config(), ..Config::default() };
    config.metrics.bind = "127.0.0.1:0".into();
    config.model.source = artifact_dir().display().to_string();
    config.model.variant = ModelVariant::Ml;
    // Small micro-batches: many commit points, so a kill lands between or inside them.
    config.model.max_batch = 16;
    config.model.max_batch_wait_ms = 5;
    config
}

/// `n` vectors over two products, each with a distinct event time; the expected probability by key.
fn vectors(n: usize, offset: usize) -> (Vec<FeatureVector>, HashMap<Key, f64>) {
    let rows = fixtures();
    let base = Utc.with_ymd_and_hms(2025, 11, 14, 0, 53, 39).unwrap();
    let mut expected = HashMap::new();
    let vectors = (offset..offset + n)
        .map(|i| {
            let (features, probability) = rows[i % rows.len()];
            let product = if i % 2 == 0 { "BTC-USD" } else { "ETH-USD" };
            let event_time = base + ChronoDuration::milliseconds(i as i64);
            expected.insert((product.to_string(), event_time), probability);
            FeatureVector {
                schema: FEATURE_VECTOR_SCHEMA,
                product_id: product.into(),
                event_time,
                receive_time: event_time,
                feature_set: FEATURE_SET_VERSION.into(),
                features,
            }
        })
        .collect();
    (vectors, expected)
}

async fn publish(config: &Config, vectors: &[FeatureVector]) {
    let mut publisher =
        JsonPublisher::new(create_producer(&config.kafka).unwrap(), config.kafka.topics.features.clone());
    for vector in vectors {
        publisher.publish(&vector.product_id, vector).await.unwrap();
    }
    publisher.flush().await.unwrap();
}

/// Reads `ticks.predictions` until every expected key has a prediction.
async fn predictions_covering(config: &Config, expected: &HashMap<Key, f64>) -> Vec<Prediction> {
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let topic = config.kafka.topics.predictions.clone();
    let expected: HashSet<Key> = expected.keys().cloned().collect();
    tokio::task::spawn_blocking(move || {
        let (mut missing, mut checked) = (expected, 0);
        common::topics::read_until::<Prediction>(&bootstrap, &topic, move |records| {
            for r in &records[checked..] {
                missing.remove(&(r.value.product_id.clone(), r.value.event_time));
            }
            checked = records.len();
            missing.is_empty()
        })
    })
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.value)
    .collect()
}

fn check(predictions: &[Prediction], expected: &HashMap<Key, f64>) -> usize {
    let mut distinct = HashSet::new();
    for p in predictions {
        let key = (p.product_id.clone(), p.event_time);
        let want = expected.get(&key).unwrap_or_else(|| panic!("prediction for an unknown feature vector {key:?}"));
        assert!((p.probability - want).abs() <= 1e-5, "{key:?}: {} vs trainer {want}", p.probability);
        assert_eq!(p.prediction, u8::from(p.probability >= p.threshold));
        assert_eq!(p.model_variant, ModelVariant::Ml);
        distinct.insert(key);
    }
    assert_eq!(distinct.len(), expected.len(), "every feature vector has a prediction");
    predictions.len() - distinct.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_feature_vector_gets_a_prediction() {
    require_ort();
    let broker = common::Broker::start();
    let config = test_config(&broker);
    ensure_topics(&config.kafka, &[&config.kafka.topics.features, &config.kafka.topics.predictions]).await.unwrap();
    let (input, expected) = vectors(600, 0);
    publish(&config, &input).await;

    let model = ModelHandle::load(&config.model).await.unwrap();
    let registry = Registry::new();
    let metrics = PredictorMetrics::register(&registry).unwrap();
    let shutdown = CancellationToken::new();
    let predictor = tokio::spawn({
        let (config, metrics, shutdown) = (config.clone(), metrics.clone(), shutdown.clone());
        async move { run_kafka(&config, model, metrics, shutdown).await }
    });

    let predictions = predictions_covering(&config, &expected).await;
    shutdown.cancel();
    let totals = predictor.await.unwrap().expect("predictor failed");
    let duplicates = check(&predictions, &expected);
    assert_eq!(duplicates, 0, "no restart, no rebalance: no duplicates");
    assert_eq!(totals.consumed, 600);
    assert_eq!(totals.produced, 600);
    assert_eq!(metrics.stage.consumed.get(), 600);
    assert_eq!(metrics.stage.produced.get(), 600);
    let text = spikewatch::telemetry::server::render(&registry);
    assert!(text.contains("volatility_consumer_predictions_made_total 600"), "{text}");
    assert!(text.contains("volatility_consumer_processing_seconds_count 600"), "{text}");
    assert!(metrics.lag_seconds.get() > 0.0, "event times are in the past");
}

/// A `spikewatch predict` process; SIGKILLed on drop if still running.
struct Predictor {
    child: Child,
}

impl Predictor {
    fn start(config_path: &Path, log: &Path) -> Predictor {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_spikewatch"))
            .arg("--config")
            .arg(config_path)
            .arg("predict")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Predictor { child }
    }

    fn kill_hard(&mut self) {
        self.child.kill().unwrap(); // SIGKILL: no flush, no commit
        self.child.wait().unwrap();
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Predictor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_predictor_restarted_leaves_no_feature_without_a_prediction() {
    require_ort();
    let broker = common::Broker::start();
    let config = test_config(&broker);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
    ensure_topics(&config.kafka, &[&config.kafka.topics.features, &config.kafka.topics.predictions]).await.unwrap();

    // The first part is published before the kill (large enough that the kill lands while
    // the predictor is still working through it), the second while the predictor is down.
    let (first, mut expected) = vectors(10_000, 0);
    let (second, expected_second) = vectors(2_000, 10_000);
    expected.extend(expected_second);
    publish(&config, &first).await;

    let mut predictor = Predictor::start(&config_path, &dir.path().join("predict-1.log"));
    {
        let (bootstrap, topic) = (config.kafka.bootstrap_servers.clone(), config.kafka.topics.predictions.clone());
        tokio::task::spawn_blocking(move || common::topics::wait_for_count(&bootstrap, &topic, 1)).await.unwrap();
    }
    predictor.kill_hard();
    let at_kill = {
        let (bootstrap, topic) = (config.kafka.bootstrap_servers.clone(), config.kafka.topics.predictions.clone());
        tokio::task::spawn_blocking(move || {
            common::topics::read_until::<Prediction>(&bootstrap, &topic, |_| true).len()
        })
        .await
        .unwrap()
    };
    publish(&config, &second).await;

    let mut restarted = Predictor::start(&config_path, &dir.path().join("predict-2.log"));
    let predictions = predictions_covering(&config, &expected).await;
    let status = restarted.terminate();
    let log = std::fs::read_to_string(dir.path().join("predict-2.log")).unwrap_or_default();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}\n{log}");
    let duplicates = check(&predictions, &expected);
    eprintln!(
        "predictor restart: {at_kill} predictions when killed; {} predictions for {} vectors in the end, {duplicates} duplicates",
        predictions.len(),
        expected.len()
    );
}

/// Outputs are produced while earlier ones are still unacknowledged (pipelining), and offsets
/// are committed only for the batches whose outputs were all acknowledged. A predictor whose
/// outputs cannot be delivered (its output topic does not exist) stops with an error and
/// leaves the committed offset where the acknowledged prefix ended; a restart then predicts
/// every input that was not predicted before.
#[tokio::test(flavor = "multi_thread")]
async fn undelivered_predictions_do_not_advance_the_committed_offset() {
    require_ort();
    let broker = common::Broker::start();
    let config = test_config(&broker);
    let kafka = &config.kafka;
    ensure_topics(kafka, &[&kafka.topics.features, &kafka.topics.predictions]).await.unwrap();
    let committed = || {
        let (bootstrap, group, topic) =
            (kafka.bootstrap_servers.clone(), kafka.predictor_group_id.clone(), kafka.topics.features.clone());
        tokio::task::spawn_blocking(move || {
            common::topics::committed_offsets(&bootstrap, &group, &topic).into_iter().map(|(_, o)| o).sum::<i64>()
        })
    };
    let run = |config: Config| async move {
        let model = ModelHandle::load(&config.model).await.unwrap();
        let metrics = PredictorMetrics::register(&Registry::new()).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
            async move { run_kafka(&config, model, metrics, shutdown).await }
        });
        (task, metrics, shutdown)
    };

    // 1. 600 vectors, all predicted and committed.
    let (first, mut expected) = vectors(600, 0);
    publish(&config, &first).await;
    let (task, metrics, shutdown) = run(config.clone()).await;
    predictions_covering(&config, &expected).await;
    shutdown.cancel();
    task.await.unwrap().expect("predictor failed");
    assert_eq!(metrics.stage.produced.get(), 600);
    assert_eq!(committed().await.unwrap(), 600, "everything acknowledged is committed at shutdown");

    // 2. 400 more, with a missing output topic: every delivery fails (after 2 s).
    let (second, expected_second) = vectors(400, 600);
    expected.extend(expected_second);
    publish(&config, &second).await;
    let mut failing = config.clone();
    failing.kafka.create_topics = false;
    failing.kafka.topics.predictions = "ticks.predictions.missing".into();
    failing.kafka.properties.insert("allow.auto.create.topics".into(), "false".into());
    failing.kafka.properties.insert("message.timeout.ms".into(), "2000".into());
    let (task, metrics, _shutdown) = run(failing).await;
    let err = tokio::time::timeout(std::time::Duration::from_secs(120), task)
        .await
        .expect("the predictor did not stop on undelivered outputs")
        .unwrap()
        .expect_err("undelivered outputs must stop the predictor");
    assert!(matches!(err, TransportError::Produce { .. }), "{err}");
    assert!(metrics.stage.consumed.get() > 0, "the predictor consumed the new vectors");
    assert_eq!(metrics.stage.produced.get(), 0);
    assert_eq!(committed().await.unwrap(), 600, "no offset past an undelivered output is committed");

    // 3. A restart with the output topic back predicts the 400 as well.
    let (task, _metrics, shutdown) = run(config.clone()).await;
    let predictions = predictions_covering(&config, &expected).await;
    shutdown.cancel();
    task.await.unwrap().expect("predictor failed");
    assert_eq!(check(&predictions, &expected), 0, "the failed run published nothing to ticks.predictions");
    assert_eq!(committed().await.unwrap(), 1_000);
}

/// Throughput of one predictor through the broker (a measurement, not a test: run it with
/// `cargo test -p spikewatch --release --test predict_broker -- --ignored --nocapture throughput`).
/// The input topic is filled first; the clock runs from the predictor's start until every
/// prediction has been read back, so it includes the consumer group join (≈3 s with tansu).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: prints messages/s; run explicitly (see docs/benchmarks.md)"]
async fn throughput() {
    require_ort();
    let n: usize = std::env::var("PREDICT_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let broker = common::Broker::start();
    let mut config = test_config(&broker);
    config.model.max_batch = 256;
    config.kafka.partitions = 1;
    ensure_topics(&config.kafka, &[&config.kafka.topics.features, &config.kafka.topics.predictions]).await.unwrap();
    let (input, _) = vectors(n, 0);
    publish(&config, &input).await;

    let model = ModelHandle::load(&config.model).await.unwrap();
    let metrics = PredictorMetrics::register(&Registry::new()).unwrap();
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    let predictor = tokio::spawn({
        let (config, metrics, shutdown) = (config.clone(), metrics.clone(), shutdown.clone());
        async move { run_kafka(&config, model, metrics, shutdown).await }
    });
    // Poll the produced counter (acknowledged outputs) rather than reading the topic back.
    let mut first_output = None;
    while metrics.stage.produced.get() < n as u64 {
        if first_output.is_none() && metrics.stage.produced.get() > 0 {
            first_output = Some((std::time::Instant::now(), metrics.stage.produced.get()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let finished = std::time::Instant::now();
    let total = finished.duration_since(started);
    shutdown.cancel();
    predictor.await.unwrap().unwrap();
    let (first_at, first_count) = first_output.unwrap_or((started, 0));
    let steady = (n as u64 - first_count) as f64 / finished.duration_since(first_at).as_secs_f64().max(1e-9);
    eprintln!(
        "predictor throughput: {n} messages in {:.2} s incl. group join ({:.0} msg/s); steady state after the first ack: {steady:.0} msg/s",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
    );
}
