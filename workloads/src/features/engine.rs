//! [`FeatureEngine`]: per-product state and the per-tick update. Formulas: docs/features.md.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::TickRejected;
use super::book::PriceIncrement;
use super::dedup::SeenTicks;
use super::grid::{GridValues, SecondGrid};
use super::trades::{Trade, TradeValues, TradeWindows};
use super::window::{LONG_WINDOW_SECS, NANOS_PER_SEC, TickWindow, WindowValues};
use crate::config::FeaturesConfig;
use crate::domain::{
    FEATURE_SET_VERSION, FEATURE_VECTOR_SCHEMA, FEATURES, Feature, FeatureVector, Features, Side, Tick,
};

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
    grid: SecondGrid,
    trades: TradeWindows,
    increment: PriceIncrement,
    seen: SeenTicks,
}

impl ProductState {
    fn reset(&mut self) {
        self.segment += 1;
        self.previous = None;
        self.window.reset();
        self.grid.end_segment();
        self.trades.reset();
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
    /// ([`WARMUP_SECS`](super::WARMUP_SECS), sums held exactly) plus the out-of-order tolerance,
    /// within which the first ticks of a fresh engine may be judged differently.
    ///
    /// The featurizer rewinds its input by this much after a restart or a rebalance, so any
    /// change to the windows must keep this true (test `features_warmup`).
    pub fn warmup_horizon(config: &FeaturesConfig) -> chrono::Duration {
        let tolerance = i64::try_from(config.out_of_order_tolerance_ms).unwrap_or(i64::MAX / 2);
        chrono::Duration::seconds(super::WARMUP_SECS) + chrono::Duration::milliseconds(tolerance.min(i64::MAX / 2))
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

        let trade = is_trade(tick, state.previous.as_ref(), state.trades.any());
        let time_since_prev_tick = state.previous.map_or(0.0, |p| (event_time - p.time) as f64 / NANOS_PER_SEC as f64);
        // (bid + ask) / 2 written so that it can neither overflow nor underflow to 0; for any
        // spread below half the price every step is exact but the last, so it is the same number.
        let midprice = tick.best_bid + 0.5 * (tick.best_ask - tick.best_bid);
        let spread_abs = tick.best_ask - tick.best_bid;
        let spread_rel = spread_abs / midprice;
        let w = state.window.push(event_time, midprice, trade, spread_rel);
        let g = state.grid.push(event_time, midprice);
        if trade && tick.trade_id.is_some() {
            state.trades.push(Trade {
                time: event_time,
                price: tick.price,
                notional: tick.last_size.map_or(0.0, |size| size * tick.price),
                sign: match tick.side {
                    Some(Side::Buy) => 1.0,
                    Some(Side::Sell) => -1.0,
                    None => 0.0,
                },
            });
        }
        let t = state.trades.values(event_time);
        let increment = state.increment.push(event_time, spread_abs);

        state.seen.insert(time, tick.sequence, tick.trade_id);
        state.seen.evict_older_than(event_time.saturating_sub(self.tolerance_nanos));
        state.latest = Some(event_time);
        state.previous =
            Some(Previous { time: event_time, price: tick.price, last_size: tick.last_size, trade_id: tick.trade_id });

        let book = Book { tick, midprice, spread_abs, spread_rel, increment };
        let features = assemble(&book, &w, &g, &t, time_since_prev_tick);
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

/// The current tick's book, as the formulas use it.
struct Book<'a> {
    tick: &'a Tick,
    midprice: f64,
    spread_abs: f64,
    spread_rel: f64,
    /// Smallest positive spread of the last hour.
    increment: Option<f64>,
}

/// Every feature from the windows' values (formulas: docs/features.md).
fn assemble(book: &Book<'_>, w: &WindowValues, g: &GridValues, t: &TradeValues, time_since_prev_tick: f64) -> Features {
    use Feature::*;
    let tick = book.tick;
    let mut f = Features::default();
    f[Price] = tick.price;
    f[Midprice] = book.midprice;
    f[Return1s] = w.return_1s;
    f[Return5s] = w.return_5s;
    f[Return30s] = w.return_30s;
    f[Return60s] = w.return_60s;
    f[Volatility] = w.volatility_60s;
    f[TradeIntensity] = w.trades_60s as f64 / LONG_WINDOW_SECS;
    f[SpreadAbs] = book.spread_abs;
    f[SpreadRel] = book.spread_rel;
    f[OrderBookImbalance] = order_book_imbalance(tick.best_bid_size, tick.best_ask_size);
    f[TickCount] = w.ticks_60s as f64;
    f[TimeSincePrevTick] = time_since_prev_tick;
    let [rv10, rv30, rv60, rv300, rv900] = g.rv;
    f[Rv10s] = rv10;
    f[Rv30s] = rv30;
    f[Rv60s] = rv60;
    f[Rv300s] = rv300;
    f[Rv900s] = rv900;
    f[Bv60s] = g.bv_60s;
    f[JumpShare60s] = g.jump_share_60s;
    f[RvLevel] = g.level;
    f[Rv60sToLevel] = ratio(rv60, g.level);
    f[SegmentAge] = g.age as f64;
    f[SpreadTicks] = book.increment.map_or(1.0, |inc| book.spread_abs / inc);
    f[SpreadRelRatio300s] = ratio(book.spread_rel, w.spread_rel_mean_300s);
    if t.level_count == 0 {
        // No trade in the last hour: the source does not report trades (or the product is not
        // trading); every trade feature is missing rather than zero.
        for feature in TRADE_FEATURES {
            f[feature] = f64::NAN;
        }
    } else {
        // Seconds each window covers: the segment may be younger than the window.
        let covered = |secs: i64| g.age.clamp(1, secs) as f64;
        let [n2, n10, n60] = t.counts;
        let rate_10s = n10 as f64 / covered(10);
        let rate_60s = n60 as f64 / covered(60);
        let level_rate = t.level_notional / g.level_seconds.max(1) as f64;
        let mean_trade = t.level_notional / t.level_count as f64;
        f[TradeRate2s] = n2 as f64 / covered(2);
        f[TradeRate10s] = rate_10s;
        f[TradeRate60s] = rate_60s;
        f[TradeAcceleration] = ratio(rate_10s, rate_60s);
        f[NotionalRateToLevel] = ratio(t.notional_60s / covered(60), level_rate);
        f[TradeImbalance10s] = t.imbalance_10s;
        f[TradeImbalance60s] = t.imbalance_60s;
        f[SignedNotionalToLevel] = if level_rate > 0.0 { t.signed_60s / covered(60) / level_rate } else { 0.0 };
        f[LargeTradeRatio60s] = if mean_trade > 0.0 { t.max_notional_60s / mean_trade } else { 0.0 };
        f[SweepShare60s] = if n60 > 0 { t.sweeps_60s as f64 / n60 as f64 } else { 0.0 };
        f[SweepLevels60s] = f64::from(t.max_levels_60s);
        f[DepthToTradeSize] = match (tick.best_bid_size, tick.best_ask_size) {
            (Some(bid), Some(ask)) if mean_trade > 0.0 => (bid + ask) * book.midprice / mean_trade,
            _ => f64::NAN,
        };
    }
    clamp_to_ranges(f)
}

/// The features that need trades, missing when the source reports none.
const TRADE_FEATURES: [Feature; 12] = [
    Feature::TradeRate2s,
    Feature::TradeRate10s,
    Feature::TradeRate60s,
    Feature::TradeAcceleration,
    Feature::NotionalRateToLevel,
    Feature::TradeImbalance10s,
    Feature::TradeImbalance60s,
    Feature::SignedNotionalToLevel,
    Feature::LargeTradeRatio60s,
    Feature::SweepShare60s,
    Feature::SweepLevels60s,
    Feature::DepthToTradeSize,
];

/// Keeps every value inside its declared range (ratios of extreme inputs could leave it), so
/// that whatever the engine emits, the API and the model accept. Missing stays missing.
fn clamp_to_ranges(mut f: Features) -> Features {
    for (value, spec) in f.0.iter_mut().zip(FEATURES.iter()) {
        if value.is_nan() {
            continue;
        }
        *value = value.min(spec.range.max);
        if spec.range.min_inclusive {
            *value = value.max(spec.range.min);
        }
    }
    f
}

/// A trade is a tick with a new `trade_id` (an Exchange ticker, an Advanced Trade
/// `market_trades` entry). A ticker without a trade id (Advanced Trade) counts as a trade when
/// the last trade price or size changed against the previous tick of the segment, unless the
/// product's trades arrive with ids (`trades_with_ids`: then they are counted, not guessed); the
/// first such tick of a segment has nothing to compare with and does not count.
fn is_trade(tick: &Tick, previous: Option<&Previous>, trades_with_ids: bool) -> bool {
    match (tick.trade_id, previous) {
        (Some(id), Some(p)) => p.trade_id != Some(id),
        (Some(_), None) => true,
        (None, Some(p)) => !trades_with_ids && (tick.price != p.price || tick.last_size != p.last_size),
        (None, None) => false,
    }
}

/// `a / b` for non-negative `a`, `b`; 1 (no change) when `b` is 0, which happens only when `a`
/// (a sub-window's value, or a spread in a window of zero spreads) is 0 too.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 1.0 }
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
