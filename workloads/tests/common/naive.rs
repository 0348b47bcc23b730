//! Every feature's definition (docs/features.md), recomputed from scratch from a product's
//! accepted ticks: O(history) per tick, no code shared with the engine.

use spikewatch::domain::Feature::{self, *};
use spikewatch::domain::{FeatureVector, Side, Tick};

const NS: i64 = 1_000_000_000;

/// One accepted tick as the engine applied it.
#[derive(Clone, Copy)]
pub struct Applied {
    pub time: i64,
    pub mid: f64,
    pub segment: u64,
    pub spread_abs: f64,
    pub spread_rel: f64,
    pub price: f64,
    /// Notional and sign, when the tick was a trade.
    pub trade: Option<(f64, f64)>,
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

impl Applied {
    /// The tick as the engine applied it (its vector and segment), and whether it was a trade.
    pub fn new(tick: &Tick, vector: &FeatureVector, segment: u64, trade: bool) -> Applied {
        let f = &vector.features;
        let sign = match tick.side {
            Some(Side::Buy) => 1.0,
            Some(Side::Sell) => -1.0,
            None => 0.0,
        };
        Applied {
            time: vector.event_time.timestamp_nanos_opt().unwrap(),
            mid: f[Midprice],
            segment,
            spread_abs: f[SpreadAbs],
            spread_rel: f[SpreadRel],
            price: tick.price,
            trade: trade.then(|| (tick.last_size.unwrap_or(0.0) * tick.price, sign)),
        }
    }
}

/// Every feature's definition (docs/features.md), recomputed from the product's accepted ticks
/// so far; the last one is the current tick.
pub fn naive(h: &[Applied], time: i64) -> Vec<(Feature, f64)> {
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
