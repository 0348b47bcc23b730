//! A featurizer killed (SIGKILL) three times mid-stream and restarted each time emits only
//! vectors that `spikewatch features` computes offline from the same input: every vector on
//! `ticks.features`, duplicates included, is identical to an offline row, and every offline row
//! is there. The comparison is by whole vectors (every feature the vector carries, by name, bit
//! for bit), so it holds whatever the feature set is.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use spikewatch::config::Config;
use spikewatch::domain::FeatureVector;

/// Two hours of BTC-USD and ETH-USD without a gap: far more than the warm-up horizon, so the
/// later restarts rebuild from the horizon and not from the start of the topic.
const INPUTS: [&str; 2] = ["btc-usd-2026-04-04a.csv.gz", "eth-usd-2026-04-04.csv.gz"];

/// The two recordings merged into one tick CSV in event-time order, as a live feed delivers
/// them (every `ts` has the same fixed-width layout, so text order is time order).
fn merged_input(dir: &Path) -> PathBuf {
    use std::io::Read;
    let mut header = String::new();
    let mut rows = Vec::new();
    for name in INPUTS {
        let file = std::fs::File::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/coinbase/ticks").join(name));
        let mut text = String::new();
        flate2::read::GzDecoder::new(file.unwrap()).read_to_string(&mut text).unwrap();
        let mut lines = text.lines();
        header = lines.next().unwrap().to_string();
        rows.extend(lines.map(str::to_string));
    }
    rows.sort_by(|a, b| a.split(',').next().cmp(&b.split(',').next()));
    let path = dir.join("btc-eth-2026-04-04.csv");
    std::fs::write(&path, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    path
}

/// (product, event time in ns) → the feature values of each offline row at that key.
/// The offline rows by (product, event time): each feature's value, `None` where missing.
type Offline = HashMap<(String, i64), Vec<HashMap<String, Option<f64>>>>;

/// The table `spikewatch features` writes for the inputs, as CSV (shortest round-trip floats).
fn offline_rows(dir: &Path, config_arg: &str, input: &Path) -> (Offline, usize) {
    let table = dir.join("offline.csv");
    let args = [
        "--config",
        config_arg,
        "features",
        "--every-tick",
        "--input",
        input.to_str().unwrap(),
        "--output",
        table.to_str().unwrap(),
    ];
    common::process::Spawned::start(dir, "features", &args).wait_success();
    let mut reader = csv::Reader::from_path(&table).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} column"));
    let (product, time) = (column("product_id"), column("event_time"));
    let mut rows = Offline::new();
    let mut count = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let values = header.iter().enumerate().map(|(i, name)| (name.clone(), record[i].parse::<f64>().ok())).collect();
        rows.entry((record[product].to_string(), record[time].parse().unwrap())).or_default().push(values);
        count += 1;
    }
    (rows, count)
}

/// The vector's features by name, `None` where missing.
fn features_of(vector: &FeatureVector) -> Vec<(String, Option<f64>)> {
    let mut whole = serde_json::to_value(vector).unwrap();
    let serde_json::Value::Object(map) = whole["features"].take() else { panic!("features are not a JSON object") };
    map.into_iter().map(|(name, value)| (name, value.as_f64())).collect()
}

/// Index of the offline row at the vector's key whose every feature is bit-identical to the
/// vector's, if any.
fn matching_row(offline: &Offline, vector: &FeatureVector) -> Option<usize> {
    let key = (vector.product_id.clone(), vector.event_time.timestamp_nanos_opt().unwrap());
    let features = features_of(vector);
    offline.get(&key)?.iter().position(|row| {
        features.iter().all(|(name, value)| {
            let offline = row.get(name).unwrap_or_else(|| panic!("the offline table has no column {name}"));
            offline.map(f64::to_bits) == value.map(f64::to_bits)
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_featurizer_killed_three_times_emits_only_the_offline_vectors() {
    let broker = common::Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { kafka: common::kafka_config(&broker), ..Config::default() };
    config.metrics.bind = "127.0.0.1:0".into();
    // Small batches: many commit points, so the kills land between and inside them.
    config.kafka.max_batch = 50;
    let config_path = common::process::write_config(dir.path(), &config);
    let config_arg = config_path.to_str().unwrap();
    let input = merged_input(dir.path());
    let (offline, offline_count) = offline_rows(dir.path(), config_arg, &input);
    assert!(offline_count > 25_000, "{offline_count} offline rows");

    // The two hours at 200× (≈ 36 s), so that the featurizer works on a stream that goes on
    // while it is killed and restarted.
    let replay_args =
        ["--config", config_arg, "replay", "--speed", "200", "--max-sleep", "0.05", "--input", input.to_str().unwrap()];
    let mut replay = common::process::Spawned::start(dir.path(), "replay", &replay_args);

    let bootstrap = broker.bootstrap_servers();
    let topic = config.kafka.topics.features.clone();
    let mut logs = Vec::new();
    // Killed once these many vectors of each product (of 17,251 BTC-USD, 12,872 ETH-USD) are on
    // the topic, restarted each time. The last kill comes when both products are over 75
    // minutes into their data, more than the horizon, with a third of the replay still to
    // come: the last restart rebuilds both partitions from the horizon.
    for (run, at_least) in [(1_000usize, 0usize), (6_000, 4_000), (11_000, 8_500)].into_iter().enumerate() {
        let mut featurizer = common::process::Spawned::start(
            dir.path(),
            &format!("featurize-{run}"),
            &["--config", config_arg, "featurize"],
        );
        let (bootstrap, topic) = (bootstrap.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            let (mut btc, mut eth, mut counted) = (0, 0, 0);
            common::topics::wait_until::<serde_json::Value>(&bootstrap, &topic, |records| {
                for record in &records[counted..] {
                    match record.key.as_deref() {
                        Some("BTC-USD") => btc += 1,
                        Some("ETH-USD") => eth += 1,
                        _ => {}
                    }
                }
                counted = records.len();
                btc >= at_least.0 && eth >= at_least.1
            })
        })
        .await
        .unwrap();
        featurizer.kill_hard();
        logs.push(featurizer.stderr());
    }
    replay.wait_success();
    let mut last = common::process::Spawned::start(dir.path(), "featurize-3", &["--config", config_arg, "featurize"]);

    // Until every offline row has an identical vector on the topic.
    let online = {
        let (bootstrap, topic, offline) = (bootstrap.clone(), topic.clone(), offline.clone());
        tokio::task::spawn_blocking(move || {
            let mut covered: HashMap<((String, i64), usize), ()> = HashMap::new();
            let mut checked = 0;
            common::topics::read_until::<FeatureVector>(&bootstrap, &topic, move |records| {
                for record in &records[checked..] {
                    if let Some(row) = matching_row(&offline, &record.value) {
                        let key =
                            (record.value.product_id.clone(), record.value.event_time.timestamp_nanos_opt().unwrap());
                        covered.insert((key, row), ());
                    }
                }
                checked = records.len();
                covered.len() == offline_count
            })
        })
        .await
        .unwrap()
    };
    let status = last.terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}\n{}", last.stderr());
    logs.push(last.stderr());

    let mismatched: Vec<&FeatureVector> =
        online.iter().map(|record| &record.value).filter(|vector| matching_row(&offline, vector).is_none()).collect();
    assert!(
        mismatched.is_empty(),
        "{} of {} vectors match no offline row, e.g. {:?}",
        mismatched.len(),
        online.len(),
        &mismatched[..mismatched.len().min(2)]
    );

    // The restarts rebuilt their windows, and at least one from the horizon rather than from
    // the start of its partition (the recordings are longer than the horizon).
    let rebuilds: Vec<serde_json::Value> = logs
        .iter()
        .flat_map(|log| log.lines())
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["message"] == "feature windows rebuilt")
        .collect();
    let bounded: Vec<&serde_json::Value> =
        rebuilds.iter().filter(|event| event["from_partition_start"] == false).collect();
    assert!(bounded.len() >= 2, "both partitions rebuilt from the horizon at the last restart: {rebuilds:?}");
    let read_again: u64 = rebuilds.iter().filter_map(|event| event["ticks"].as_u64()).sum();
    eprintln!(
        "3 kills: {} vectors on the topic for {offline_count} offline rows ({} duplicates, 0 different); \
         {} partition rebuilds ({} from the horizon), {read_again} ticks read again",
        online.len(),
        online.len() - offline_count,
        rebuilds.len(),
        bounded.len(),
    );
    for event in &bounded {
        eprintln!("  rebuilt from the horizon: {event}");
    }
}
