//! FeatureEngine on seeded random streams with everything going wrong at once: several products,
//! bursts of equal timestamps, re-sent ticks, late ticks within and beyond the tolerance, gaps.
//! Invariants hold and the accepted stream, as the engine applied it, matches a naive
//! recomputation of the definitions.

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{FEATURE_NAMES, Feed, Tick};
use spikewatch::features::{EngineStats, FeatureEngine};

const NS: i64 = 1_000_000_000;
const PRODUCTS: [&str; 3] = ["BTC-USD", "ETH-USD", "SOL-USD"];

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 12, 0, 0, 0).unwrap()
}

/// A random stream: per product a random walk of the mid and of time.
fn stream(seed: u64, len: usize) -> Vec<Tick> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clock = [0i64; PRODUCTS.len()];
    let mut mid = [100_000.0f64, 3_000.0, 150.0];
    let mut next_id = 1u64;
    let mut out: Vec<Tick> = Vec::with_capacity(len);
    while out.len() < len {
        let p = rng.random_range(0..PRODUCTS.len());
        let roll: f64 = rng.random();
        if roll < 0.03 && !out.is_empty() {
            let again = out[rng.random_range(0..out.len())].clone(); // re-sent
            out.push(again);
            continue;
        }
        let step = match roll {
            r if r < 0.40 => 0,                                // same timestamp
            r if r < 0.90 => rng.random_range(1..400_000_000), // up to 0.4 s
            r if r < 0.97 => rng.random_range(1..8 * NS),      // up to 8 s
            _ => rng.random_range(20 * NS..45 * NS),           // around the 30 s gap limit
        };
        clock[p] += step;
        let mut time = clock[p];
        if rng.random::<f64>() < 0.05 {
            time -= rng.random_range(0..4 * NS); // late: within or beyond the 2 s tolerance
        }
        if rng.random::<f64>() < 0.5 {
            mid[p] *= (rng.random_range(-3.0..3.0) * 1e-4f64).exp();
        }
        let half_spread = mid[p] * rng.random_range(0.0..2e-5);
        let sizes = if rng.random::<f64>() < 0.1 { (None, None) } else { (Some(rng.random()), Some(rng.random())) };
        out.push(Tick {
            schema: 1,
            product_id: PRODUCTS[p].into(),
            exchange_time: t0() + chrono::Duration::nanoseconds(time),
            receive_time: t0() + chrono::Duration::nanoseconds(time),
            price: mid[p],
            best_bid: mid[p] - half_spread,
            best_ask: mid[p] + half_spread,
            best_bid_size: sizes.0,
            best_ask_size: sizes.1,
            last_size: Some(0.01),
            side: None,
            trade_id: Some(next_id),
            sequence: Some(next_id),
            source: Feed::Exchange,
        });
        next_id += 1;
    }
    out
}

/// One accepted tick as the engine applied it.
struct Applied {
    time: i64,
    mid: f64,
    segment: u64,
    spread_rel: f64,
}

fn std(xs: &[f64]) -> f64 {
    if xs.len() < 2 || xs.iter().all(|&x| x == 0.0) {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

fn close(a: f64, e: f64) -> bool {
    (a - e).abs() <= 1e-13 + 1e-9 * e.abs()
}

#[test]
fn invariants_and_naive_agreement_on_random_streams() {
    for seed in 0..8 {
        let ticks = stream(seed, 4_000);
        let config = FeaturesConfig { max_gap_secs: 30.0, out_of_order_tolerance_ms: 2_000 };
        let mut engine = FeatureEngine::new(&config);
        let mut history: Vec<Vec<Applied>> = PRODUCTS.iter().map(|_| Vec::new()).collect();
        let mut rejected = 0u64;
        for (i, tick) in ticks.iter().enumerate() {
            let Ok(v) = engine.update(tick) else {
                rejected += 1;
                continue;
            };
            let f = v.features;
            for (name, x) in FEATURE_NAMES.iter().zip(f.to_array()) {
                assert!(x.is_finite(), "seed {seed} tick {i}: {name} = {x}");
            }
            assert!((-1.0..=1.0).contains(&f.order_book_imbalance));
            assert!(f.volatility >= 0.0 && f.volatility_10s >= 0.0 && f.time_since_prev_tick >= 0.0);
            assert_eq!((f.trade_intensity * 60.0).round(), f.tick_count, "every accepted tick has a new trade id");

            let p = PRODUCTS.iter().position(|&p| p == tick.product_id).unwrap();
            let time = v.event_time.timestamp_nanos_opt().unwrap();
            let segment = engine.segment(&tick.product_id).unwrap();
            let h = &mut history[p];
            if let Some(last) = h.last() {
                assert!(time >= last.time, "seed {seed} tick {i}: a product's vectors go forward in time");
            }
            h.push(Applied { time, mid: f.midprice, segment, spread_rel: f.spread_rel });

            // The definitions, recomputed over the accepted ticks of this product and segment.
            let seg: Vec<&Applied> = h.iter().filter(|a| a.segment == segment).collect();
            let now = seg.len() - 1;
            let base = |secs: i64| {
                let k = (0..=now).rev().find(|&k| seg[k].time <= time - secs * NS).unwrap_or(0);
                (f.midprice / seg[k].mid).ln()
            };
            let returns = |secs: i64| -> Vec<f64> {
                (1..=now)
                    .filter(|&k| seg[k].time > time - secs * NS)
                    .map(|k| (seg[k].mid / seg[k - 1].mid).ln())
                    .collect()
            };
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };
            let ticks_in = |secs: i64| seg.iter().filter(|a| a.time > time - secs * NS).count() as f64;
            let spreads_300: Vec<f64> = seg.iter().filter(|a| a.time > time - 300 * NS).map(|a| a.spread_rel).collect();
            let spread_mean = spreads_300.iter().sum::<f64>() / spreads_300.len() as f64;
            let day = (time.rem_euclid(86_400 * NS) as f64 / (86_400 * NS) as f64) * std::f64::consts::TAU;
            let (v60, v300, v1800) = (std(&returns(60)), std(&returns(300)), std(&returns(1800)));
            let expected = [
                ("volatility_300s", f.volatility_300s, v300),
                ("volatility_1800s", f.volatility_1800s, v1800),
                ("volatility_ratio_60s_300s", f.volatility_ratio_60s_300s, ratio(v60, v300)),
                ("volatility_ratio_300s_1800s", f.volatility_ratio_300s_1800s, ratio(v300, v1800)),
                (
                    "tick_rate_ratio_10s_300s",
                    f.tick_rate_ratio_10s_300s,
                    (ticks_in(10) / 10.0) / (ticks_in(300) / 300.0),
                ),
                ("spread_rel_ratio_300s", f.spread_rel_ratio_300s, ratio(f.spread_rel, spread_mean)),
                ("time_of_day_sin", f.time_of_day_sin, day.sin()),
                ("time_of_day_cos", f.time_of_day_cos, day.cos()),
                ("return_1s", f.return_1s, base(1)),
                ("return_5s", f.return_5s, base(5)),
                ("return_30s", f.return_30s, base(30)),
                ("return_60s", f.return_60s, base(60)),
                ("volatility", f.volatility, std(&returns(60))),
                ("volatility_10s", f.volatility_10s, std(&returns(10))),
                ("tick_count", f.tick_count, seg.iter().filter(|a| a.time > time - 60 * NS).count() as f64),
                (
                    "time_since_prev_tick",
                    f.time_since_prev_tick,
                    if now == 0 { 0.0 } else { (time - seg[now - 1].time) as f64 / 1e9 },
                ),
            ];
            for (name, actual, want) in expected {
                assert!(close(actual, want), "seed {seed} tick {i}: {name} engine {actual} naive {want}");
            }
        }
        let EngineStats { accepted, late_accepted, duplicates, out_of_order, invalid, resets } = engine.stats();
        assert_eq!(accepted + duplicates + out_of_order + invalid, ticks.len() as u64);
        assert_eq!(duplicates + out_of_order + invalid, rejected);
        assert!(
            duplicates > 0 && out_of_order > 0 && late_accepted > 0 && resets > 0,
            "seed {seed}: {:?}",
            engine.stats()
        );
    }
}
