//! `spikewatch serve` with `api.predictions_from_kafka`: `/predictions/stream` and
//! `/predictions/latest` serve the predictions topic of a real broker (tansu), outside any
//! consumer group; records that are not predictions are counted and skipped;
//! `/predictions/quality` judges what the topic carries.
//! Needs `source scripts/env` (tansu, ONNX Runtime for the served model).

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use spikewatch::config::Config;
use spikewatch::domain::{ModelVariant, PREDICTION_SCHEMA, Prediction};
use spikewatch::transport::kafka::{JsonPublisher, create_producer, ensure_topics};
use tokio_util::sync::CancellationToken;

use common::market::{judged_directly, market, served_numbers};
use common::process::{Spawned, http_get};
use common::sse::Reader;

/// Upper bound on waiting for something that must happen; reached only when something is broken.
const PATIENCE: Duration = Duration::from_secs(120);

fn prediction(product: &str, model_version: &str) -> Prediction {
    Prediction {
        schema: PREDICTION_SCHEMA,
        product_id: product.into(),
        event_time: Utc::now(),
        probability: 0.75,
        prediction: 1,
        threshold: 0.5,
        model_name: "spikewatch-gbdt".into(),
        model_version: model_version.into(),
        model_variant: ModelVariant::Ml,
        processing_latency_seconds: 0.002,
        midprice: Some(91_000.5),
    }
}

fn serve_config(broker: &common::Broker) -> Config {
    let mut config = Config { kafka: common::kafka_config(broker), ..Config::default() };
    config.api.bind = "127.0.0.1:0".into();
    config.api.predictions_from_kafka = true;
    config.model.source = common::artifact::artifact_dir().display().to_string();
    config
}

/// `spikewatch serve` with `config`, written to a temporary directory that lives as long as the
/// returned guard.
fn spawn_serve(config: &Config) -> (tempfile::TempDir, Spawned) {
    let dir = tempfile::tempdir().unwrap();
    let path = common::process::write_config(dir.path(), config);
    let serve = Spawned::start(dir.path(), "serve", &["--config", path.to_str().unwrap(), "serve"]);
    (dir, serve)
}

/// Publishes predictions of both products tagged `tag`, one pair every 200 ms, until cancelled:
/// the reader starts at the end of the topic, so the test cannot know which record is its first.
fn keep_publishing(config: &Config, tag: &'static str) -> CancellationToken {
    let stop = CancellationToken::new();
    let mut publisher =
        JsonPublisher::new(create_producer(&config.kafka).unwrap(), config.kafka.topics.predictions.clone());
    let token = stop.clone();
    tokio::spawn(async move {
        while !token.is_cancelled() {
            for product in ["ETH-USD", "BTC-USD"] {
                publisher.publish(product, &prediction(product, tag)).await.unwrap();
            }
            publisher.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    stop
}

/// The next streamed prediction of `tag` (earlier ones are skipped).
async fn next_tagged<S, E>(stream: &mut Reader<S>, tag: &str) -> Prediction
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let message = stream.next_event().await.expect("the stream stays open");
        assert_eq!(message.event.as_deref(), Some("prediction"), "{message:?}");
        let prediction: Prediction = serde_json::from_value(message.json()).unwrap();
        if prediction.model_version == tag {
            return prediction;
        }
        assert!(Instant::now() < deadline, "no prediction tagged {tag} was streamed");
    }
}

fn malformed_count(addr: std::net::SocketAddr) -> f64 {
    let (_, metrics) = http_get(addr, "/metrics");
    let series = r#"volatility_api_feed_errors_total{error_type="malformed"} "#;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
}

/// Consumer groups the broker knows (ListGroups).
fn groups(bootstrap: &str) -> Vec<String> {
    let client: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let list = client.fetch_group_list(None, Duration::from_secs(10)).expect("ListGroups");
    list.groups().iter().map(|g| g.name().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_streams_the_predictions_topic_and_skips_what_is_not_a_prediction() {
    common::artifact::require_env("ORT_DYLIB_PATH");
    let broker = common::Broker::start();
    let config = serve_config(&broker);
    ensure_topics(&config.kafka, &[&config.kafka.topics.predictions]).await.unwrap();
    let (_dir, mut serve) = spawn_serve(&config);
    let addr = serve.metrics_addr();

    let response = reqwest::get(format!("http://{addr}/predictions/stream?product_id=BTC-USD")).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = Reader::new(response.bytes_stream());
    let before = keep_publishing(&config, "before");
    let first = next_tagged(&mut stream, "before").await;
    before.cancel();
    assert_eq!(first.product_id, "BTC-USD", "the filter holds back ETH-USD");
    assert_eq!(first.midprice, Some(91_000.5));

    // Not predictions: skipped and counted, and the stream goes on.
    let producer = create_producer(&config.kafka).unwrap();
    let topic = config.kafka.topics.predictions.as_str();
    let mut future_schema = serde_json::to_value(prediction("BTC-USD", "future")).unwrap();
    future_schema["schema"] = 2.into();
    let garbage = ["not json".to_string(), r#"{"schema":1}"#.to_string(), future_schema.to_string()];
    for payload in &garbage {
        producer.send(FutureRecord::to(topic).key("BTC-USD").payload(payload), Duration::from_secs(10)).await.unwrap();
    }
    let after = keep_publishing(&config, "after");
    let later = next_tagged(&mut stream, "after").await;
    after.cancel();
    assert_eq!(later.product_id, "BTC-USD");
    assert_eq!(malformed_count(addr), garbage.len() as f64);

    let (status, body) = http_get(addr, "/predictions/latest?product_id=BTC-USD,ETH-USD");
    assert_eq!(status, 200, "{body}");
    let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(latest["predictions"].as_array().unwrap().len(), 2, "{body}");

    assert_eq!(groups(&broker.bootstrap_servers()), Vec::<String>::new(), "serve joined no consumer group");
    assert!(serve.terminate().success(), "serve stops with a stream open:\n{}", serve.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_predictions_topic_created_after_start_is_found_and_read_from_its_beginning() {
    common::artifact::require_env("ORT_DYLIB_PATH");
    let broker = common::Broker::start();
    let config = serve_config(&broker);
    let (_dir, mut serve) = spawn_serve(&config);
    let addr = serve.metrics_addr();
    let topic = config.kafka.topics.predictions.clone();

    // The reader looked and found nothing; it must not have created the topic itself.
    let deadline = Instant::now() + PATIENCE;
    while !serve.stderr().contains("the predictions topic does not exist yet") {
        assert!(Instant::now() < deadline, "the reader never looked for the topic:\n{}", serve.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(common::topics::partitions(&broker.bootstrap_servers(), &topic).is_empty(), "the reader created the topic");

    let response = reqwest::get(format!("http://{addr}/predictions/stream")).await.unwrap();
    let mut stream = Reader::new(response.bytes_stream());
    ensure_topics(&config.kafka, &[&topic]).await.unwrap();
    let mut publisher = JsonPublisher::new(create_producer(&config.kafka).unwrap(), topic.clone());
    publisher.publish("SOL-USD", &prediction("SOL-USD", "only")).await.unwrap();
    publisher.flush().await.unwrap();

    // Published once, before the reader assigned the new partitions: read from their beginning.
    let streamed = next_tagged(&mut stream, "only").await;
    assert_eq!(streamed.product_id, "SOL-USD");
    assert!(serve.terminate().success(), "{}", serve.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_judges_the_predictions_of_the_topic_as_the_evaluator_does() {
    common::artifact::require_env("ORT_DYLIB_PATH");
    let broker = common::Broker::start();
    let config = serve_config(&broker);
    ensure_topics(&config.kafka, &[&config.kafka.topics.predictions]).await.unwrap();
    let (_dir, mut serve) = spawn_serve(&config);
    let addr = serve.metrics_addr();

    // The reader starts at the end of the topic: once a warm-up prediction has streamed, it
    // reads everything published after.
    let response = reqwest::get(format!("http://{addr}/predictions/stream")).await.unwrap();
    let mut stream = Reader::new(response.bytes_stream());
    let warm_up = keep_publishing(&config, "warm-up");
    next_tagged(&mut stream, "warm-up").await;
    warm_up.cancel();

    // Fifteen minutes of a market, published at once as a predictor catching up would.
    let predictions = market("SOL-USD", 900, 2, 7);
    let mut publisher =
        JsonPublisher::new(create_producer(&config.kafka).unwrap(), config.kafka.topics.predictions.clone());
    for p in &predictions {
        publisher.publish(&p.product_id, p).await.unwrap();
    }
    publisher.flush().await.unwrap();

    let expected = judged_directly(&predictions);
    assert!(expected[0]["judged"].as_u64().unwrap() > 100, "{expected:?}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = http_get(addr, "/predictions/quality?product_id=SOL-USD");
        if status == 200 {
            let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
            if served_numbers(&reply) == expected {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never judged as the evaluator does ({expected:?}): {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(serve.terminate().success(), "{}", serve.stderr());
}
