//! The broker dies mid-stream: replay → `ticks.raw` → featurize → `ticks.features` → predict →
//! `ticks.predictions`, each stage a `spikewatch` process, against a tansu broker on storage
//! that outlives it (`Broker::start_persistent`). Once predictions flow, the broker is killed
//! with SIGKILL and restarted on the same port and storage a few seconds later, while the
//! replay is still publishing. The stages are paused (SIGSTOP) for the instant of the kill, so
//! that it lands between requests: tansu's S3 engine itself loses acknowledged records when
//! killed inside a produce request (docs/architecture.md, "Failure tests").
//!
//! What must hold: the replay gets an acknowledgement for every tick and exits cleanly; every
//! acknowledged tick is on `ticks.raw`; every feature vector the offline pipeline computes from
//! the recording is on `ticks.features`; each has a prediction; both consuming stages are still
//! running afterwards and stop cleanly on SIGTERM. Duplicates (at-least-once) are allowed,
//! counted and printed (`--nocapture`), losses are not.
//!
//! Needs `source scripts/env` (tansu, moto's S3 server, ONNX Runtime).

mod common;

use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::process::{Spawned, http_get, metric_value, write_config};
use common::topics::{self, Record};
use serde::de::DeserializeOwned;
use spikewatch::config::Config;
use spikewatch::domain::{FeatureVector, ModelVariant, Prediction, Tick};
use spikewatch::features::offline::build_rows;
use spikewatch::sources::recording;

/// How long the broker stays down: longer than librdkafka's first reconnect attempts, far
/// shorter than `message.timeout.ms` (the default 300 s), so nothing may fail because of it.
const OUTAGE: Duration = Duration::from_secs(3);
/// The kill comes once this many predictions are on the topic: every stage is then running.
const PREDICTIONS_BEFORE_KILL: usize = 100;
/// With the stages paused, the broker is idle once its storage served nothing for this long.
const QUIET: Duration = Duration::from_millis(500);
/// Bound on waiting for a topic to have everything, once the replay is done.
const PATIENCE: Duration = Duration::from_secs(120);

/// A tick as it was recorded (the replay stamps a fresh receive time, so that is left out).
type TickKey = (String, DateTime<Utc>, Option<u64>, Option<u64>, u64);

fn tick_key(tick: &Tick) -> TickKey {
    (tick.product_id.clone(), tick.exchange_time, tick.sequence, tick.trade_id, tick.price.to_bits())
}

fn counts<K: Hash + Eq>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut counts = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Reads `topic` until every key of `expected` is there at least as often as expected (then
/// until it has been idle for a second). `stages` are checked while waiting: a stage that
/// exited fails the test with its log at once. Fails with the missing keys after [`PATIENCE`].
fn read_covering<T: DeserializeOwned, K: Hash + Eq + Clone + std::fmt::Debug>(
    bootstrap: &str,
    topic: &str,
    expected: &HashMap<K, usize>,
    key: impl Fn(&T) -> K,
    stages: &mut [&mut Spawned],
    broker: &spikewatch_test_broker::Broker,
) -> Vec<Record<T>> {
    let wanted: usize = expected.values().sum();
    let mut seen: HashMap<K, usize> = HashMap::new();
    let (mut covered, mut checked) = (0, 0);
    let read = topics::try_read_until::<T>(bootstrap, topic, PATIENCE, |records| {
        for stage in stages.iter_mut() {
            if let Ok(Some(status)) = stage.child.try_wait() {
                panic!("a stage exited ({status}) while {topic} was read:\n{}", stage.stderr());
            }
        }
        for r in &records[checked..] {
            let k = key(&r.value);
            let count = seen.entry(k.clone()).or_default();
            *count += 1;
            if *count <= expected.get(&k).copied().unwrap_or(0) {
                covered += 1;
            }
        }
        checked = records.len();
        covered == wanted
    });
    let records = read.unwrap_or_else(|records| {
        let got = counts(records.iter().map(|r| key(&r.value)));
        let mut missing: Vec<(&K, usize)> = expected
            .iter()
            .filter_map(|(k, &want)| {
                let have = got.get(k).copied().unwrap_or(0);
                (have < want).then_some((k, want - have))
            })
            .collect();
        missing.sort_by_key(|(k, _)| format!("{k:?}"));
        let logs: Vec<String> = stages
            .iter()
            .map(|s| {
                s.stderr()
                    .lines()
                    .filter(|l| !l.contains("\"INFO\"") && !l.contains("librdkafka"))
                    .take(40)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        let broker_log = broker.log();
        let tail: Vec<&str> = broker_log.lines().rev().take(80).collect();
        panic!(
            "{topic}: {} records read, {} of {wanted} expected ones missing, e.g. {:?}\nstage warnings:\n{}\n\
             broker log (last lines, newest first):\n{}",
            records.len(),
            missing.iter().map(|(_, n)| n).sum::<usize>(),
            &missing[..missing.len().min(10)],
            logs.join("\n---\n"),
            tail.join("\n")
        )
    });
    if let Some(k) = counts(records.iter().map(|r| key(&r.value))).into_keys().find(|k| !expected.contains_key(k)) {
        panic!("{topic} has a record nothing should have produced: {k:?}");
    }
    records
}

/// Every sample of `name` in a Prometheus text exposition as `{labels} value`.
fn samples(exposition: &str, name: &str) -> Vec<String> {
    exposition
        .lines()
        .filter(|line| line.starts_with(name) && !line.contains("_bucket"))
        .map(|line| line.trim_start_matches(name).to_string())
        .collect()
}

fn config(broker: &spikewatch_test_broker::Broker) -> Config {
    let mut config = Config { kafka: common::kafka_config(broker), ..Config::default() };
    config.metrics.bind = "127.0.0.1:0".into();
    config.model.source = common::artifact::artifact_dir().display().to_string();
    config.model.variant = ModelVariant::Ml;
    // Batches small enough for many produce → ack → commit cycles around the kill, large enough
    // for the stages to keep up with the replay (each cycle is several object writes in tansu).
    config.kafka.max_batch = 200;
    config.model.max_batch = 64;
    config.model.max_batch_wait_ms = 5;
    config
}

fn start_stage(dir: &Path, name: &str, config_arg: &str) -> Spawned {
    Spawned::start(dir, name, &["--config", config_arg, name])
}

#[test]
fn a_broker_killed_and_restarted_mid_stream_loses_no_acknowledged_tick() {
    common::artifact::require_env("ORT_DYLIB_PATH");
    let mut broker = spikewatch_test_broker::Broker::start_persistent();
    let bootstrap = broker.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&broker);
    let config_path = write_config(dir.path(), &config);
    let config_arg = config_path.to_str().unwrap();
    let topics_config = config.kafka.topics.clone();

    let input = common::recording(common::EXCHANGE_RECORDING);
    let ticks: Vec<Tick> = recording::open(&input).unwrap().filter_map(Result::ok).collect();
    let expected_ticks = counts(ticks.iter().map(tick_key));
    let offline = build_rows(&ticks, &config.features);
    let expected_vectors = counts(offline.iter().map(|r| (r.product_id.clone(), r.event_time)));

    // Consumers first (they create the topics and join their groups), then the replay, paced
    // so that it is still publishing when the broker goes down.
    let mut featurizer = start_stage(dir.path(), "featurize", config_arg);
    let mut predictor = start_stage(dir.path(), "predict", config_arg);
    let input_arg = input.display().to_string();
    let mut replay = Spawned::start(
        dir.path(),
        "replay",
        &["--config", config_arg, "replay", "--input", &input_arg, "--speed", "10", "--max-sleep", "0.004"],
    );
    topics::wait_for_count(&bootstrap, &topics_config.predictions, PREDICTIONS_BEFORE_KILL);

    // Progress when the broker goes down, from the stages' own counters (acknowledged outputs).
    let progress = [
        // Ticks handed to the producer (the replay counts acknowledgements only as it settles them).
        (&mut replay, "spikewatch_replay_ticks_read_total"),
        (&mut featurizer, "spikewatch_featurizer_features_published_total"),
        (&mut predictor, "volatility_consumer_predictions_made_total"),
    ]
    .map(|(stage, metric)| {
        // The replay may be done already (then its summary says what it published).
        stage.child.try_wait().unwrap().is_none().then(|| {
            let (_, body) = http_get(stage.metrics_addr(), "/metrics");
            metric_value(&body, metric).unwrap_or_else(|| panic!("{metric} missing:\n{body}")) as u64
        })
    });
    // The stages are frozen for the instant of the kill, so that it lands between two of the
    // broker's requests rather than inside one: tansu's S3 engine is not crash-consistent inside
    // a produce request (see docs/architecture.md). They resume at once and find the broker gone.
    let replay_running_at_kill = replay.child.try_wait().unwrap().is_none();
    let mut running: Vec<&mut Spawned> = vec![&mut featurizer, &mut predictor];
    if replay_running_at_kill {
        running.push(&mut replay);
    }
    running.iter_mut().for_each(|stage| stage.pause());
    broker.wait_for_quiet_storage(QUIET);
    broker.kill();
    let killed_at = Instant::now();
    running.iter_mut().for_each(|stage| stage.resume());
    std::thread::sleep(OUTAGE);
    broker.restart();
    let down_for = killed_at.elapsed();

    // Every tick acknowledged, nothing failed: the replay exits 0 and says so.
    let replay_out = replay.wait_success();
    let summary = replay_out.lines().find(|l| l.starts_with("replayed:")).unwrap_or_else(|| panic!("{replay_out}"));
    let expected_summary = format!("replayed: ticks={} published={} ", ticks.len(), ticks.len());
    assert!(summary.starts_with(&expected_summary), "{summary} (expected {expected_summary}…)");

    let mut stages = [&mut featurizer, &mut predictor];
    let raw = read_covering(&bootstrap, &topics_config.raw, &expected_ticks, tick_key, &mut stages, &broker);
    let features = read_covering(
        &bootstrap,
        &topics_config.features,
        &expected_vectors,
        |v: &FeatureVector| (v.product_id.clone(), v.event_time),
        &mut stages,
        &broker,
    );
    let predictions = read_covering(
        &bootstrap,
        &topics_config.predictions,
        &expected_vectors,
        |p: &Prediction| (p.product_id.clone(), p.event_time),
        &mut stages,
        &broker,
    );
    for p in &predictions {
        assert_eq!(p.value.prediction, u8::from(p.value.probability >= p.value.threshold));
        assert!((0.0..=1.0).contains(&p.value.probability), "{:?}", p.value);
    }

    // Both stages came through the outage, and report what it cost them.
    let mut errors = Vec::new();
    for (stage, metric) in
        [(&mut featurizer, "spikewatch_featurizer_errors_total"), (&mut predictor, "volatility_consumer_errors_total")]
    {
        let (status, body) = http_get(stage.metrics_addr(), "/metrics");
        assert_eq!(status, 200);
        errors.push(format!("{metric}{}", samples(&body, metric).join(" ")));
    }
    for stage in [&mut featurizer, &mut predictor] {
        let status = stage.terminate();
        assert!(status.success(), "SIGTERM is a clean shutdown: {status}\n{}", stage.stderr());
    }

    let raw_duplicates = raw.len() - ticks.len();
    let feature_duplicates = features.len() - offline.len();
    let prediction_duplicates = predictions.len() - offline.len();
    eprintln!(
        "broker restart: killed after {:?} ticks sent, {:?} feature vectors and {:?} predictions acknowledged \
         (replay still running: {replay_running_at_kill}), down for {:.1} s; afterwards {} ticks for {} acknowledged \
         ({raw_duplicates} duplicates), {} feature vectors for {} offline rows ({feature_duplicates} duplicates), \
         {} predictions ({prediction_duplicates} duplicates); stage errors: {}",
        progress[0],
        progress[1],
        progress[2],
        down_for.as_secs_f64(),
        raw.len(),
        ticks.len(),
        features.len(),
        offline.len(),
        predictions.len(),
        errors.join("; ")
    );
}
