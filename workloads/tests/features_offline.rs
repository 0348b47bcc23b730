//! Offline tables: the training table's seconds and labels on a hand-made fixture against their
//! definitions, and the Parquet/CSV files read back with the parquet and csv crates.

use std::fs::File;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_schema::DataType;
use chrono::{DateTime, TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{FEATURE_NAMES, Feature, Feed, Tick};
use spikewatch::features::offline::{Rows, TrainingRow, build_table};
use spikewatch::sinks::table::{self, TableError};
use spikewatch::sources::recording;

/// 27 minutes of SOL-USD trades with the book (the flat layout with trade columns).
const TRADES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/sol-usd-2025-11-27.csv.gz");
/// A recorder that kept neither trades nor sizes.
const NO_TRADES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/btc-usd-2026-04-06.csv.gz");
const NS: i64 = 1_000_000_000;

fn at(secs: f64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 12, 0, 0, 0).unwrap() + chrono::Duration::nanoseconds((secs * 1e9) as i64)
}

/// The fixtures' time zero, in seconds since the Unix epoch.
fn epoch() -> i64 {
    at(0.0).timestamp()
}

fn tick(product: &str, secs: f64, mid: f64, id: u64) -> Tick {
    Tick {
        schema: 1,
        product_id: product.into(),
        exchange_time: at(secs),
        receive_time: at(secs),
        price: mid,
        best_bid: mid - 0.5,
        best_ask: mid + 0.5,
        best_bid_size: Some(2.0),
        best_ask_size: Some(1.0),
        last_size: Some(0.1),
        side: None,
        trade_id: Some(id),
        sequence: Some(id),
        source: Feed::Exchange,
    }
}

fn config() -> FeaturesConfig {
    FeaturesConfig { max_gap_secs: 30.0, out_of_order_tolerance_ms: 2_000 }
}

fn ln(a: f64, b: f64) -> f64 {
    (a / b).ln()
}

/// A product whose mid steps every 0.25 s for ten minutes: 2,400 ticks, one run, evaluated
/// seconds 60..=540 (from its first tick at 0 s and its last at 599.75 s).
fn walk(product: &str, start_id: u64) -> Vec<Tick> {
    (0..2_400u64)
        .map(|i| {
            let mid = 100.0 + ((i * 7919) % 23) as f64 * 0.25 + if (i / 400) % 2 == 0 { 0.0 } else { (i % 5) as f64 };
            tick(product, i as f64 * 0.25, mid, start_id + i)
        })
        .collect()
}

fn fixture_rows(kind: Rows) -> Vec<TrainingRow> {
    let mut ticks = walk("BTC-USD", 1);
    // Another product interleaved by time: its rows must not see BTC-USD's ticks.
    ticks.extend(walk("ETH-USD", 10_000));
    ticks.sort_by_key(|t| t.exchange_time);
    build_table(&ticks, &config(), kind).rows
}

#[test]
fn one_labelled_row_per_evaluated_second_with_the_vector_at_or_before_it() {
    let every = fixture_rows(Rows::EveryTick);
    let seconds = fixture_rows(Rows::PerSecond);
    assert_eq!(every.len(), 4_800);
    assert_eq!(seconds.len(), 2 * 480, "seconds 60..=539 of each product: 599.75 − 60 = 539.75");
    for row in &seconds {
        let label = row.label.expect("labelled");
        assert!((60..=539).contains(&(label.second - epoch())), "{}", label.second);
        let product: Vec<&TrainingRow> = every.iter().filter(|r| r.product_id == row.product_id).collect();
        // The last vector at or before a second (the vectors are in time order).
        let at_or_before = |u: i64| product[product.partition_point(|r| nanos(r) <= u * NS) - 1];
        assert_eq!(at_or_before(label.second).features, row.features, "{} {}", row.product_id, label.second);
        // The label from its definition: the grid of mids, one per second.
        let mid_at = |u: i64| at_or_before(u).features[Feature::Midprice];
        let future: f64 = (label.second + 1..=label.second + 60).map(|u| ln(mid_at(u), mid_at(u - 1)).powi(2)).sum();
        assert!((label.rv_future_60s - future).abs() <= 1e-12 * future, "{} vs {future}", label.rv_future_60s);
        let past: f64 = (label.second - 59..=label.second).map(|u| ln(mid_at(u), mid_at(u - 1)).powi(2)).sum();
        assert!((label.rv_past[0] - past / 60.0).abs() <= 1e-12 * past, "persistence at {}", label.second);
        // The engine's own past-minute feature of the row at exactly the second agrees when the
        // row's tick is in that second (every 0.25 s here).
        assert!((row.features[Feature::Rv60s] - label.rv_past[0]).abs() <= 1e-9 * label.rv_past[0]);
    }
}

#[test]
fn a_silence_longer_than_thirty_seconds_leaves_its_surroundings_unlabelled() {
    let mut ticks = walk("BTC-USD", 1);
    // 31 s of silence after 300 s.
    for t in ticks.iter_mut().filter(|t| t.exchange_time > at(300.0)) {
        t.exchange_time += chrono::Duration::seconds(31);
    }
    let seconds: Vec<i64> = build_table(&ticks, &config(), Rows::PerSecond)
        .rows
        .iter()
        .map(|r| r.label.unwrap().second - epoch())
        .collect();
    assert!(seconds.contains(&240) && !seconds.contains(&241));
    assert!(!seconds.contains(&391) && seconds.contains(&392), "60 s after 331.25 s");
}

fn recording_rows(kind: Rows) -> Vec<TrainingRow> {
    let ticks: Vec<Tick> = recording::open(TRADES).unwrap().map(|t| t.unwrap()).collect();
    let rows = build_table(&ticks, &config(), kind).rows;
    assert!(rows.len() > 500, "{}", rows.len());
    rows
}

fn expected_columns(kind: Rows) -> Vec<String> {
    let mut names = vec!["product_id".to_string()];
    if kind == Rows::PerSecond {
        names.push("second".into());
    }
    names.extend(["event_time".into(), "segment".into()]);
    names.extend(FEATURE_NAMES.iter().map(|n| n.to_string()));
    if kind == Rows::PerSecond {
        names.extend(["rv_future_60s", "rv_past_60s", "rv_past_300s", "rv_past_900s"].map(String::from));
    }
    names
}

fn nanos(row: &TrainingRow) -> i64 {
    row.event_time.timestamp_nanos_opt().unwrap()
}

/// A feature as the file holds it: missing is null (Parquet) or empty (CSV).
fn same(file: Option<f64>, value: f64) -> bool {
    match file {
        None => value.is_nan(),
        Some(v) => v == value,
    }
}

#[test]
fn parquet_round_trip() {
    for kind in [Rows::PerSecond, Rows::EveryTick] {
        let rows = recording_rows(kind);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.parquet");
        table::write(&path, &rows, kind).unwrap();

        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let schema = builder.schema().clone();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, expected_columns(kind));
        assert_eq!(schema.field_with_name("event_time").unwrap().data_type(), &DataType::Int64);
        for name in FEATURE_NAMES {
            assert_eq!(schema.field_with_name(name).unwrap().data_type(), &DataType::Float64, "{name}");
        }
        let mut i = 0;
        let mut missing = 0;
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let col = |name: &str| batch.column_by_name(name).unwrap().clone();
            let products = col("product_id");
            let products = products.as_string::<i32>();
            let times = col("event_time");
            let segments = col("segment");
            let features: Vec<_> = FEATURE_NAMES.iter().map(|n| col(n)).collect();
            for r in 0..batch.num_rows() {
                let row = &rows[i];
                assert_eq!(products.value(r), row.product_id);
                assert_eq!(times.as_primitive::<Int64Type>().value(r), nanos(row));
                assert_eq!(segments.as_primitive::<Int64Type>().value(r), row.segment as i64);
                for (k, value) in row.features.to_array().iter().enumerate() {
                    let column = features[k].as_primitive::<Float64Type>();
                    let file = column.is_valid(r).then(|| column.value(r));
                    missing += usize::from(file.is_none());
                    assert!(same(file, *value), "row {i} {}: {file:?} vs {value}", FEATURE_NAMES[k]);
                }
                if let Some(label) = row.label {
                    assert_eq!(col("second").as_primitive::<Int64Type>().value(r), label.second);
                    assert_eq!(col("rv_future_60s").as_primitive::<Float64Type>().value(r), label.rv_future_60s);
                    assert_eq!(col("rv_past_900s").as_primitive::<Float64Type>().value(r), label.rv_past[2]);
                }
                i += 1;
            }
        }
        assert_eq!(i, rows.len());
        assert_eq!(missing, 0, "this recording has trades and sizes: nothing is missing");
    }
}

#[test]
fn csv_round_trip() {
    for kind in [Rows::PerSecond, Rows::EveryTick] {
        let rows = recording_rows(kind);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.CSV");
        table::write(&path, &rows, kind).unwrap();

        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, expected_columns(kind));
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let mut n = 0;
        for (i, record) in reader.records().enumerate() {
            let record = record.unwrap();
            let row = &rows[i];
            assert_eq!(&record[0], row.product_id);
            assert_eq!(record[at("event_time")].parse::<i64>().unwrap(), nanos(row));
            assert_eq!(record[at("segment")].parse::<u64>().unwrap(), row.segment);
            for (k, value) in row.features.to_array().iter().enumerate() {
                let field = &record[at(FEATURE_NAMES[k])];
                let file = (!field.is_empty()).then(|| field.parse::<f64>().unwrap());
                assert!(same(file, *value), "row {i} {}", FEATURE_NAMES[k]);
            }
            if let Some(label) = row.label {
                assert_eq!(record[at("second")].parse::<i64>().unwrap(), label.second);
                assert_eq!(record[at("rv_future_60s")].parse::<f64>().unwrap(), label.rv_future_60s);
            }
            n += 1;
        }
        assert_eq!(n, rows.len());
    }
}

#[test]
fn missing_features_are_null_in_parquet_and_empty_in_csv() {
    // The ticks of a recorder that kept no trades: every trade feature is missing.
    let ticks: Vec<Tick> = recording::open(NO_TRADES).unwrap().map(|t| t.unwrap()).collect();
    let rows = build_table(&ticks, &config(), Rows::PerSecond).rows;
    assert!(rows.iter().all(|r| r.features[Feature::TradeRate10s].is_nan()));
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("t.csv");
    table::write(&csv_path, &rows, Rows::PerSecond).unwrap();
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let column = reader.headers().unwrap().iter().position(|h| h == "trade_rate_10s").unwrap();
    assert!(reader.records().all(|r| r.unwrap()[column].is_empty()));
    let parquet_path = dir.path().join("t.parquet");
    table::write(&parquet_path, &rows, Rows::PerSecond).unwrap();
    let batches =
        ParquetRecordBatchReaderBuilder::try_new(File::open(&parquet_path).unwrap()).unwrap().build().unwrap();
    for batch in batches {
        let batch = batch.unwrap();
        assert_eq!(batch.column_by_name("trade_rate_10s").unwrap().null_count(), batch.num_rows());
    }
}

#[test]
fn other_extensions_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["features.json", "features"] {
        let path = dir.path().join(name);
        let err = table::write(&path, &fixture_rows(Rows::PerSecond), Rows::PerSecond).unwrap_err();
        assert!(matches!(err, TableError::UnsupportedExtension { .. }), "{err}");
        assert!(err.to_string().contains(".parquet or .csv"), "{err}");
        assert!(!path.exists(), "nothing written");
    }
}
