//! `spikewatch run` end to end: the real binary on the shared recordings, no broker.

mod common;

use std::collections::BTreeMap;

use spikewatch::config::Config;
use spikewatch::features::offline::build_rows;
use spikewatch::sources::recording;

/// The numeric `key=value` pairs of the final `totals:` line (all but `model=` and
/// `model_fallback=`, which name the model).
fn totals(stdout: &str) -> BTreeMap<String, f64> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("totals:"))
        .unwrap_or_else(|| panic!("no totals line in:\n{stdout}"));
    line.trim_start_matches("totals:")
        .split_whitespace()
        .filter(|pair| !pair.starts_with("model"))
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("not key=value: {pair}"));
            (key.to_string(), value.parse().unwrap_or_else(|_| panic!("not a number: {pair}")))
        })
        .collect()
}

#[test]
fn run_on_the_bundled_recording_exits_zero_and_reports_the_offline_feature_count() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = common::process::Spawned::start(dir.path(), "run", &["run"]).wait_success();
    let totals = totals(&stdout);

    let offline = build_rows(recording::embedded().filter_map(Result::ok), &Config::default().features);
    assert!(totals["features"] > 0.0, "{stdout}");
    assert_eq!(totals["features"] as usize, offline.len(), "{stdout}");
    assert_eq!(totals["ticks"], totals["features"] + totals["rejected"]);
    assert_eq!(totals["skipped_frames"], 0.0, "a tick CSV has no control frames");
    for product in ["BTC-USD", "ETH-USD", "SOL-USD"] {
        assert!(stdout.contains(&format!("last {product} price=")), "per-product last values:\n{stdout}");
    }
}

#[test]
fn run_replays_given_files_of_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let advanced_trade = common::recording(common::ADVANCED_TRADE_RECORDING);
    let exchange = common::recording(common::EXCHANGE_RECORDING);
    let args = ["run", "--input", advanced_trade.to_str().unwrap(), exchange.to_str().unwrap(), "--speed", "max"];
    let stdout = common::process::Spawned::start(dir.path(), "run", &args).wait_success();
    let totals = totals(&stdout);

    let ticks =
        [&advanced_trade, &exchange].into_iter().flat_map(|p| recording::open(p).unwrap().filter_map(Result::ok));
    let offline = build_rows(ticks, &Config::default().features);
    assert_eq!(totals["features"] as usize, offline.len(), "{stdout}");
    assert!(totals["ticks"] > 6_000.0, "{stdout}");
}

#[test]
fn run_rejects_an_invalid_speed() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = common::process::Spawned::start(dir.path(), "run", &["run", "--speed", "0"]);
    let status = run.child.wait().unwrap();
    assert!(!status.success());
    assert!(run.stderr().contains("invalid speed"), "{}", run.stderr());
}

#[test]
fn run_works_from_any_directory_with_the_model_built_into_the_binary() {
    // No config, no model files: the working directory is an empty directory outside the
    // repository, and nothing points at the checkout.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::process::spikewatch_bin())
        .arg("run")
        .current_dir(dir.path())
        .env_remove("SPIKEWATCH_ROOT")
        .env_remove("MODEL_SOURCE")
        .env_remove("SPIKEWATCH_MODEL_SOURCE")
        .env("SPIKEWATCH_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let totals = totals(&stdout);
    assert!(totals["features"] > 0.0, "{stdout}");
    assert_eq!(totals["predictions"], totals["features"], "every feature vector scored:\n{stdout}\n{stderr}");
    assert!(!stderr.contains("predictions disabled"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written to the working directory");
}
