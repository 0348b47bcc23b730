//! Offline table: forward (label) quantities on a hand-made fixture, and the Parquet/CSV files
//! read back with the parquet and csv crates.

use std::fs::File;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_schema::DataType;
use chrono::{DateTime, TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{FEATURE_NAMES, Feed, Tick};
use spikewatch::features::offline::{TrainingRow, build_rows};
use spikewatch::sinks::table::{self, TableError};
use spikewatch::sources::recording;

const EXCHANGE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");

fn at(secs: f64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 12, 0, 0, 0).unwrap() + chrono::Duration::nanoseconds((secs * 1e9) as i64)
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

fn std(xs: &[f64]) -> f64 {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

fn ln(a: f64, b: f64) -> f64 {
    (a / b).ln()
}

/// (seconds, mid). 30 → 60 s is exactly the gap limit (same segment); 75 → 200 s resets.
const FIXTURE: [(f64, f64); 9] = [
    (0.0, 100.0),
    (10.0, 101.0),
    (30.0, 102.0),
    (30.0, 101.0),
    (60.0, 103.0),
    (70.0, 100.0),
    (75.0, 104.0),
    (200.0, 99.0),
    (201.0, 100.0),
];

fn fixture_rows() -> Vec<TrainingRow> {
    let mut ticks: Vec<Tick> =
        FIXTURE.iter().enumerate().map(|(i, &(s, m))| tick("BTC-USD", s, m, i as u64 + 1)).collect();
    // Another product interleaved: its rows must not see BTC-USD's ticks.
    ticks.insert(3, tick("ETH-USD", 31.0, 3000.0, 1));
    ticks.push(tick("ETH-USD", 95.0, 3010.0, 2));
    let rows = build_rows(&ticks, &config());
    assert_eq!(rows.len(), ticks.len());
    rows
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a complete window has a volatility");
    assert!((actual - expected).abs() < 1e-15, "{actual} vs {expected}");
}

#[test]
fn future_window_is_strictly_after_t_and_starts_from_the_mid_at_t() {
    let rows: Vec<TrainingRow> = fixture_rows().into_iter().filter(|r| r.product_id == "BTC-USD").collect();

    // t = 0: (0, 60] holds the ticks at 10, 30, 30, 60; the segment goes on to 75 s.
    assert_eq!(rows[0].future_tick_count, 4);
    assert!(rows[0].future_window_complete);
    assert_close(
        rows[0].future_volatility_60s,
        std(&[ln(101.0, 100.0), ln(102.0, 101.0), ln(101.0, 102.0), ln(103.0, 101.0)]),
    );

    // t = 10: (10, 70].
    assert_eq!(rows[1].future_tick_count, 4);
    assert_close(
        rows[1].future_volatility_60s,
        std(&[ln(102.0, 101.0), ln(101.0, 102.0), ln(103.0, 101.0), ln(100.0, 103.0)]),
    );

    // Both ticks at t = 30 share one future window (30, 90]; its first return starts from the mid
    // at 30 s, i.e. of the LAST tick at 30 s (101), and the segment ends at 75 s: incomplete.
    for row in &rows[2..4] {
        assert_eq!(row.future_tick_count, 3);
        assert!(!row.future_window_complete);
        assert_eq!(row.future_volatility_60s, None);
        assert_eq!(row.segment, 0);
    }

    // After the reset at 200 s: a new segment whose future holds one tick and then ends.
    assert_eq!((rows[7].segment, rows[7].future_tick_count, rows[7].future_window_complete), (1, 1, false));
    assert_eq!((rows[8].segment, rows[8].future_tick_count, rows[8].future_window_complete), (1, 0, false));
}

#[test]
fn a_window_with_one_return_has_zero_volatility_and_products_stay_apart() {
    let rows = fixture_rows();
    let eth: Vec<&TrainingRow> = rows.iter().filter(|r| r.product_id == "ETH-USD").collect();
    // ETH at 31 s, then 95 s: a 64 s gap > 30 s resets; no future inside the first segment.
    assert_eq!((eth[0].segment, eth[0].future_tick_count, eth[0].future_window_complete), (0, 0, false));
    assert_eq!(eth[1].segment, 1);

    let ticks =
        [tick("BTC-USD", 0.0, 100.0, 1), tick("BTC-USD", 20.0, 101.0, 2), tick("BTC-USD", 70.0 - 5.0, 102.0, 3)];
    let rows = build_rows(&ticks, &FeaturesConfig { max_gap_secs: 60.0, ..config() });
    // t = 0: one return (100 → 101) in (0, 60], the tick at 65 s proves the window complete.
    assert_eq!(rows[0].future_tick_count, 1);
    assert_eq!(rows[0].future_volatility_60s, Some(0.0));
}

fn recording_rows() -> Vec<TrainingRow> {
    let ticks: Vec<Tick> = recording::open(EXCHANGE).unwrap().map(|t| t.unwrap()).collect();
    let rows = build_rows(&ticks, &config());
    assert!(rows.iter().any(|r| r.future_volatility_60s.is_none()));
    assert!(rows.iter().any(|r| r.future_volatility_60s.is_some()));
    rows
}

fn expected_columns() -> Vec<String> {
    let mut names = vec!["product_id".to_string(), "event_time".into(), "segment".into()];
    names.extend(FEATURE_NAMES.iter().map(|n| n.to_string()));
    names.extend(["future_volatility_60s".into(), "future_window_complete".into(), "future_tick_count".into()]);
    names
}

fn nanos(row: &TrainingRow) -> i64 {
    row.event_time.timestamp_nanos_opt().unwrap()
}

#[test]
fn parquet_round_trip() {
    let rows = recording_rows();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.parquet");
    table::write(&path, &rows).unwrap();

    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, expected_columns());
    assert_eq!(schema.field_with_name("event_time").unwrap().data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("segment").unwrap().data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("future_window_complete").unwrap().data_type(), &DataType::Boolean);
    for name in FEATURE_NAMES.iter().chain(&["future_volatility_60s"]) {
        assert_eq!(schema.field_with_name(name).unwrap().data_type(), &DataType::Float64, "{name}");
    }

    let mut i = 0;
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        let products = col("product_id");
        let products = products.as_string::<i32>();
        let times = col("event_time");
        let segments = col("segment");
        let future_vol = col("future_volatility_60s");
        let complete = col("future_window_complete");
        let counts = col("future_tick_count");
        let features: Vec<_> = FEATURE_NAMES.iter().map(|n| col(n)).collect();
        for r in 0..batch.num_rows() {
            let row = &rows[i];
            assert_eq!(products.value(r), row.product_id);
            assert_eq!(times.as_primitive::<Int64Type>().value(r), nanos(row));
            assert_eq!(segments.as_primitive::<Int64Type>().value(r), row.segment as i64);
            for (k, value) in row.features.to_array().iter().enumerate() {
                assert_eq!(features[k].as_primitive::<Float64Type>().value(r), *value, "row {i} {}", FEATURE_NAMES[k]);
            }
            let fv = future_vol.as_primitive::<Float64Type>();
            assert_eq!(fv.is_valid(r).then(|| fv.value(r)), row.future_volatility_60s, "row {i}");
            assert_eq!(complete.as_boolean().value(r), row.future_window_complete);
            assert_eq!(counts.as_primitive::<Int64Type>().value(r), row.future_tick_count as i64);
            i += 1;
        }
    }
    assert_eq!(i, rows.len());
}

#[test]
fn csv_round_trip() {
    let rows = recording_rows();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.CSV");
    table::write(&path, &rows).unwrap();

    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, expected_columns());
    let mut n = 0;
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let row = &rows[i];
        assert_eq!(&record[0], row.product_id);
        assert_eq!(record[1].parse::<i64>().unwrap(), nanos(row));
        assert_eq!(record[2].parse::<u64>().unwrap(), row.segment);
        for (k, value) in row.features.to_array().iter().enumerate() {
            assert_eq!(record[3 + k].parse::<f64>().unwrap(), *value, "row {i} {}", FEATURE_NAMES[k]);
        }
        let future = &record[3 + FEATURE_NAMES.len()];
        assert_eq!((!future.is_empty()).then(|| future.parse::<f64>().unwrap()), row.future_volatility_60s);
        assert_eq!(record[4 + FEATURE_NAMES.len()].parse::<bool>().unwrap(), row.future_window_complete);
        assert_eq!(record[5 + FEATURE_NAMES.len()].parse::<u64>().unwrap(), row.future_tick_count);
        n += 1;
    }
    assert_eq!(n, rows.len());
}

#[test]
fn other_extensions_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["features.json", "features"] {
        let path = dir.path().join(name);
        let err = table::write(&path, &fixture_rows()).unwrap_err();
        assert!(matches!(err, TableError::UnsupportedExtension { .. }), "{err}");
        assert!(err.to_string().contains(".parquet or .csv"), "{err}");
        assert!(!path.exists(), "nothing written");
    }
}
