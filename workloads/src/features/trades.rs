//! One product's trades: arrival rates, taker imbalance, size tail and sweeps
//! (docs/features.md, "Trades").
//!
//! A trade is a tick that carries a new `trade_id` (every Exchange ticker; an Advanced Trade
//! `market_trades` entry). Its notional is `last_size × price`, signed by the taker's side. The
//! short windows (2, 10, 60 s) end at the segment's start like every other window; the hour that
//! gives the product's own scale (trade size, notional per second) spans segments. Sums are
//! exact ([`super::exact`]) and maxima come from monotonic queues: O(1) amortized per tick, and
//! a window's values depend only on the trades inside it.

use std::collections::VecDeque;

use super::exact::NotionalSum;
use super::window::NANOS_PER_SEC;

/// Short windows, in seconds.
pub(crate) const TRADE_HORIZONS: [i64; 3] = [2, 10, 60];
const T10: usize = 1;
const T60: usize = 2;
/// The window of the product's own scale, in seconds (spans segments).
pub(crate) const TRADE_LEVEL_SECS: i64 = 3600;

/// One trade as the windows keep it.
#[derive(Debug, Clone, Copy)]
struct TradeEntry {
    time: i64,
    notional: i128,
    signed: i128,
    sweep: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    cursor: usize,
    count: u64,
    sweeps: u64,
    notional: NotionalSum,
    signed: NotionalSum,
}

impl Window {
    fn add(&mut self, e: &TradeEntry) {
        self.count += 1;
        self.sweeps += u64::from(e.sweep);
        self.notional.add_units(e.notional);
        self.signed.add_units(e.signed);
    }

    fn remove(&mut self, e: &TradeEntry) {
        self.count -= 1;
        self.sweeps -= u64::from(e.sweep);
        self.notional.sub_units(e.notional);
        self.signed.sub_units(e.signed);
    }
}

/// The previous trade of the product, for sweeps.
#[derive(Debug, Clone, Copy)]
struct LastTrade {
    time: i64,
    price: f64,
    levels: u32,
}

/// A trade to fold in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Trade {
    pub time: i64,
    pub price: f64,
    /// `last_size × price`; 0 when the size is unknown.
    pub notional: f64,
    /// +1 taker buy, −1 taker sell, 0 unknown.
    pub sign: f64,
}

/// What the trade windows say at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TradeValues {
    pub counts: [u64; TRADE_HORIZONS.len()],
    pub notional_60s: f64,
    pub signed_60s: f64,
    pub imbalance_10s: f64,
    pub imbalance_60s: f64,
    pub sweeps_60s: u64,
    pub max_levels_60s: u32,
    pub max_notional_60s: f64,
    /// Trades and notional of the last hour, across segments.
    pub level_count: u64,
    pub level_notional: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TradeWindows {
    /// Trades of the last hour, oldest first, over segments.
    trades: VecDeque<TradeEntry>,
    windows: [Window; TRADE_HORIZONS.len()],
    level: Window,
    /// Largest notionals of the 60 s window, decreasing.
    big: VecDeque<(i64, i128)>,
    /// Largest sweep level counts of the 60 s window, decreasing.
    deep: VecDeque<(i64, u32)>,
    last: Option<LastTrade>,
}

impl TradeWindows {
    /// Whether any trade of the last hour is held (the product's trades come with ids).
    pub(crate) fn any(&self) -> bool {
        !self.trades.is_empty()
    }

    /// A new segment: the short windows start empty (the hour's scale is kept).
    pub(crate) fn reset(&mut self) {
        self.windows = [Window { cursor: self.trades.len(), ..Window::default() }; TRADE_HORIZONS.len()];
        self.big.clear();
        self.deep.clear();
    }

    pub(crate) fn push(&mut self, trade: Trade) {
        let sweep = self.last.is_some_and(|last| last.time == trade.time);
        let levels = match self.last {
            Some(last) if sweep => last.levels + u32::from(trade.price != last.price),
            _ => 0,
        };
        self.last = Some(LastTrade { time: trade.time, price: trade.price, levels });
        let notional = NotionalSum::units_of(trade.notional);
        let entry = TradeEntry {
            time: trade.time,
            notional,
            signed: NotionalSum::units_of(trade.notional * trade.sign),
            sweep,
        };
        self.trades.push_back(entry);
        for w in &mut self.windows {
            w.add(&entry);
        }
        self.level.add(&entry);
        while self.big.back().is_some_and(|&(_, n)| n <= notional) {
            self.big.pop_back();
        }
        self.big.push_back((trade.time, notional));
        while self.deep.back().is_some_and(|&(_, l)| l <= levels) {
            self.deep.pop_back();
        }
        self.deep.push_back((trade.time, levels));
    }

    /// Moves every window to end at `time`, then reads them.
    pub(crate) fn values(&mut self, time: i64) -> TradeValues {
        self.advance(time);
        let w60 = &self.windows[T60];
        let w10 = &self.windows[T10];
        let imbalance = |w: &Window| {
            if w.notional.is_zero() { 0.0 } else { (w.signed.value() / w.notional.value()).clamp(-1.0, 1.0) }
        };
        TradeValues {
            counts: std::array::from_fn(|k| self.windows[k].count),
            notional_60s: w60.notional.value(),
            signed_60s: w60.signed.value(),
            imbalance_10s: imbalance(w10),
            imbalance_60s: imbalance(w60),
            sweeps_60s: w60.sweeps,
            max_levels_60s: self.deep.front().map_or(0, |&(_, l)| l),
            max_notional_60s: self.big.front().map_or(0.0, |&(_, n)| NotionalSum::value_of(n)),
            level_count: self.level.count,
            level_notional: self.level.notional.value(),
        }
    }

    fn advance(&mut self, time: i64) {
        for (w, secs) in self.windows.iter_mut().zip(TRADE_HORIZONS) {
            let cutoff = time.saturating_sub(secs * NANOS_PER_SEC);
            while let Some(e) = self.trades.get(w.cursor).copied() {
                if e.time > cutoff {
                    break;
                }
                w.remove(&e);
                w.cursor += 1;
            }
        }
        let cutoff_60 = time.saturating_sub(TRADE_HORIZONS[T60] * NANOS_PER_SEC);
        while self.big.front().is_some_and(|&(t, _)| t <= cutoff_60) {
            self.big.pop_front();
        }
        while self.deep.front().is_some_and(|&(t, _)| t <= cutoff_60) {
            self.deep.pop_front();
        }
        let cutoff_level = time.saturating_sub(TRADE_LEVEL_SECS * NANOS_PER_SEC);
        while let Some(e) = self.trades.front().copied() {
            if e.time > cutoff_level {
                break;
            }
            self.level.remove(&e);
            self.trades.pop_front();
            for w in &mut self.windows {
                w.cursor = w.cursor.saturating_sub(1);
            }
        }
    }
}
