//! The ring buffer behind every time window of one product: recent ticks, a cursor per horizon
//! and running sums, so that each tick costs amortized O(1) work (docs/features.md).
//!
//! Entries are kept in event-time order. For each horizon `h` a cursor counts the entries whose
//! time is `<= t - h`: the entry just before the cursor is the return base of that horizon, the
//! entries from the cursor on lie inside `(t - h, t]`. Cursors only move forward, so every entry
//! crosses each cursor once; entries older than the base of the longest horizon (30 min) are
//! dropped from the front.
//!
//! Running sums are recomputed from the window's entries at the first push of every period of
//! event time as long as the window (`time.div_euclid(h)` changes), as well as after as many
//! removals as the window holds. That makes a window's state a function of the ticks of the last
//! two window lengths alone, not of how long the engine has run, which is what lets a restarted
//! featurizer rebuild bit-identical windows ([`WARMUP_HORIZON_SECS`]).

use std::collections::VecDeque;

pub(crate) const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Horizons with a cursor, in seconds, shortest first.
const HORIZONS_SECS: [i64; 7] = [1, 5, 10, 30, 60, 300, 1800];
const H1: usize = 0;
const H5: usize = 1;
const H10: usize = 2;
const H30: usize = 3;
const H60: usize = 4;
const H300: usize = 5;
const H1800: usize = 6;

/// Event time whose ticks fully determine a window's state: a recomputation happens at the
/// latest one window length back, from the ticks of one window length before it. (The engine's
/// warm-up horizon, `FeatureEngine::warmup_horizon`, adds the out-of-order tolerance.)
pub(crate) const WARMUP_HORIZON_SECS: i64 = 2 * HORIZONS_SECS[HORIZONS_SECS.len() - 1];

/// Length of the long window (volatility, trade intensity, tick count).
pub(crate) const LONG_WINDOW_SECS: f64 = 60.0;
/// Length of the 5-minute window (volatility, tick rate, mean spread).
pub(crate) const FIVE_MINUTES_SECS: f64 = 300.0;
/// Length of the short window of the tick rate.
pub(crate) const SHORT_WINDOW_SECS: f64 = 10.0;

/// Recompute a window's sums from its entries once this many returns (at least) have left it
/// since the last recomputation; together with the window's own length this bounds drift while
/// keeping the cost amortized O(1).
const MIN_REMOVALS_BEFORE_RECOMPUTE: u64 = 64;

/// `ln(a / b)` for positive finite prices. The ratio form is the more precise one (equal mids give
/// exactly 0); the difference of logarithms is the fallback when the ratio over- or underflows.
pub(crate) fn log_return(a: f64, b: f64) -> f64 {
    let r = (a / b).ln();
    if r.is_finite() { r } else { a.ln() - b.ln() }
}

/// The period of event time, one window length `HORIZONS_SECS[k]` long, that `time` falls in.
fn epoch_of(time: i64, k: usize) -> i64 {
    time.div_euclid(HORIZONS_SECS[k] * NANOS_PER_SEC)
}

/// Sample standard deviation (n − 1 denominator) from running moments; 0 with fewer than two
/// returns or when every return is exactly zero (a count kept exactly, so a flat market reads as
/// exactly 0 instead of rounding residue).
pub(crate) fn sample_std(n: u64, nonzero: u64, sum: f64, sum_sq: f64) -> f64 {
    if n < 2 || nonzero == 0 {
        return 0.0;
    }
    let n = n as f64;
    let var = (sum_sq - sum * sum / n) / (n - 1.0);
    if var > 0.0 { var.sqrt() } else { 0.0 }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    time: i64,
    mid: f64,
    /// Log mid return from the previous entry of the segment (0 for the segment's first tick).
    ret: f64,
    has_ret: bool,
    trade: bool,
    /// `spread / mid` of the tick.
    spread_rel: f64,
}

/// Running moments of the log returns inside one window.
#[derive(Debug, Clone, Default)]
struct Moments {
    n: u64,
    nonzero: u64,
    sum: f64,
    sum_sq: f64,
    removed_since_recompute: u64,
    /// Period of event time (`time.div_euclid(window)`) of the last recomputation.
    epoch: Option<i64>,
}

impl Moments {
    fn add(&mut self, e: &Entry) {
        if !e.has_ret {
            return;
        }
        self.n += 1;
        if e.ret != 0.0 {
            self.nonzero += 1;
            self.sum += e.ret;
            self.sum_sq += e.ret * e.ret;
        }
    }

    fn remove(&mut self, e: &Entry) {
        if !e.has_ret {
            return;
        }
        self.n -= 1;
        self.removed_since_recompute += 1;
        if e.ret != 0.0 {
            self.nonzero -= 1;
            if self.nonzero == 0 {
                // Only zero returns remain: the exact sums are 0, drop any rounding residue.
                self.sum = 0.0;
                self.sum_sq = 0.0;
            } else {
                self.sum -= e.ret;
                self.sum_sq -= e.ret * e.ret;
            }
        }
    }

    fn due_for_recompute(&self, epoch: i64) -> bool {
        self.epoch != Some(epoch) || self.removed_since_recompute >= self.n.max(MIN_REMOVALS_BEFORE_RECOMPUTE)
    }

    fn recompute<'a>(&mut self, entries: impl Iterator<Item = &'a Entry>, epoch: i64) {
        *self = Moments { epoch: Some(epoch), ..Moments::default() };
        for e in entries {
            self.add(e);
        }
    }

    fn std(&self) -> f64 {
        sample_std(self.n, self.nonzero, self.sum, self.sum_sq)
    }
}

/// Running sum of the relative spreads inside one window (every entry has one).
#[derive(Debug, Clone, Default)]
struct SpreadSum {
    n: u64,
    sum: f64,
    removed_since_recompute: u64,
    epoch: Option<i64>,
}

impl SpreadSum {
    fn add(&mut self, e: &Entry) {
        self.n += 1;
        self.sum += e.spread_rel;
    }

    fn remove(&mut self, e: &Entry) {
        self.n -= 1;
        self.removed_since_recompute += 1;
        self.sum = if self.n == 0 { 0.0 } else { self.sum - e.spread_rel };
    }

    fn due_for_recompute(&self, epoch: i64) -> bool {
        self.epoch != Some(epoch) || self.removed_since_recompute >= self.n.max(MIN_REMOVALS_BEFORE_RECOMPUTE)
    }

    fn recompute<'a>(&mut self, entries: impl Iterator<Item = &'a Entry>, epoch: i64) {
        *self = SpreadSum { epoch: Some(epoch), ..SpreadSum::default() };
        for e in entries {
            self.add(e);
        }
    }

    /// Mean relative spread; 0 for an empty window.
    fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { (self.sum / self.n as f64).max(0.0) }
    }
}

/// What the windows say right after a tick was pushed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WindowValues {
    pub return_1s: f64,
    pub return_5s: f64,
    pub return_30s: f64,
    pub return_60s: f64,
    pub volatility_60s: f64,
    pub volatility_10s: f64,
    pub volatility_300s: f64,
    pub volatility_1800s: f64,
    pub trades_60s: u64,
    pub ticks_60s: u64,
    pub ticks_10s: u64,
    pub ticks_300s: u64,
    /// Mean `spread / mid` of the ticks in `(t − 300 s, t]`.
    pub spread_rel_mean_300s: f64,
}

/// One product's windows within one segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct TickWindow {
    entries: VecDeque<Entry>,
    /// `cursors[k]` = number of entries with `time <= t - HORIZONS_SECS[k]`.
    cursors: [usize; HORIZONS_SECS.len()],
    long: Moments,
    short: Moments,
    five_minutes: Moments,
    half_hour: Moments,
    spread_five_minutes: SpreadSum,
    trades_long: u64,
}

impl TickWindow {
    /// Forgets everything (a new segment starts).
    pub(crate) fn reset(&mut self) {
        self.entries.clear();
        self.cursors = [0; HORIZONS_SECS.len()];
        self.long = Moments::default();
        self.short = Moments::default();
        self.five_minutes = Moments::default();
        self.half_hour = Moments::default();
        self.spread_five_minutes = SpreadSum::default();
        self.trades_long = 0;
    }

    /// Number of entries held (the 30 min window plus its base): the memory bound.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds the tick at `time` (never earlier than the previous push) and returns the window values.
    pub(crate) fn push(&mut self, time: i64, mid: f64, trade: bool, spread_rel: f64) -> WindowValues {
        let prev_mid = self.entries.back().map(|prev| prev.mid);
        let entry = Entry {
            time,
            mid,
            ret: prev_mid.map_or(0.0, |prev| log_return(mid, prev)),
            has_ret: prev_mid.is_some(),
            trade,
            spread_rel,
        };
        self.entries.push_back(entry);
        self.long.add(&entry);
        self.short.add(&entry);
        self.five_minutes.add(&entry);
        self.half_hour.add(&entry);
        self.spread_five_minutes.add(&entry);
        self.trades_long += u64::from(trade);

        self.advance_cursors(time);
        self.drop_before_longest_base();
        for (moments, horizon) in [
            (&mut self.long, H60),
            (&mut self.short, H10),
            (&mut self.five_minutes, H300),
            (&mut self.half_hour, H1800),
        ] {
            let epoch = epoch_of(time, horizon);
            if moments.due_for_recompute(epoch) {
                moments.recompute(self.entries.range(self.cursors[horizon]..), epoch);
            }
        }
        let epoch = epoch_of(time, H300);
        if self.spread_five_minutes.due_for_recompute(epoch) {
            self.spread_five_minutes.recompute(self.entries.range(self.cursors[H300]..), epoch);
        }

        WindowValues {
            return_1s: log_return(mid, self.base_mid(H1)),
            return_5s: log_return(mid, self.base_mid(H5)),
            return_30s: log_return(mid, self.base_mid(H30)),
            return_60s: log_return(mid, self.base_mid(H60)),
            volatility_60s: self.long.std(),
            volatility_10s: self.short.std(),
            volatility_300s: self.five_minutes.std(),
            volatility_1800s: self.half_hour.std(),
            trades_60s: self.trades_long,
            ticks_60s: (self.entries.len() - self.cursors[H60]) as u64,
            ticks_10s: (self.entries.len() - self.cursors[H10]) as u64,
            ticks_300s: (self.entries.len() - self.cursors[H300]) as u64,
            spread_rel_mean_300s: self.spread_five_minutes.mean(),
        }
    }

    fn advance_cursors(&mut self, now: i64) {
        for (k, secs) in HORIZONS_SECS.iter().enumerate() {
            let cutoff = now.saturating_sub(secs * NANOS_PER_SEC);
            while let Some(e) = self.entries.get(self.cursors[k]).copied() {
                if e.time > cutoff {
                    break;
                }
                self.cursors[k] += 1;
                match k {
                    H60 => {
                        self.long.remove(&e);
                        self.trades_long -= u64::from(e.trade);
                    }
                    H10 => self.short.remove(&e),
                    H300 => {
                        self.five_minutes.remove(&e);
                        self.spread_five_minutes.remove(&e);
                    }
                    H1800 => self.half_hour.remove(&e),
                    _ => {}
                }
            }
        }
    }

    /// Keeps only the 30 min base (the last entry at or before t − 30 min) and what follows it.
    fn drop_before_longest_base(&mut self) {
        let excess = self.cursors[H1800].saturating_sub(1);
        if excess > 0 {
            self.entries.drain(..excess);
            for c in &mut self.cursors {
                *c -= excess;
            }
        }
    }

    /// Mid of the latest entry at or before `t - h`; before the segment is `h` old, the oldest
    /// mid of the segment (nothing has been dropped yet then, so that is the front entry).
    fn base_mid(&self, k: usize) -> f64 {
        let index = self.cursors[k].saturating_sub(1);
        self.entries.get(index).map_or(f64::NAN, |e| e.mid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;

    #[test]
    fn memory_is_bounded_by_the_longest_window() {
        let mut w = TickWindow::default();
        for i in 0..30_000 {
            // 10 ticks per second
            w.push(i * S / 10, 100.0 + (i % 7) as f64, i % 2 == 0, 1e-4);
        }
        // 18,000 ticks in (t − 1800 s, t] plus the base
        assert_eq!(w.len(), 18_001);
    }

    #[test]
    fn recomputation_matches_running_sums() {
        let mut w = TickWindow::default();
        let mut last = None;
        for i in 0..5_000i64 {
            let mid = 100.0 * (1.0 + 0.001 * ((i * 7919) % 13 - 6) as f64);
            last = Some(w.push(i * S / 20, mid, true, 1e-4 * (1 + i % 3) as f64));
        }
        let v = last.unwrap();
        let rets: Vec<f64> = w.entries.range(w.cursors[H60]..).map(|e| e.ret).collect();
        let mean = rets.iter().sum::<f64>() / rets.len() as f64;
        let var = rets.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (rets.len() - 1) as f64;
        assert!((v.volatility_60s - var.sqrt()).abs() < 1e-12, "{} vs {}", v.volatility_60s, var.sqrt());
        let spreads: Vec<f64> = w.entries.range(w.cursors[H300]..).map(|e| e.spread_rel).collect();
        let mean = spreads.iter().sum::<f64>() / spreads.len() as f64;
        assert!((v.spread_rel_mean_300s - mean).abs() < 1e-15, "{} vs {mean}", v.spread_rel_mean_300s);
    }

    #[test]
    fn std_of_fewer_than_two_returns_is_zero() {
        assert_eq!(sample_std(0, 0, 0.0, 0.0), 0.0);
        assert_eq!(sample_std(1, 1, 0.5, 0.25), 0.0);
        assert_eq!(sample_std(5, 0, 1e-30, 1e-60), 0.0);
    }

    #[test]
    fn log_return_survives_extreme_ratios() {
        assert!(log_return(f64::MAX, f64::MIN_POSITIVE).is_finite());
        assert!(log_return(f64::MIN_POSITIVE, f64::MAX).is_finite());
        assert_eq!(log_return(3.5, 3.5), 0.0);
    }
}
