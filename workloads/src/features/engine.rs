//! [`FeatureEngine`]: per-product state and the per-tick update. Formulas: docs/features.md.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::TickRejected;
use super::dedup::SeenTicks;
use super::window::{
    FIVE_MINUTES_SECS, LONG_WINDOW_SECS, NANOS_PER_SEC, SHORT_WINDOW_SECS, TickWindow, WARMUP_HORIZON_SECS,
};
use crate::config::FeaturesConfig;
use crate::domain::{FEATURE_SET_VERSION, FEATURE_VECTOR_SCHEMA, FeatureVector, Features, Tick};

/// Counters of what the engine did with the ticks it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Ticks that produced a feature vector (including `late_accepted`).
    pub accepted: u64,
    /// Ticks older than the product's latest time, within the tolerance: used at the latest time.
    pub late_accepted: u64,
    pub duplicates: u64,
    /// Ticks older than the tolerance allows: dropped.
    pub out_of_order: u64,
    /// Invalid prices/sizes or an exchange time out of range.
    pub invalid: u64,
    /// Window resets after a gap longer than `max_gap_secs` (over all products).
    pub resets: u64,
}

/// The previous accepted tick of a product in its current segment.
#[derive(Debug, Clone, Copy)]
struct Previous {
    time: i64,
    price: f64,
    last_size: Option<f64>,
    trade_id: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct ProductState {
    /// Increments each time the windows reset after a gap.
    segment: u64,
    /// `None` before the product's first tick and right after a reset.
    previous: Option<Previous>,
    /// Latest event time of the product (kept across resets, for the out-of-order check).
    latest: Option<i64>,
    window: TickWindow,
    seen: SeenTicks,
}

impl ProductState {
    fn reset(&mut self) {
        self.segment += 1;
        self.previous = None;
        self.window.reset();
        // `seen` is kept: identities leave it by time, and a re-sent tick from before the gap
        // must still be recognised if the tolerance reaches back that far.
    }
}

/// The one feature engine: online (`featurize`) and offline (`features`) both call [`update`].
///
/// Deterministic: the output depends only on the configuration and the ticks given, in order.
///
/// [`update`]: FeatureEngine::update
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    max_gap_nanos: i64,
    tolerance_nanos: i64,
    products: HashMap<String, ProductState>,
    stats: EngineStats,
}

impl FeatureEngine {
    /// A `max_gap_secs` that is not a positive number disables resets for `+inf` and makes every
    /// advance of time a reset otherwise; [`check_config`](super::check_config) reports it.
    pub fn new(config: &FeaturesConfig) -> FeatureEngine {
        let max_gap_nanos = if config.max_gap_secs == f64::INFINITY {
            i64::MAX
        } else if config.max_gap_secs > 0.0 {
            // `as` saturates: anything beyond ~292 years is "never".
            (config.max_gap_secs * NANOS_PER_SEC as f64) as i64
        } else {
            0
        };
        let tolerance_nanos =
            i64::try_from(config.out_of_order_tolerance_ms).unwrap_or(i64::MAX).saturating_mul(1_000_000);
        FeatureEngine { max_gap_nanos, tolerance_nanos, products: HashMap::new(), stats: EngineStats::default() }
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// How much event time before `t` determines the vectors from `t` on. An engine given a
    /// product's ticks from the last one at or before `t − warmup_horizon` computes, from `t` on,
    /// the same vectors bit for bit as one that saw all of the product's history: every window
    /// (and its running sums, see `window.rs`) plus the out-of-order tolerance, within which the
    /// first ticks of a fresh engine may be judged differently.
    ///
    /// The featurizer rewinds its input by this much after a restart or a rebalance, so any
    /// change to the windows must keep this true (test `features_warmup`).
    pub fn warmup_horizon(config: &FeaturesConfig) -> chrono::Duration {
        let tolerance = i64::try_from(config.out_of_order_tolerance_ms).unwrap_or(i64::MAX / 2);
        chrono::Duration::seconds(WARMUP_HORIZON_SECS) + chrono::Duration::milliseconds(tolerance.min(i64::MAX / 2))
    }

    /// Current segment of `product_id` (0 until its first reset); `None` before its first tick.
    pub fn segment(&self, product_id: &str) -> Option<u64> {
        self.products.get(product_id).map(|p| p.segment)
    }

    /// Products seen so far.
    pub fn products(&self) -> impl Iterator<Item = &str> {
        self.products.keys().map(String::as_str)
    }

    /// Folds one tick into its product's windows and returns the features at its event time.
    pub fn update(&mut self, tick: &Tick) -> Result<FeatureVector, TickRejected> {
        let result = self.apply(tick);
        match &result {
            Ok(_) => self.stats.accepted += 1,
            Err(TickRejected::Duplicate { .. }) => self.stats.duplicates += 1,
            Err(TickRejected::OutOfOrder { .. }) => self.stats.out_of_order += 1,
            Err(TickRejected::Invalid { .. } | TickRejected::TimeOutOfRange { .. }) => self.stats.invalid += 1,
        }
        result
    }

    fn apply(&mut self, tick: &Tick) -> Result<FeatureVector, TickRejected> {
        if let Err(reason) = check_tick(tick) {
            return Err(TickRejected::Invalid { product_id: tick.product_id.clone(), reason });
        }
        let time = tick
            .exchange_time
            .timestamp_nanos_opt()
            .ok_or_else(|| TickRejected::TimeOutOfRange { product_id: tick.product_id.clone() })?;
        let state = match self.products.get_mut(tick.product_id.as_str()) {
            Some(state) => state,
            None => self.products.entry(tick.product_id.clone()).or_default(),
        };

        if state.seen.contains(time, tick.sequence, tick.trade_id) {
            return Err(TickRejected::Duplicate { product_id: tick.product_id.clone() });
        }
        // The time the tick is applied at: its own, or the latest for a tolerated late tick.
        let event_time = match state.latest {
            None => time,
            Some(latest) if time >= latest => {
                if time - latest > self.max_gap_nanos {
                    state.reset();
                    self.stats.resets += 1;
                }
                time
            }
            Some(latest) if latest - time <= self.tolerance_nanos => {
                self.stats.late_accepted += 1;
                latest
            }
            Some(latest) => {
                return Err(TickRejected::OutOfOrder {
                    product_id: tick.product_id.clone(),
                    behind_ms: (latest - time) / 1_000_000,
                });
            }
        };

        let trade = is_trade(tick, state.previous.as_ref());
        let time_since_prev_tick = state.previous.map_or(0.0, |p| (event_time - p.time) as f64 / NANOS_PER_SEC as f64);
        // (bid + ask) / 2 written so that it can neither overflow nor underflow to 0; for any
        // spread below half the price every step is exact but the last, so it is the same number.
        let midprice = tick.best_bid + 0.5 * (tick.best_ask - tick.best_bid);
        let spread_abs = tick.best_ask - tick.best_bid;
        let spread_rel = spread_abs / midprice;
        let w = state.window.push(event_time, midprice, trade, spread_rel);

        state.seen.insert(time, tick.sequence, tick.trade_id);
        state.seen.evict_older_than(event_time.saturating_sub(self.tolerance_nanos));
        state.latest = Some(event_time);
        state.previous =
            Some(Previous { time: event_time, price: tick.price, last_size: tick.last_size, trade_id: tick.trade_id });

        let (time_of_day_sin, time_of_day_cos) = time_of_day(event_time);
        let features = Features {
            price: tick.price,
            midprice,
            return_1s: w.return_1s,
            return_5s: w.return_5s,
            return_30s: w.return_30s,
            return_60s: w.return_60s,
            volatility: w.volatility_60s,
            volatility_10s: w.volatility_10s,
            trade_intensity: w.trades_60s as f64 / LONG_WINDOW_SECS,
            spread_abs,
            spread_rel,
            order_book_imbalance: order_book_imbalance(tick.best_bid_size, tick.best_ask_size),
            tick_count: w.ticks_60s as f64,
            time_since_prev_tick,
            volatility_300s: w.volatility_300s,
            volatility_1800s: w.volatility_1800s,
            volatility_ratio_60s_300s: ratio(w.volatility_60s, w.volatility_300s),
            volatility_ratio_300s_1800s: ratio(w.volatility_300s, w.volatility_1800s),
            tick_rate_ratio_10s_300s: (w.ticks_10s as f64 / SHORT_WINDOW_SECS)
                / (w.ticks_300s as f64 / FIVE_MINUTES_SECS),
            spread_rel_ratio_300s: ratio(spread_rel, w.spread_rel_mean_300s),
            time_of_day_sin,
            time_of_day_cos,
        };
        Ok(FeatureVector {
            schema: FEATURE_VECTOR_SCHEMA,
            product_id: tick.product_id.clone(),
            event_time: DateTime::<Utc>::from_timestamp_nanos(event_time),
            receive_time: tick.receive_time,
            feature_set: FEATURE_SET_VERSION.to_string(),
            features,
        })
    }
}

/// A trade is a tick with a new `trade_id` (Exchange feed). Without trade ids (Advanced Trade),
/// a change of the last trade price or size against the previous tick of the segment; the first
/// such tick of a segment has nothing to compare with and does not count.
fn is_trade(tick: &Tick, previous: Option<&Previous>) -> bool {
    match (tick.trade_id, previous) {
        (Some(id), Some(p)) => p.trade_id != Some(id),
        (Some(_), None) => true,
        (None, Some(p)) => tick.price != p.price || tick.last_size != p.last_size,
        (None, None) => false,
    }
}

/// `a / b` for non-negative `a`, `b`; 1 (no change) when `b` is 0, which happens only when `a`
/// (a sub-window's value, or a spread in a window of zero spreads) is 0 too.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 1.0 }
}

/// Sine and cosine of the UTC time of day of `time` (ns since the epoch): 00:00 is (0, 1),
/// 06:00 is (1, 0); continuous across midnight.
fn time_of_day(time: i64) -> (f64, f64) {
    const DAY: i64 = 86_400 * NANOS_PER_SEC;
    let angle = time.rem_euclid(DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
    angle.sin_cos()
}

/// `(bid_size − ask_size) / (bid_size + ask_size)`, 0 when a size is missing or both are 0.
fn order_book_imbalance(bid_size: Option<f64>, ask_size: Option<f64>) -> f64 {
    match (bid_size, ask_size) {
        // Halved first so that huge sizes cannot overflow the sum; halving is exact.
        (Some(bid), Some(ask)) if 0.5 * bid + 0.5 * ask > 0.0 => (0.5 * bid - 0.5 * ask) / (0.5 * bid + 0.5 * ask),
        _ => 0.0,
    }
}

/// The tick invariants the formulas rely on; the parsers enforce them too, this keeps the
/// engine total for ticks from anywhere (a topic written by another producer, a test).
fn check_tick(tick: &Tick) -> Result<(), &'static str> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(tick.price) {
        return Err("price is not a positive finite number");
    }
    if !positive(tick.best_bid) || !positive(tick.best_ask) {
        return Err("best bid/ask is not a positive finite number");
    }
    if tick.best_bid > tick.best_ask {
        return Err("crossed book: best bid above best ask");
    }
    let size_ok = |s: Option<f64>| s.is_none_or(|s| s.is_finite() && s >= 0.0);
    if !size_ok(tick.best_bid_size) || !size_ok(tick.best_ask_size) || !size_ok(tick.last_size) {
        return Err("size is not a non-negative finite number");
    }
    Ok(())
}
