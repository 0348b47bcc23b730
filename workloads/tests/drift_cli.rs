//! `spikewatch drift` end to end: a recording against the committed model's training rows.

use std::process::Command;

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/artifacts/spikewatch-gbdt");
const DAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/btc-usd-2026-04-06.csv.gz");
const ETH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/eth-usd-2026-04-04.csv.gz");

fn spikewatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spikewatch"));
    cmd.env_remove("CONFIG_PATH");
    cmd
}

/// (feature, PSI) rows of the text table.
fn table(stdout: &str) -> Vec<(String, f64)> {
    stdout
        .lines()
        .skip(2)
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn reports_every_feature_and_writes_a_self_contained_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("drift.html");
    let out = spikewatch().args(["drift", "--model", MODEL, "--input", DAY, "--report"]).arg(&page).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows = table(&stdout);
    // This recorder kept no trades: the trade features have no rows, every other one has a PSI.
    let missing = stdout.lines().filter(|l| l.ends_with("no rows")).count();
    assert_eq!(
        missing,
        spikewatch::domain::FEATURES.iter().filter(|f| f.impute == spikewatch::domain::Impute::Missing).count(),
        "{stdout}"
    );
    assert_eq!(rows.len() + missing, spikewatch::domain::N_FEATURES, "{stdout}");
    assert!(rows.windows(2).all(|w| w[0].1 >= w[1].1), "most shifted first: {stdout}");
    // Ten minutes of one evening: its prices are far from the training days' spread (each day
    // has its own), while its one-second returns are not.
    let psi = |name: &str| rows.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(psi("price") > 1.0, "{stdout}");
    assert!(psi("return_1s") < psi("price") / 10.0, "{stdout}");
    // Each verdict comes with the threshold it applied: a feature the model uses against its
    // training days' drift (limit + 0.25), a feature it ignores against the usual 0.25.
    assert!(stdout.lines().nth(1).unwrap().contains("threshold"), "{stdout}");
    for line in stdout.lines().skip(2).take_while(|l| !l.starts_with("report ")) {
        if line.ends_with("no rows") {
            continue;
        }
        let columns: Vec<&str> = line.split_whitespace().collect();
        let (psi, limit) = (columns[1].parse::<f64>().unwrap(), columns[2]);
        match limit.parse::<f64>() {
            Ok(limit) => {
                let threshold = format!("{:.3}", limit + 0.25);
                assert!(line.contains(&format!("{threshold} (limit + 0.25)")), "{line}");
                let verdict = if psi > limit + 0.25 { "beyond training" } else { "within training" };
                assert!(line.ends_with(verdict), "{line}");
            }
            Err(_) => assert!(
                (psi > 0.25 && line.contains("> 0.25") && line.ends_with("shifted"))
                    || (psi <= 0.25 && !line.ends_with("shifted")),
                "{line}"
            ),
        }
    }
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert_eq!(html.matches("<svg").count(), spikewatch::domain::N_FEATURES);
    assert!(!html.contains("<script") && !html.contains("src="), "no script, no external resource");
}

#[test]
fn fail_above_exits_3_naming_the_features() {
    let out = spikewatch().args(["drift", "--model", MODEL, "--input", ETH, "--fail-above", "0.25"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("PSI above 0.25 for ") && stderr.contains("price"), "ETH prices are not BTC's: {stderr}");
    // The same rows pass a limit no PSI reaches.
    let ok = spikewatch().args(["drift", "--model", MODEL, "--input", ETH, "--fail-above", "1000"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn a_model_without_reference_or_a_bad_limit_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(format!("{MODEL}/baseline.json"), dir.path().join("baseline.json")).unwrap();
    let out = spikewatch().args(["drift", "--input", DAY, "--model"]).arg(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no reference.json"), "{stderr}");
    let out = spikewatch().args(["drift", "--model", MODEL, "--input", DAY, "--fail-above=-1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fail-above must be a non-negative number"));
}

#[test]
fn a_training_day_is_within_the_training_drift_and_the_exchange_feed_is_not() {
    // Every training day is within the drift the model was trained across, by construction.
    let day =
        spikewatch().args(["drift", "--model", MODEL, "--input", DAY, "--fail-beyond-training"]).output().unwrap();
    assert!(day.status.success(), "{}", String::from_utf8_lossy(&day.stderr));
    // The Exchange feed of 2025-11-12 was never trained on: its trades and segments differ.
    const EXCHANGE: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");
    let out =
        spikewatch().args(["drift", "--model", MODEL, "--input", EXCHANGE, "--fail-beyond-training"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("PSI above the training days' drift for ") && stderr.contains("segment_age"), "{stderr}");
    let beyond: Vec<&str> = stdout.lines().filter(|l| l.ends_with("beyond training")).collect();
    assert!(!beyond.is_empty(), "{stdout}");
    assert!(
        beyond.iter().all(|l| !l.starts_with("price") && !l.starts_with("midprice")),
        "ignored features have no limit: {stdout}"
    );
}
