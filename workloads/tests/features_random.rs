//! FeatureEngine on seeded random streams with everything going wrong at once: several products,
//! bursts of equal timestamps, re-sent ticks, late ticks within and beyond the tolerance, gaps.
//! Invariants hold and the accepted stream, as the engine applied it, matches a naive
//! recomputation of the definitions.

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{Feature, Feed, Side, Tick};
use Feature::*;
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

/// One accepted tick as the engine applied it.
#[derive(Clone, Copy)]
struct Applied {
    time: i64,
    mid: f64,
    segment: u64,
    spread_abs: f64,
    spread_rel: f64,
    price: f64,
    /// Notional and sign, when the tick was a trade.
    trade: Option<(f64, f64)>,
}

fn std(xs: &[f64]) -> f64 {
    if xs.len() < 2 || xs.iter().all(|&x| x == 0.0) {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// `⌈t⌉` of a time in ns, in seconds.
fn grid_second(t: i64) -> i64 {
    t.div_euclid(NS) + i64::from(t.rem_euclid(NS) != 0)
}

/// The one-second grid of one segment, naively: `(u, r(u))` for its seconds with a return.
fn grid_returns(seg: &[&Applied]) -> Vec<(i64, f64)> {
    let s0 = grid_second(seg[0].time);
    let s1 = grid_second(seg[seg.len() - 1].time);
    let mid_at = |u: i64| seg.iter().rev().find(|a| a.time <= u * NS).map(|a| a.mid).unwrap();
    ((s0 + 1)..=s1).map(|u| (u, (mid_at(u) / mid_at(u - 1)).ln())).collect()
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
            let sign = match tick.side {
                Some(Side::Buy) => 1.0,
                Some(Side::Sell) => -1.0,
                None => 0.0,
            };
            h.push(Applied {
                time,
                mid: f[Midprice],
                segment,
                spread_abs: f[SpreadAbs],
                spread_rel: f[SpreadRel],
                price: tick.price,
                trade: tick.last_size.filter(|_| traded).map(|size| (size * tick.price, sign)),
            });
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

/// Every feature's definition (docs/features.md), recomputed from the product's accepted ticks
/// so far; the last one is the current tick.
fn naive(h: &[Applied], time: i64) -> Vec<(Feature, f64)> {
    let now_tick = h[h.len() - 1];
    let segment = now_tick.segment;
    let seg: Vec<&Applied> = h.iter().filter(|a| a.segment == segment).collect();
    let now = seg.len() - 1;
    let mid = now_tick.mid;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };

    // Per-tick windows.
    let base = |secs: i64| {
        let k = (0..=now).rev().find(|&k| seg[k].time <= time - secs * NS).unwrap_or(0);
        (mid / seg[k].mid).ln()
    };
    let returns = |secs: i64| -> Vec<f64> {
        (1..=now).filter(|&k| seg[k].time > time - secs * NS).map(|k| (seg[k].mid / seg[k - 1].mid).ln()).collect()
    };
    let spreads_300: Vec<f64> = seg.iter().filter(|a| a.time > time - 300 * NS).map(|a| a.spread_rel).collect();
    let spread_mean = spreads_300.iter().sum::<f64>() / spreads_300.len() as f64;

    // The one-second grid of this segment and of the hour's earlier segments.
    let s = grid_second(time);
    let s0 = grid_second(seg[0].time);
    let age = s - s0;
    let grid = grid_returns(&seg);
    let in_window = |secs: i64| grid.iter().filter(move |(u, _)| *u > s - secs);
    let rv = |secs: i64| {
        let covered = age.min(secs);
        if covered == 0 { 0.0 } else { in_window(secs).map(|(_, r)| r * r).sum::<f64>() / covered as f64 }
    };
    let r_at = |u: i64| grid.iter().find(|(v, _)| *v == u).map_or(0.0, |(_, r)| *r);
    let bipower: f64 = in_window(60).map(|(u, r)| r.abs() * r_at(u - 1).abs()).sum();
    let sum_60: f64 = in_window(60).map(|(_, r)| r * r).sum();
    let peak = in_window(60).map(|(_, r)| r * r).fold(0.0, f64::max);
    let mut level_sum = 0.0;
    let mut level_seconds = 0i64;
    for k in 0..=segment {
        let part: Vec<&Applied> = h.iter().filter(|a| a.segment == k).collect();
        if part.is_empty() {
            continue;
        }
        for (u, r) in grid_returns(&part) {
            if u > s - 3600 {
                level_sum += r * r;
                level_seconds += 1;
            }
        }
    }
    let level = if level_seconds > 0 { level_sum / level_seconds as f64 } else { 0.0 };

    // The price increment: the smallest positive spread of the last hour.
    let increment = h
        .iter()
        .filter(|a| a.time > time - 3600 * NS && a.spread_abs > 0.0)
        .map(|a| a.spread_abs)
        .fold(f64::INFINITY, f64::min);

    let mut out = vec![
        (Return1s, base(1)),
        (Return5s, base(5)),
        (Return30s, base(30)),
        (Return60s, base(60)),
        (Volatility, std(&returns(60))),
        (TickCount, seg.iter().filter(|a| a.time > time - 60 * NS).count() as f64),
        (TimeSincePrevTick, if now == 0 { 0.0 } else { (time - seg[now - 1].time) as f64 / 1e9 }),
        (SpreadRelRatio300s, ratio(now_tick.spread_rel, spread_mean)),
        (Rv10s, rv(10)),
        (Rv30s, rv(30)),
        (Rv60s, rv(60)),
        (Rv300s, rv(300)),
        (Rv900s, rv(900)),
        (Bv60s, if age == 0 { 0.0 } else { std::f64::consts::FRAC_PI_2 * bipower / age.min(60) as f64 }),
        (JumpShare60s, if sum_60 > 0.0 { peak / sum_60 } else { 0.0 }),
        (RvLevel, level),
        (Rv60sToLevel, ratio(rv(60), level)),
        (SegmentAge, age.min(3600) as f64),
        (SpreadTicks, if increment.is_finite() { now_tick.spread_abs / increment } else { 1.0 }),
    ];

    // Trades: the short windows within the segment, the scale over the hour.
    let trades_in = |secs: i64| seg.iter().filter(move |a| a.time > time - secs * NS && a.trade.is_some());
    let hour: Vec<&Applied> = h.iter().filter(|a| a.time > time - 3600 * NS && a.trade.is_some()).collect();
    let trade_features = [
        TradeRate2s,
        TradeRate10s,
        TradeRate60s,
        TradeAcceleration,
        NotionalRateToLevel,
        TradeImbalance10s,
        TradeImbalance60s,
        SignedNotionalToLevel,
        LargeTradeRatio60s,
        SweepShare60s,
        SweepLevels60s,
        DepthToTradeSize,
    ];
    if hour.is_empty() {
        out.extend(trade_features.map(|f| (f, f64::NAN)));
        return out;
    }
    let covered = |secs: i64| age.clamp(1, secs) as f64;
    let count = |secs: i64| trades_in(secs).count() as f64;
    let notional = |secs: i64| trades_in(secs).map(|a| a.trade.unwrap().0).sum::<f64>();
    let signed = |secs: i64| trades_in(secs).map(|a| a.trade.unwrap().0 * a.trade.unwrap().1).sum::<f64>();
    let imbalance = |secs: i64| if notional(secs) > 0.0 { signed(secs) / notional(secs) } else { 0.0 };
    let level_notional: f64 = hour.iter().map(|a| a.trade.unwrap().0).sum();
    let level_rate = level_notional / level_seconds.max(1) as f64;
    let mean_trade = level_notional / hour.len() as f64;
    // Sweeps: a trade at the same time as the product's previous trade, the levels its sweep crossed.
    let all_trades: Vec<&Applied> = h.iter().filter(|a| a.trade.is_some()).collect();
    let mut sweep = vec![false; all_trades.len()];
    let mut levels = vec![0u32; all_trades.len()];
    for k in 1..all_trades.len() {
        if all_trades[k].time == all_trades[k - 1].time {
            sweep[k] = true;
            levels[k] = levels[k - 1] + u32::from(all_trades[k].price != all_trades[k - 1].price);
        }
    }
    let recent = |k: usize| all_trades[k].segment == segment && all_trades[k].time > time - 60 * NS;
    let sweeps_60 = (0..all_trades.len()).filter(|&k| recent(k) && sweep[k]).count() as f64;
    let max_levels = (0..all_trades.len()).filter(|&k| recent(k)).map(|k| levels[k]).max().unwrap_or(0);
    let max_notional = trades_in(60).map(|a| a.trade.unwrap().0).fold(0.0, f64::max);
    out.extend([
        (TradeRate2s, count(2) / covered(2)),
        (TradeRate10s, count(10) / covered(10)),
        (TradeRate60s, count(60) / covered(60)),
        (TradeAcceleration, ratio(count(10) / covered(10), count(60) / covered(60))),
        (NotionalRateToLevel, ratio(notional(60) / covered(60), level_rate)),
        (TradeImbalance10s, imbalance(10)),
        (TradeImbalance60s, imbalance(60)),
        (SignedNotionalToLevel, if level_rate > 0.0 { signed(60) / covered(60) / level_rate } else { 0.0 }),
        (LargeTradeRatio60s, if mean_trade > 0.0 { max_notional / mean_trade } else { 0.0 }),
        (SweepShare60s, if count(60) > 0.0 { sweeps_60 / count(60) } else { 0.0 }),
        (SweepLevels60s, f64::from(max_levels)),
    ]);
    out
}
