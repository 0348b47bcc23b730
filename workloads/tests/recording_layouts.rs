//! The recording layouts the readers accept: the flat tick CSV of `data/coinbase/ticks/`, gzip of
//! any layout, and a clear error for an input that yields no tick at all.

mod common;

use std::io::Write;
use std::process::Command;

use common::artifact::repo_root;
use spikewatch::sources::recording;

/// Rows of each committed training file (its README's table).
const TICK_FILES: [(&str, u64, &str); 8] = [
    ("btc-usd-2025-11-30.csv.gz", 8002, "BTC-USD"),
    ("btc-usd-2025-12-05.csv.gz", 8174, "BTC-USD"),
    ("btc-usd-2025-12-06.csv.gz", 53332, "BTC-USD"),
    ("btc-usd-2026-04-04a.csv.gz", 17251, "BTC-USD"),
    ("btc-usd-2026-04-04b.csv.gz", 3108, "BTC-USD"),
    ("btc-usd-2026-04-05.csv.gz", 5970, "BTC-USD"),
    ("btc-usd-2026-04-06.csv.gz", 3578, "BTC-USD"),
    ("eth-usd-2026-04-04.csv.gz", 12872, "ETH-USD"),
];

#[test]
fn every_training_file_reads_to_one_tick_per_row() {
    for (file, rows, product) in TICK_FILES {
        let path = repo_root().join("data/coinbase/ticks").join(file);
        let mut reader = recording::open(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let ticks: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(ticks.len() as u64, rows, "{file}");
        assert_eq!(reader.stats().errors_total(), 0, "{file}");
        assert!(ticks.iter().all(|t| t.product_id == product && t.best_bid <= t.best_ask && t.price > 0.0), "{file}");
        assert!(ticks.windows(2).all(|w| w[0].exchange_time <= w[1].exchange_time), "{file}: time goes forward");
    }
}

#[test]
fn gzip_is_recognized_by_content_for_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let source = repo_root().join("data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");
    let plain: Vec<_> = recording::open(&source).unwrap().filter_map(Result::ok).collect();
    // A misleading name: the magic bytes decide.
    let gz = dir.path().join("exchange.ndjson");
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    encoder.write_all(&std::fs::read(&source).unwrap()).unwrap();
    encoder.finish().unwrap();
    let unzipped: Vec<_> = recording::open(&gz).unwrap().filter_map(Result::ok).collect();
    assert_eq!(unzipped, plain);
    assert_eq!(plain.len(), 5996);
}

#[test]
fn malformed_csv_rows_are_counted_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks.csv");
    std::fs::write(
        &path,
        "ts,product_id,price,best_bid,best_ask\n\
         2026-04-04T03:19:00Z,BTC-USD,66800,66799.5,66800.5\n\
         2026-04-04T03:19:01Z,BTC-USD,-1,66799.5,66800.5\n\
         2026-04-04T03:19:02Z,BTC-USD,66801,66802,66800\n\
         not,a,row\n\
         2026-04-04T03:19:03Z,BTC-USD,66802,66801.5,66802.5\n",
    )
    .unwrap();
    let mut reader = recording::open(&path).unwrap();
    let results: Vec<_> = reader.by_ref().collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    let errors = &reader.stats().errors;
    assert_eq!(errors.get("non_positive_price"), Some(&1), "{errors:?}");
    assert_eq!(errors.get("crossed_book"), Some(&1), "{errors:?}");
    assert_eq!(reader.stats().errors_total(), 3, "{errors:?}");
}

#[test]
fn an_input_without_ticks_is_an_error_naming_the_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("notes.txt");
    std::fs::write(&input, "these are not ticks\nnor is this\n").unwrap();
    for args in [
        vec!["features", "--input", input.to_str().unwrap(), "--output", dir.path().join("t.csv").to_str().unwrap()],
        vec!["run", "--input", input.to_str().unwrap()],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_spikewatch"))
            .args(&args)
            .env("ORT_DYLIB_PATH", common::artifact::require_env("ORT_DYLIB_PATH"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
        assert!(stderr.contains("no tick in 2 lines"), "{args:?}: {stderr}");
        assert!(stderr.contains("flat tick CSV") && stderr.contains("gzip"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_training_csv_feeds_the_offline_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("table.csv");
    let input = repo_root().join("data/coinbase/ticks/btc-usd-2026-04-06.csv.gz");
    let output = Command::new(env!("CARGO_BIN_EXE_spikewatch"))
        .args(["features", "--every-tick", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = std::fs::read_to_string(&out).unwrap();
    let rows = table.lines().count() - 1;
    assert!(rows > 3000 && rows <= 3578, "{rows} rows");
}

#[test]
fn when_every_line_is_rejected_the_reasons_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    std::fs::write(
        &input,
        "ts,product_id,price,best_bid,best_ask\n\
         2026-04-04T03:19:00Z,BTC-USD,66800,66802,66800\n\
         2026-04-04T03:19:01Z,BTC-USD,66801,66803,66801\n\
         2026-04-04T03:19:02Z,BTC-USD,66801,66805,66802\n\
         2026-04-04T03:19:03Z,BTC-USD,0,66799.5,66800.5\n\
         2026-04-04T03:19:04Z,BTC-USD,-1,66799.5,66800.5\n\
         2026-04-04T03:19:05Z,BTC-USD,NaN,66799.5,66800.5\n",
    )
    .unwrap();
    for args in [
        vec!["features", "--input", input.to_str().unwrap(), "--output", dir.path().join("t.csv").to_str().unwrap()],
        vec!["run", "--input", input.to_str().unwrap()],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_spikewatch"))
            .args(&args)
            .env("ORT_DYLIB_PATH", common::artifact::require_env("ORT_DYLIB_PATH"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
        let expected = "no tick in 7 lines (rejected: 3 crossed_book, 2 non_positive_price, 1 non_finite; skipped: ";
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
