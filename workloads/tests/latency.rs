//! Tick → prediction latency under a steady load (measurements, not tests: both are ignored and
//! print percentiles; see docs/benchmarks.md "Tick → prediction latency"):
//!
//! ```sh
//! source scripts/env
//! cargo test --release -p spikewatch --test latency -- --ignored --nocapture --test-threads 1
//! ```
//!
//! A load generator stamps each tick with the current time as its receive time (what the live
//! feed client does) and sends it at a fixed rate (`LATENCY_RATE` ticks/s, default 1,000, for
//! `LATENCY_SECONDS`, default 20). The latency of a tick is the time from that receive time
//! until its prediction is published:
//!
//! - through the broker (`ticks.raw` → featurizer → `ticks.features` → predictor →
//!   `ticks.predictions`, both stages in this process, one partition): until the prediction was
//!   read back from `ticks.predictions` (so it includes the reader's own fetch), and, at the
//!   broker's millisecond resolution, until the prediction record's create time (the moment
//!   the predictor handed it to its producer);
//! - in process (`spikewatch run`'s topology): until the predict stage published the prediction
//!   to the live feed (received by a feed subscriber).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::artifact::artifact_dir;
use prometheus::Registry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use spikewatch::config::Config;
use spikewatch::domain::{ModelVariant, Prediction, Tick};
use spikewatch::model::ModelHandle;
use spikewatch::pipeline::featurize::{FeaturizerMetrics, run_kafka as featurize};
use spikewatch::pipeline::local::{LocalOptions, LocalSource, run_with_source};
use spikewatch::pipeline::predict::{PredictorMetrics, local_predictor_for, run_kafka as predict};
use spikewatch::pipeline::replay::{ReplayOptions, ReplayTotals};
use spikewatch::prediction_feed::{Delivery, FeedMetrics, PredictionFeed};
use spikewatch::sources::recording;
use spikewatch::transport::kafka::{JsonPublisher, create_producer, ensure_topics};
use spikewatch::transport::memory::LinkSender;
use tokio_util::sync::CancellationToken;

type Key = (String, DateTime<Utc>);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Endless ticks: the bundled recording, pass after pass, each pass shifted in exchange time
/// (and trade ids, sequence numbers) to just after the previous one, so every tick is new.
/// Ticks are sent in order, so the feature engine accepts every one.
struct TickSource {
    recording: Vec<Tick>,
    next: usize,
    span: TimeDelta,
}

impl TickSource {
    fn new() -> TickSource {
        let recording: Vec<Tick> = recording::embedded().filter_map(Result::ok).collect();
        let span = recording.last().unwrap().exchange_time - recording[0].exchange_time + TimeDelta::seconds(1);
        TickSource { recording, next: 0, span }
    }

    /// The next tick, received now.
    fn next(&mut self) -> Tick {
        let pass = (self.next / self.recording.len()) as i32;
        let mut tick = self.recording[self.next % self.recording.len()].clone();
        // Plus one nanosecond per tick sent: ticks of the recording that share an exchange time
        // get distinct ones, so each prediction names the one tick it was made for.
        tick.exchange_time += self.span * pass + TimeDelta::nanoseconds(self.next as i64);
        self.next += 1;
        tick.trade_id = tick.trade_id.map(|id| id + pass as u64 * 10_000_000);
        tick.sequence = tick.sequence.map(|s| s + pass as u64 * 10_000_000_000);
        tick.receive_time = Utc::now();
        tick
    }
}

/// Receive times of the ticks sent while measuring, by the key of their prediction.
type Sent = Arc<Mutex<HashMap<Key, DateTime<Utc>>>>;

/// Sends ticks at `rate`/s to `link` for `warmup` (not measured), then for `measure` (their
/// receive times go to `sent`). Returns how many were measured.
async fn generate(rate: u64, warmup: Duration, measure: Duration, sent: Sent, link: LinkSender<Tick>) -> u64 {
    let mut source = TickSource::new();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let started = tokio::time::Instant::now();
    let mut measured = 0;
    loop {
        interval.tick().await;
        let elapsed = started.elapsed();
        if elapsed >= warmup + measure {
            return measured;
        }
        let tick = source.next();
        if elapsed >= warmup {
            sent.lock().unwrap().insert((tick.product_id.clone(), tick.exchange_time), tick.receive_time);
            measured += 1;
        }
        if link.send(tick).await.is_err() {
            return measured;
        }
    }
}

/// Settings to try without rebuilding: `LATENCY_PROPERTIES=linger.ms=1,fetch.wait.max.ms=10`
/// (extra librdkafka properties of every client), `LATENCY_FEATURIZE_WAIT_MS` and
/// `LATENCY_PREDICT_WAIT_MS` (the stages' batch waits).
fn tune(config: &mut Config) {
    if let Ok(properties) = std::env::var("LATENCY_PROPERTIES") {
        for pair in properties.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').expect("LATENCY_PROPERTIES: key=value,...");
            config.kafka.properties.insert(key.into(), value.into());
        }
    }
    config.kafka.max_batch_wait_ms = env_or("LATENCY_FEATURIZE_WAIT_MS", config.kafka.max_batch_wait_ms);
    config.model.max_batch_wait_ms = env_or("LATENCY_PREDICT_WAIT_MS", config.model.max_batch_wait_ms);
    eprintln!(
        "settings: properties {:?}, featurizer batch wait {} ms, predictor batch wait {} ms",
        config.kafka.properties, config.kafka.max_batch_wait_ms, config.model.max_batch_wait_ms
    );
}

fn report(what: &str, mut latencies: Vec<f64>, expected: u64) {
    assert!(!latencies.is_empty(), "{what}: no prediction of a measured tick arrived");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize] * 1e3;
    eprintln!(
        "{what}: {} of {expected} measured ticks: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
    );
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: prints latency percentiles; run explicitly (see docs/benchmarks.md)"]
async fn through_the_broker() {
    let rate = env_or("LATENCY_RATE", 1_000);
    let measure = Duration::from_secs(env_or("LATENCY_SECONDS", 20));
    let broker = common::Broker::start();
    let mut config = Config { kafka: common::kafka_config(&broker), ..Config::default() };
    config.kafka.partitions = 1;
    config.metrics.bind = "127.0.0.1:0".into();
    config.model.source = artifact_dir().display().to_string();
    config.model.variant = ModelVariant::Ml;
    tune(&mut config);
    let topics = &config.kafka.topics;
    ensure_topics(&config.kafka, &[&topics.raw, &topics.features, &topics.predictions]).await.unwrap();

    let shutdown = CancellationToken::new();
    let featurizer = tokio::spawn({
        let (config, shutdown) = (config.clone(), shutdown.clone());
        async move { featurize(&config, FeaturizerMetrics::register(&Registry::new()).unwrap(), shutdown).await }
    });
    let model = ModelHandle::load(&config.model).await.unwrap();
    let predictor = tokio::spawn({
        let (config, shutdown) = (config.clone(), shutdown.clone());
        async move { predict(&config, model, PredictorMetrics::register(&Registry::new()).unwrap(), shutdown).await }
    });

    // The reader: every prediction with the time it was read and its record's create time.
    let reading = CancellationToken::new();
    let reader = tokio::task::spawn_blocking({
        let (bootstrap, topic, reading) =
            (config.kafka.bootstrap_servers.clone(), topics.predictions.clone(), reading.clone());
        move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", "latency-reader")
                .set("enable.auto.commit", "false")
                .set("fetch.wait.max.ms", "10")
                .create()
                .unwrap();
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition_offset(&topic, 0, Offset::Beginning).unwrap();
            consumer.assign(&assignment).unwrap();
            let mut seen: Vec<(Key, DateTime<Utc>, Option<i64>)> = Vec::new();
            while !reading.is_cancelled() {
                let Some(message) = consumer.poll(Duration::from_millis(50)) else { continue };
                let read_at = Utc::now();
                let message = message.unwrap();
                let prediction: Prediction = serde_json::from_slice(message.payload().unwrap()).unwrap();
                seen.push(((prediction.product_id, prediction.event_time), read_at, message.timestamp().to_millis()));
            }
            seen
        }
    });

    // Warm-up: the consumer groups join (≈3 s with tansu) and the backlog drains.
    let sent: Sent = Arc::default();
    let (link, mut ticks) = spikewatch::transport::memory::link::<Tick>(1024);
    let forwarder = tokio::spawn({
        let mut publisher = JsonPublisher::new(create_producer(&config.kafka).unwrap(), topics.raw.clone());
        async move {
            while let Some(tick) = ticks.recv().await {
                publisher.publish(&tick.product_id, &tick).await.unwrap();
            }
            publisher.flush().await.unwrap();
        }
    });
    let measured = generate(rate, Duration::from_secs(8), measure, sent.clone(), link).await;
    forwarder.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    reading.cancel();
    let seen = reader.await.unwrap();
    shutdown.cancel();
    featurizer.await.unwrap().unwrap();
    predictor.await.unwrap().unwrap();

    let sent = sent.lock().unwrap();
    let (mut read_back, mut created) = (Vec::new(), Vec::new());
    let mut first = HashMap::new();
    for (key, read_at, create_ms) in seen {
        if first.contains_key(&key) {
            continue; // a duplicate: the first copy counts
        }
        if let Some(received) = sent.get(&key) {
            read_back.push(seconds(read_at - *received));
            if let Some(ms) = create_ms {
                created.push((ms - received.timestamp_millis()) as f64 / 1e3);
            }
        }
        first.insert(key, ());
    }
    eprintln!("through the broker at {rate} ticks/s for {} s:", measure.as_secs());
    report("  receive → prediction read back", read_back, measured);
    report("  receive → prediction record created (ms resolution)", created, measured);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: prints latency percentiles; run explicitly (see docs/benchmarks.md)"]
async fn in_process() {
    let rate = env_or("LATENCY_RATE", 1_000);
    let measure = Duration::from_secs(env_or("LATENCY_SECONDS", 20));
    let mut config = Config::default();
    config.model.source = artifact_dir().display().to_string();
    config.model.variant = ModelVariant::Ml;
    let model = ModelHandle::load(&config.model).await.unwrap();
    let feed = PredictionFeed::new(1 << 16, FeedMetrics::register(&Registry::new()).unwrap());
    let mut subscription = feed.subscribe();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(delivery) = subscription.next().await {
            match delivery {
                Delivery::Prediction(p) => seen.push(((p.product_id.clone(), p.event_time), Utc::now())),
                Delivery::Dropped { missed, .. } => panic!("the watcher fell behind: {missed} predictions lost"),
            }
        }
        seen
    });

    let mut options = LocalOptions::new(LocalSource::Replay(ReplayOptions {
        inputs: Vec::new(),
        speed: spikewatch::pipeline::pacing::Speed::Max,
        max_sleep: Duration::ZERO,
        repeat: false,
    }));
    options.summary_interval = Duration::from_secs(3600);
    options.predictor = local_predictor_for(model);
    assert!(options.predictor.is_some());
    options.feed = Some(feed.clone());
    let sent: Sent = Arc::default();
    let measured = Arc::new(Mutex::new(0));
    let totals = run_with_source(&config, options, std::io::sink(), {
        let (sent, measured) = (sent.clone(), measured.clone());
        move |link| async move {
            let n = generate(rate, Duration::from_secs(1), measure, sent, link).await;
            *measured.lock().unwrap() = n;
            Ok(ReplayTotals::default())
        }
    })
    .await
    .unwrap();
    feed.close();
    let seen = watcher.await.unwrap();
    assert!(totals.predictions > 0);

    let sent = sent.lock().unwrap();
    let latencies: Vec<f64> =
        seen.iter().filter_map(|(key, at)| sent.get(key).map(|received| seconds(*at - *received))).collect();
    eprintln!("in process (`spikewatch run` topology) at {rate} ticks/s for {} s:", measure.as_secs());
    report("  receive → prediction published to the live feed", latencies, *measured.lock().unwrap());
}
