//! FeatureEngine and the offline table on the real recordings (data/coinbase/): finite outputs,
//! incremental == naive recomputation, online == offline, forward quantities.

use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{FEATURE_NAMES, FeatureVector, Features, Tick};
use spikewatch::features::FeatureEngine;
use spikewatch::features::offline::{build_rows, build_table};
use spikewatch::sources::recording;

const EXCHANGE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");
const ADVANCED_TRADE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/advanced-trade-ticker-btcusd-2025-11-08.ndjson");
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
    (a - e).abs() <= 1e-13 + 1e-9 * e.abs()
}

/// Sample standard deviation (n − 1), two-pass.
fn std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
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

/// The definitions of docs/features.md, recomputed from scratch over each window: O(window) per
/// tick, no shared code with the engine. Assumes ticks in time order without duplicates.
fn naive_features(ticks: &[Tick]) -> Vec<Features> {
    let starts = segment_starts(ticks);
    (0..ticks.len())
        .map(|i| {
            let s = starts[i];
            let now = nanos(&ticks[i]);
            let seg = s..=i;
            let base = |h: i64| {
                let k = seg.clone().rev().find(|&k| nanos(&ticks[k]) <= now - h * NS).unwrap_or(s);
                (mid(&ticks[i]) / mid(&ticks[k])).ln()
            };
            let returns_within = |w: i64| -> Vec<f64> {
                (s + 1..=i)
                    .filter(|&k| nanos(&ticks[k]) > now - w * NS)
                    .map(|k| (mid(&ticks[k]) / mid(&ticks[k - 1])).ln())
                    .collect()
            };
            let in_minute: Vec<usize> = seg.clone().filter(|&k| nanos(&ticks[k]) > now - 60 * NS).collect();
            let trades = in_minute.iter().filter(|&&k| k == s || ticks[k].trade_id != ticks[k - 1].trade_id).count();
            let t = &ticks[i];
            let (bs, asz) = (t.best_bid_size.unwrap(), t.best_ask_size.unwrap());
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };
            let within = |w: i64| seg.clone().filter(|&k| nanos(&ticks[k]) > now - w * NS).count() as f64;
            let spread = |k: usize| (ticks[k].best_ask - ticks[k].best_bid) / mid(&ticks[k]);
            let recent: Vec<usize> = seg.clone().filter(|&k| nanos(&ticks[k]) > now - 300 * NS).collect();
            let spread_mean = recent.iter().map(|&k| spread(k)).sum::<f64>() / recent.len() as f64;
            let day = (now.rem_euclid(86_400 * NS) as f64 / (86_400 * NS) as f64) * std::f64::consts::TAU;
            let (v60, v300, v1800) = (std(&returns_within(60)), std(&returns_within(300)), std(&returns_within(1800)));
            Features {
                price: t.price,
                midprice: mid(t),
                return_1s: base(1),
                return_5s: base(5),
                return_30s: base(30),
                return_60s: base(60),
                volatility: std(&returns_within(60)),
                volatility_10s: std(&returns_within(10)),
                trade_intensity: trades as f64 / 60.0,
                spread_abs: t.best_ask - t.best_bid,
                spread_rel: (t.best_ask - t.best_bid) / mid(t),
                order_book_imbalance: if bs + asz > 0.0 { (bs - asz) / (bs + asz) } else { 0.0 },
                tick_count: in_minute.len() as f64,
                time_since_prev_tick: if i == s { 0.0 } else { (now - nanos(&ticks[i - 1])) as f64 / 1e9 },
                volatility_300s: v300,
                volatility_1800s: v1800,
                volatility_ratio_60s_300s: ratio(v60, v300),
                volatility_ratio_300s_1800s: ratio(v300, v1800),
                tick_rate_ratio_10s_300s: (within(10) / 10.0) / (within(300) / 300.0),
                spread_rel_ratio_300s: ratio(spread(i), spread_mean),
                time_of_day_sin: day.sin(),
                time_of_day_cos: day.cos(),
            }
        })
        .collect()
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
fn every_output_on_the_recordings_is_finite() {
    for path in [EXCHANGE, ADVANCED_TRADE] {
        let ticks = load(path);
        let mut engine = FeatureEngine::new(&config());
        for (i, tick) in ticks.iter().enumerate() {
            let v = engine.update(tick).unwrap_or_else(|e| panic!("{path} tick {i}: {e}"));
            for (name, x) in FEATURE_NAMES.iter().zip(v.features.to_array()) {
                assert!(x.is_finite(), "{path} tick {i}: {name} = {x}");
            }
        }
        let stats = engine.stats();
        assert_eq!(stats.accepted, ticks.len() as u64, "{path}: {stats:?}");
    }
}

#[test]
fn incremental_engine_equals_naive_recomputation() {
    let ticks = load(EXCHANGE);
    let expected = naive_features(&ticks);
    let mut engine = FeatureEngine::new(&config());
    let mut worst = (0.0f64, "");
    for (i, (tick, e)) in ticks.iter().zip(&expected).enumerate() {
        let v = engine.update(tick).unwrap();
        assert_eq!(v.event_time, tick.exchange_time);
        for ((name, a), e) in FEATURE_NAMES.iter().zip(v.features.to_array()).zip(e.to_array()) {
            assert!(close(a, e), "tick {i}: {name} engine {a} naive {e}");
            if (a - e).abs() > worst.0 {
                worst = ((a - e).abs(), name);
            }
        }
    }
    println!("largest difference: {} in {}", worst.0, worst.1);
    assert_eq!(engine.stats().resets, 3, "three gaps longer than 30 s");
    assert_eq!(engine.segment("BTC-USD"), Some(3));
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

    let table = build_table(&ticks, &config());
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
fn forward_quantities_on_the_recording_match_their_definition() {
    let ticks = load(EXCHANGE);
    let rows = build_rows(&ticks, &config());
    assert_eq!(rows.len(), ticks.len());
    let starts = segment_starts(&ticks);
    let mut complete = 0;
    for i in 0..ticks.len() {
        let t = nanos(&ticks[i]);
        let seg: Vec<usize> = (starts[i]..ticks.len()).take_while(|&k| starts[k] == starts[i]).collect();
        let future: Vec<usize> =
            seg.iter().copied().filter(|&k| nanos(&ticks[k]) > t && nanos(&ticks[k]) <= t + 60 * NS).collect();
        let returns: Vec<f64> = future.iter().map(|&k| (mid(&ticks[k]) / mid(&ticks[k - 1])).ln()).collect();
        let is_complete = seg.iter().any(|&k| nanos(&ticks[k]) > t + 60 * NS);
        let row = &rows[i];
        assert_eq!(row.segment, [0, 44, 1834, 2824].iter().position(|&s| s == starts[i]).unwrap() as u64);
        assert_eq!(row.future_tick_count, future.len() as u64, "row {i}");
        assert_eq!(row.future_window_complete, is_complete, "row {i}");
        match row.future_volatility_60s {
            Some(v) => assert!(is_complete && close(v, std(&returns)), "row {i}: {v} vs {}", std(&returns)),
            None => assert!(!is_complete, "row {i}"),
        }
        complete += usize::from(is_complete);
    }
    // Mostly the 4.25 min chunk: its first 3 min or so.
    println!("{complete} rows with a complete future window");
    assert!(complete > 1_000 && complete < ticks.len(), "{complete}");
}
