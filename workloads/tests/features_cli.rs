//! `spikewatch features` end to end: recordings in, a readable table out.

use std::fs::File;
use std::process::Command;

use parquet::file::reader::{FileReader, SerializedFileReader};

const EXCHANGE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");
const ADVANCED_TRADE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/advanced-trade-ticker-btcusd-2025-11-08.ndjson");

fn spikewatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spikewatch"));
    cmd.env_remove("CONFIG_PATH");
    cmd
}

#[test]
fn writes_a_parquet_table_from_both_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("features.parquet");
    let out = spikewatch()
        .args(["features", "--every-tick", "--input", ADVANCED_TRADE, EXCHANGE, "--output"])
        .arg(&output)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    // 223 Advanced Trade ticks (2025-11-08) then 5,996 Exchange ticks (2025-11-12), in order
    assert!(stdout.contains("6219 rows (one per accepted tick)"), "{stdout}");
    assert!(stdout.contains("0 duplicate, 0 out of order, 0 invalid"), "{stdout}");
    let reader = SerializedFileReader::new(File::open(&output).unwrap()).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 6_219);
}

#[test]
fn flags_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "features:\n  max_gap_secs: 100000000\n").unwrap();
    let output = dir.path().join("features.csv");
    let run = |extra: &[&str]| {
        let out = spikewatch()
            .arg("--config")
            .arg(&config)
            .args(["features", "--every-tick", "--input", EXCHANGE, "--output"])
            .arg(&output)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run(&[]).contains("0 window resets"), "the file's limit spans every gap");
    assert!(run(&["--max-gap-secs", "30"]).contains("3 window resets"), "the flag wins");
    let segments: std::collections::BTreeSet<String> =
        csv::Reader::from_path(&output).unwrap().records().map(|r| r.unwrap()[2].to_string()).collect();
    assert_eq!(segments.into_iter().collect::<Vec<_>>(), vec!["0", "1", "2", "3"]);
}

#[test]
fn the_training_table_has_one_labelled_row_per_evaluated_second() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("table.csv");
    let out = spikewatch().args(["features", "--input", EXCHANGE, "--output"]).arg(&output).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("labelled rows (one per evaluated second)"), "{stdout}");
    let mut reader = csv::Reader::from_path(&output).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..4], ["product_id", "second", "event_time", "segment"]);
    assert_eq!(header.last().map(String::as_str), Some("rv_past_900s"));
    let seconds: Vec<i64> = reader.records().map(|r| r.unwrap()[1].parse().unwrap()).collect();
    assert!(seconds.windows(2).all(|w| w[0] < w[1]), "one row per second, in order");
    assert!(seconds.len() > 100, "{}", seconds.len());
}

#[test]
fn describe_prints_the_feature_set_the_trainer_and_docs_are_checked_against() {
    let out = spikewatch().args(["features", "--describe", "json"]).output().unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = json["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, spikewatch::domain::FEATURE_NAMES);
    // The committed copy the training pipeline reads is this build's feature set.
    let committed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/feature_set.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&committed),
        String::from_utf8_lossy(&out.stdout),
        "models/feature_set.json is stale: run scripts/generate"
    );
    // docs/features.md holds the table this build renders.
    let table = spikewatch().args(["features", "--describe", "markdown"]).output().unwrap();
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/features.md")).unwrap();
    assert!(
        docs.contains(String::from_utf8_lossy(&table.stdout).as_ref()),
        "docs/features.md does not hold the feature table: run scripts/generate"
    );
}

#[test]
fn bad_output_name_or_gap_is_an_error_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("features.xlsx");
    let out = spikewatch().args(["features", "--input", EXCHANGE, "--output"]).arg(&output).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".parquet or .csv"));
    assert!(!output.exists());

    let output = dir.path().join("features.csv");
    let out = spikewatch()
        .args(["features", "--input", EXCHANGE, "--max-gap-secs=-1", "--output"])
        .arg(&output)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_gap_secs"));
}

#[test]
fn a_missing_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = spikewatch()
        .args(["features", "--input", "/nonexistent/recording.ndjson", "--output"])
        .arg(dir.path().join("f.csv"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/recording.ndjson"));
}
