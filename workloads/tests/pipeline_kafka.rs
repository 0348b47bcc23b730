//! replay → `ticks.raw` → featurize → `ticks.features` through a real broker (tansu), compared
//! with the offline pipeline on the same recordings.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::Registry;
use spikewatch::config::Config;
use spikewatch::domain::FeatureVector;
use spikewatch::features::offline::{TrainingRow, build_rows};
use spikewatch::pipeline::featurize::{FeaturizerMetrics, run_kafka as featurize};
use spikewatch::pipeline::pacing::Speed;
use spikewatch::pipeline::replay::{ReplayMetrics, ReplayOptions, run_kafka as replay};
use spikewatch::sources::recording;
use spikewatch::telemetry::server::Health;
use tokio_util::sync::CancellationToken;

fn offline_rows(inputs: &[PathBuf], config: &Config) -> Vec<TrainingRow> {
    let ticks = inputs.iter().flat_map(|path| recording::open(path).unwrap().filter_map(Result::ok));
    build_rows(ticks, &config.features)
}

fn test_config(broker: &common::Broker) -> Config {
    let mut config = Config { kafka: common::kafka_config(broker), ..Config::default() };
    config.metrics.bind = "127.0.0.1:0".into();
    config
}

type Key = (String, DateTime<Utc>);

fn key_counts(keys: impl Iterator<Item = Key>) -> HashMap<Key, usize> {
    let mut counts = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_recordings_yield_the_offline_pipelines_feature_vectors() {
    let broker = common::Broker::start();
    let config = test_config(&broker);
    // Both layouts, in chronological order (the Advanced Trade file is four days older).
    let inputs =
        vec![common::recording(common::ADVANCED_TRADE_RECORDING), common::recording(common::EXCHANGE_RECORDING)];
    let offline = offline_rows(&inputs, &config);
    assert!(offline.len() > 6_000, "offline rows: {}", offline.len());

    let options = ReplayOptions { inputs: inputs.clone(), speed: Speed::Max, max_sleep: Duration::ZERO, repeat: false };
    let replay_metrics = ReplayMetrics::register(&Registry::new()).unwrap();
    let ready = Health::default();
    let (replayed, published) =
        replay(&config, &options, &replay_metrics, &ready, CancellationToken::new()).await.unwrap();
    assert!(ready.is_ready(), "ticks were handed to the producer");
    assert_eq!(replayed.skipped_frames, 4, "the Exchange file's subscription ack and the rest are skipped");
    assert_eq!(published.acknowledged, replayed.ticks);
    assert_eq!(replay_metrics.ticks_published.get(), replayed.ticks);

    let shutdown = CancellationToken::new();
    let registry = Registry::new();
    let metrics = FeaturizerMetrics::register(&registry).unwrap();
    let featurizer = tokio::spawn({
        let (config, metrics, shutdown) = (config.clone(), metrics.clone(), shutdown.clone());
        async move { featurize(&config, metrics, shutdown).await }
    });

    let bootstrap = broker.bootstrap_servers();
    let topic = config.kafka.topics.features.clone();
    let expected = offline.len();
    let online = tokio::task::spawn_blocking(move || {
        common::topics::read_at_least::<FeatureVector>(&bootstrap, &topic, expected)
    })
    .await
    .unwrap();
    shutdown.cancel();
    let totals = featurizer.await.unwrap().expect("featurizer failed");

    assert_eq!(online.len(), offline.len(), "one feature vector per offline row, no more");
    assert_eq!(totals.consumed, replayed.ticks);
    assert_eq!(totals.produced as usize, offline.len());
    assert_eq!(metrics.features_computed.get() as usize, offline.len());
    let rejected: u64 = ["duplicate", "out_of_order", "invalid_tick", "time_out_of_range"]
        .iter()
        .map(|kind| metrics.ticks_rejected.with_label_values(&[kind]).get())
        .sum();
    assert_eq!(rejected + offline.len() as u64, replayed.ticks, "every tick is either a vector or a counted rejection");

    // One product → one partition → the same order as offline, and the same values.
    for (online, offline) in online.iter().zip(&offline) {
        assert_eq!(online.key.as_deref(), Some(offline.product_id.as_str()));
        assert_eq!((&online.value.product_id, online.value.event_time), (&offline.product_id, offline.event_time));
        assert_eq!(online.value.features, offline.features, "at {}", offline.event_time);
    }
    let rendered = spikewatch::telemetry::server::render(&registry);
    assert!(rendered.contains("spikewatch_featurizer_features_published_total"), "{rendered}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_featurizer_restarted_loses_no_feature_vector() {
    let broker = common::Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&broker);
    // Small batches: many commit points, so a kill lands between or inside them.
    config.kafka.max_batch = 20;
    let config_path = common::process::write_config(dir.path(), &config);
    let config_arg = config_path.to_str().unwrap();

    // The recording in two halves: the second is published only while the featurizer is down.
    let text = std::fs::read_to_string(common::recording(common::EXCHANGE_RECORDING)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let first_path = dir.path().join("first.ndjson");
    let second_path = dir.path().join("second.ndjson");
    std::fs::write(&first_path, first.join("\n") + "\n").unwrap();
    std::fs::write(&second_path, second.join("\n") + "\n").unwrap();
    let offline = offline_rows(&[first_path.clone(), second_path.clone()], &config);
    // Several ticks may share an event time: compare as multisets.
    let expected = key_counts(offline.iter().map(|r| (r.product_id.clone(), r.event_time)));

    let replay_args = |path: &PathBuf, pace: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["--config".into(), config_arg.into(), "replay".into(), "--input".into()];
        args.push(path.display().to_string());
        args.extend(pace.iter().map(|s| s.to_string()));
        args
    };
    let bootstrap = broker.bootstrap_servers();
    let features_topic = config.kafka.topics.features.clone();

    // First half at 5× the original pace (≈15 s), with the featurizer consuming as it arrives;
    // killed (SIGKILL: no flush, no commit) once it has published a few hundred vectors.
    let first_args = replay_args(&first_path, &["--speed", "5", "--max-sleep", "0.02"]);
    let mut first_replay = common::process::Spawned::start(
        dir.path(),
        "replay-1",
        &first_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut featurizer =
        common::process::Spawned::start(dir.path(), "featurize-1", &["--config", config_arg, "featurize"]);
    {
        let (bootstrap, topic) = (bootstrap.clone(), features_topic.clone());
        tokio::task::spawn_blocking(move || common::topics::wait_for_count(&bootstrap, &topic, 300)).await.unwrap();
    }
    featurizer.kill_hard();
    let replay_running_at_kill = first_replay.child.try_wait().unwrap().is_none();
    first_replay.wait_success();
    let before_restart = {
        let (bootstrap, topic) = (bootstrap.clone(), features_topic.clone());
        tokio::task::spawn_blocking(move || {
            common::topics::read_until::<serde_json::Value>(&bootstrap, &topic, |_| true).len()
        })
        .await
        .unwrap()
    };

    // The second half is published while no featurizer runs.
    let second_args = replay_args(&second_path, &["--speed", "max"]);
    common::process::Spawned::start(
        dir.path(),
        "replay-2",
        &second_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .wait_success();
    let mut restarted =
        common::process::Spawned::start(dir.path(), "featurize-2", &["--config", config_arg, "featurize"]);

    let online = {
        let (bootstrap, topic, expected) = (bootstrap.clone(), features_topic.clone(), expected.clone());
        let wanted = offline.len();
        tokio::task::spawn_blocking(move || {
            // Done once every offline vector has an online counterpart (duplicates beyond the
            // offline multiplicity do not count).
            let mut seen: HashMap<Key, usize> = HashMap::new();
            let mut covered = 0;
            let mut checked = 0;
            common::topics::read_until::<FeatureVector>(&bootstrap, &topic, move |records| {
                for r in &records[checked..] {
                    let key = (r.value.product_id.clone(), r.value.event_time);
                    let count = seen.entry(key.clone()).or_default();
                    *count += 1;
                    if *count <= expected.get(&key).copied().unwrap_or(0) {
                        covered += 1;
                    }
                }
                checked = records.len();
                covered == wanted
            })
        })
        .await
        .unwrap()
    };
    // The restarted featurizer reports its work on /metrics.
    let addr = restarted.metrics_addr();
    let (status, body) = common::process::http_get(addr, "/metrics");
    assert_eq!(status, 200);
    let published = common::process::metric_value(&body, "spikewatch_featurizer_features_published_total");
    assert!(published.is_some_and(|n| n >= 1.0), "{body}");
    for name in ["spikewatch_featurizer_ticks_consumed_total", "spikewatch_featurizer_consumer_lag_seconds"] {
        assert!(common::process::metric_value(&body, name).is_some(), "{name} missing:\n{body}");
    }
    assert!(body.contains("spikewatch_featurizer_processing_seconds_bucket"), "{body}");
    assert_eq!(common::process::http_get(addr, "/health").0, 200);

    let status = restarted.terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}\n{}", restarted.stderr());

    let got = key_counts(online.iter().map(|r| (r.value.product_id.clone(), r.value.event_time)));
    let missing: Vec<(&Key, usize)> = expected
        .iter()
        .filter_map(|(key, &want)| {
            let have = got.get(key).copied().unwrap_or(0);
            (have < want).then(|| (key, want - have))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "feature vectors lost: {} keys, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(online.len() >= offline.len());
    let duplicates = online.len() - offline.len();
    eprintln!(
        "featurizer killed after {before_restart} vectors (replay still running: {replay_running_at_kill}); \
         after the restart {} vectors for {} offline rows: {duplicates} duplicates",
        online.len(),
        offline.len()
    );
}
