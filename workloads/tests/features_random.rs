//! FeatureEngine on seeded random streams with everything going wrong at once: several products,
//! bursts of equal timestamps, re-sent ticks, late ticks within and beyond the tolerance, gaps.
//! Invariants hold and the accepted stream, as the engine applied it, matches a naive
//! recomputation of the definitions.

use Feature::*;
use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{Feature, Feed, Side, Tick};

mod common;
use common::naive::{Applied, naive};
use spikewatch::features::{EngineStats, FeatureEngine};

const NS: i64 = 1_000_000_000;
const PRODUCTS: [&str; 3] = ["BTC-USD", "ETH-USD", "SOL-USD"];

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 12, 0, 0, 0).unwrap()
}

/// A random stream: per product a random walk of the mid and of time. SOL-USD's ticks carry no
/// trade (as from a ticker without trade fields): its trade features must be missing.
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
        // Spreads of one to a few increments of 0.01, now and then a locked book.
        let spread = 0.01 * f64::from(rng.random_range(0..4u8));
        let sizes = if rng.random::<f64>() < 0.1 { (None, None) } else { (Some(rng.random()), Some(rng.random())) };
        let traded = PRODUCTS[p] != "SOL-USD";
        let side = match rng.random_range(0..5u8) {
            0 => None,
            1 | 2 => Some(Side::Buy),
            _ => Some(Side::Sell),
        };
        out.push(Tick {
            schema: 1,
            product_id: PRODUCTS[p].into(),
            exchange_time: t0() + chrono::Duration::nanoseconds(time),
            receive_time: t0() + chrono::Duration::nanoseconds(time),
            price: mid[p] + if rng.random() { 0.01 } else { 0.0 },
            best_bid: mid[p] - spread / 2.0,
            best_ask: mid[p] + spread / 2.0,
            best_bid_size: sizes.0,
            best_ask_size: sizes.1,
            last_size: traded.then(|| rng.random_range(0.0..2.0)),
            side: if traded { side } else { None },
            trade_id: traded.then_some(next_id),
            sequence: Some(next_id),
            source: if traded { Feed::Exchange } else { Feed::AdvancedTrade },
        });
        next_id += 1;
    }
    out
}

fn close(a: f64, e: f64) -> bool {
    (a.is_nan() && e.is_nan()) || (a - e).abs() <= 1e-20 + 1e-9 * e.abs()
}

#[test]
fn invariants_and_naive_agreement_on_random_streams() {
    let mut seen_duplicates = 0;
    for seed in 0..6 {
        let ticks = stream(seed, 3_000);
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
            if let Err(e) = spikewatch::api::rows::check(&f, "") {
                panic!("seed {seed} tick {i}: {e}");
            }
            let p = PRODUCTS.iter().position(|&p| p == tick.product_id).unwrap();
            let traded = tick.trade_id.is_some();
            assert_eq!(traded, !f[TradeRate60s].is_nan(), "trade features are missing exactly without trades");
            if traded {
                assert_eq!((f[TradeIntensity] * 60.0).round(), f[TickCount], "every accepted tick has a new trade id");
            }

            let time = v.event_time.timestamp_nanos_opt().unwrap();
            let segment = engine.segment(&tick.product_id).unwrap();
            let h = &mut history[p];
            if let Some(last) = h.last() {
                assert!(time >= last.time, "seed {seed} tick {i}: a product's vectors go forward in time");
            }
            h.push(Applied::new(tick, &v, segment, traded));
            for (feature, want) in naive(h, time) {
                let actual = f[feature];
                assert!(close(actual, want), "seed {seed} tick {i}: {} engine {actual} naive {want}", feature.name());
            }
        }
        let EngineStats { accepted, late_accepted, duplicates, out_of_order, invalid, resets } = engine.stats();
        assert_eq!(accepted + duplicates + out_of_order + invalid, ticks.len() as u64);
        assert_eq!(duplicates + out_of_order + invalid, rejected);
        seen_duplicates += duplicates;
        assert!(out_of_order > 0 && late_accepted > 0 && resets > 0, "seed {seed}: {:?}", engine.stats());
    }
    assert!(seen_duplicates > 0, "re-sent ticks within the tolerance were exercised");
}
