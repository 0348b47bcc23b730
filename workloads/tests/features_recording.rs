//! FeatureEngine and the offline table on the real recordings (data/coinbase/): finite outputs,
//! incremental == naive recomputation, online == offline, the label of every evaluated second.

use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{Feature, FeatureVector, Tick};
use spikewatch::features::FeatureEngine;
use spikewatch::features::offline::{Rows, build_rows, build_table};

mod common;
use common::naive::{Applied, naive};
use spikewatch::sources::recording;

const EXCHANGE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");
const ADVANCED_TRADE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/advanced-trade-ticker-btcusd-2025-11-08.ndjson");
/// SOL-USD trades with the book: many ticks share a timestamp (sweeps).
const TRADES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/sol-usd-2025-11-27.csv.gz");
const NS: i64 = 1_000_000_000;

fn load(path: &str) -> Vec<Tick> {
    let reader = recording::open(path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    reader.map(|t| t.expect("the recording parses")).collect()
}

fn config() -> FeaturesConfig {
    FeaturesConfig { max_gap_secs: 30.0, out_of_order_tolerance_ms: 2_000 }
}

fn nanos(tick: &Tick) -> i64 {
    tick.exchange_time.timestamp_nanos_opt().unwrap()
}

fn close(a: f64, e: f64) -> bool {
    (a.is_nan() && e.is_nan()) || (a - e).abs() <= 1e-20 + 1e-9 * e.abs()
}

/// Segment start index of every tick: a new segment after a silence longer than 30 s.
fn segment_starts(ticks: &[Tick]) -> Vec<usize> {
    let mut start = 0;
    (0..ticks.len())
        .map(|i| {
            if i > 0 && nanos(&ticks[i]) - nanos(&ticks[i - 1]) > 30 * NS {
                start = i;
            }
            start
        })
        .collect()
}

fn mid(t: &Tick) -> f64 {
    (t.best_bid + t.best_ask) / 2.0
}

#[test]
fn the_exchange_recording_is_what_the_tests_assume() {
    let ticks = load(EXCHANGE);
    assert_eq!(ticks.len(), 5_996);
    assert!(ticks.windows(2).all(|w| nanos(&w[0]) <= nanos(&w[1])), "in time order");
    let starts = segment_starts(&ticks);
    let mut distinct = starts.clone();
    distinct.dedup();
    assert_eq!(distinct, vec![0, 44, 1834, 2824], "four contiguous chunks");
}

#[test]
fn every_output_on_the_recordings_is_in_range() {
    for path in [EXCHANGE, ADVANCED_TRADE, TRADES] {
        let ticks = load(path);
        let mut engine = FeatureEngine::new(&config());
        for (i, tick) in ticks.iter().enumerate() {
            let v = engine.update(tick).unwrap_or_else(|e| panic!("{path} tick {i}: {e}"));
            if let Err(e) = spikewatch::api::rows::check(&v.features, "") {
                panic!("{path} tick {i}: {e}");
            }
            // Trades are missing exactly where the feed reports none (Advanced Trade tickers).
            assert_eq!(v.features[Feature::TradeRate60s].is_nan(), tick.trade_id.is_none(), "{path} tick {i}");
        }
        let stats = engine.stats();
        assert_eq!(stats.accepted, ticks.len() as u64, "{path}: {stats:?}");
    }
}

#[test]
fn incremental_engine_equals_naive_recomputation() {
    // The Exchange recording (frames with trades), and a stretch of a trade CSV with sweeps.
    for (path, take) in [(EXCHANGE, usize::MAX), (TRADES, 2_500)] {
        let ticks: Vec<Tick> = load(path).into_iter().take(take).collect();
        let mut engine = FeatureEngine::new(&config());
        let mut history: Vec<Applied> = Vec::new();
        let mut worst = (0.0f64, "");
        for (i, tick) in ticks.iter().enumerate() {
            let previous_trade = history.last().map(|_| ticks[i - 1].trade_id);
            let v = engine.update(tick).unwrap();
            assert_eq!(v.event_time, tick.exchange_time);
            let segment = engine.segment(&tick.product_id).unwrap();
            let same_segment = history.last().is_some_and(|a| a.segment == segment);
            let trade = tick.trade_id.is_some() && !(same_segment && previous_trade == Some(tick.trade_id));
            history.push(Applied::new(tick, &v, segment, trade));
            for (feature, e) in naive(&history, nanos(tick)) {
                let a = v.features[feature];
                assert!(close(a, e), "{path} tick {i}: {} engine {a} naive {e}", feature.name());
                if (a - e).abs() > worst.0 {
                    worst = ((a - e).abs(), feature.name());
                }
            }
        }
        println!("{path}: largest difference {} in {}", worst.0, worst.1);
        if path == EXCHANGE {
            assert_eq!(engine.stats().resets, 3, "three gaps longer than 30 s");
            assert_eq!(engine.segment("BTC-USD"), Some(3));
        }
    }
}

/// The recording with trouble mixed in: re-sent ticks, late ticks within and beyond the tolerance.
fn with_trouble(ticks: &[Tick]) -> Vec<Tick> {
    let mut out = Vec::new();
    for (i, tick) in ticks.iter().enumerate() {
        out.push(tick.clone());
        if i % 97 == 5 {
            out.push(tick.clone()); // re-delivered
        }
        if i % 211 == 7 {
            for secs_back in [1, 10] {
                let mut late = tick.clone();
                late.exchange_time -= chrono::Duration::seconds(secs_back);
                // new identities, distinct per copy (a shared trade id would make it a duplicate)
                late.trade_id = late.trade_id.map(|id| id + 1_000_000_000 * secs_back as u64);
                late.sequence = late.sequence.map(|s| s + 1_000_000_000_000 * secs_back as u64);
                out.push(late);
            }
        }
    }
    out
}

#[test]
fn offline_rows_equal_online_vectors_for_the_same_ticks() {
    let ticks = with_trouble(&load(EXCHANGE));
    let mut engine = FeatureEngine::new(&config());
    let online: Vec<(FeatureVector, u64)> = ticks
        .iter()
        .filter_map(|t| engine.update(t).ok().map(|v| (v, engine.segment(&t.product_id).unwrap())))
        .collect();
    let stats = engine.stats();
    assert!(stats.duplicates > 50 && stats.late_accepted > 10 && stats.out_of_order > 10, "{stats:?}");

    let table = build_table(&ticks, &config(), Rows::EveryTick);
    assert_eq!(table.stats, stats);
    let rows = build_rows(ticks.iter(), &config());
    assert_eq!(rows, table.rows);
    assert_eq!(rows.len(), online.len());
    for (i, (row, (vector, segment))) in rows.iter().zip(&online).enumerate() {
        assert_eq!(row.product_id, vector.product_id, "row {i}");
        assert_eq!(row.event_time, vector.event_time, "row {i}");
        assert_eq!(row.segment, *segment, "row {i}");
        assert_eq!(row.features, vector.features, "row {i}: offline and online features differ");
    }
}

#[test]
fn the_training_table_labels_every_evaluated_second_by_its_definition() {
    let ticks = load(EXCHANGE);
    let rows = build_table(&ticks, &config(), Rows::PerSecond).rows;
    let starts = segment_starts(&ticks);
    // The grid of mids: the last tick at or before each second.
    let mid_at = |u: i64| mid(&ticks[ticks.partition_point(|t| nanos(t) <= u * NS) - 1]);
    let mut expected = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.iter().rposition(|&s| s == start).unwrap();
        if k != start {
            continue;
        }
        let (first, last) = (nanos(&ticks[start]), nanos(&ticks[end]));
        let lo = (first + 60 * NS + NS - 1).div_euclid(NS);
        let hi = (last - 60 * NS).div_euclid(NS);
        expected.extend(lo..=hi);
    }
    let seconds: Vec<i64> = rows.iter().map(|r| r.label.unwrap().second).collect();
    assert_eq!(seconds, expected, "a minute inside each of the four chunks");
    for row in &rows {
        let s = row.label.unwrap().second;
        let future: f64 = (s + 1..=s + 60).map(|u| (mid_at(u) / mid_at(u - 1)).ln().powi(2)).sum();
        assert!(close(row.label.unwrap().rv_future_60s, future), "second {s}");
    }
    println!("{} evaluated seconds", rows.len());
    assert!(rows.len() > 100, "{}", rows.len());
}
