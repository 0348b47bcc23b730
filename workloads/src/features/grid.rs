//! The one-second grid of one product's mid price, the clock of the realized-variance features
//! and of the label (docs/features.md, "The one-second grid").
//!
//! `mid(u)` is the mid of the last tick at or before the integer second `u`, and
//! `r(u) = ln mid(u) − ln mid(u − 1)`. A tick at time `t` lies in grid second `S = ⌈t⌉`: the
//! seconds before `S` are final (every tick at or before them has been seen), the return of `S`
//! itself is provisional until the next tick, and is the final one when this tick is the last of
//! its second. A window of `h` seconds at `S` is `(S − h, S]`: its closed seconds plus the open
//! one, so the features of the last tick at or before a second equal the grid's value at that
//! second.
//!
//! Only non-zero returns are stored (a second without a tick repeats the previous mid), with
//! running exact sums per horizon: O(1) amortized per tick, whatever the tick rate. The
//! horizons of [`GRID_HORIZONS`] end at the segment's start (a silence resets them); the
//! trailing level reaches back an hour across segments, over the seconds they covered.

use std::collections::VecDeque;

use super::exact::SmallSum;
use super::window::{NANOS_PER_SEC, log_return};

/// The within-segment horizons of the grid, in seconds.
pub(crate) const GRID_HORIZONS: [i64; 5] = [10, 30, 60, 300, 900];
const G60: usize = 2;
/// The trailing level's window, in seconds (it spans segments).
pub(crate) const LEVEL_SECS: i64 = 3600;
/// `segment_age` stops counting here (so that an hour of history determines it).
pub(crate) const MAX_SEGMENT_AGE_SECS: i64 = 3600;

/// The grid second a time (ns since the epoch) lies in: `⌈t⌉`.
pub(crate) fn grid_second(time: i64) -> i64 {
    time.div_euclid(NANOS_PER_SEC) + i64::from(time.rem_euclid(NANOS_PER_SEC) != 0)
}

/// A closed second with a non-zero return.
#[derive(Debug, Clone, Copy)]
struct GridReturn {
    second: i64,
    abs: f64,
    sq: i128,
    /// `|r(u)| |r(u − 1)|` when `u − 1` is a non-zero return of the same segment, else 0.
    bipower: i128,
}

/// Sums of one within-segment horizon: the entries from `cursor` on lie in `(S − h, S − 1]`.
#[derive(Debug, Clone, Copy, Default)]
struct Horizon {
    cursor: usize,
    sq: SmallSum,
    bipower: SmallSum,
}

/// Seconds of a past segment that had returns, `[first, last]`.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: i64,
    last: i64,
}

/// The grid state of the current segment.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// First grid second of the segment (the first tick's); returns start one second later.
    start: i64,
    /// The open second `S` (the latest tick's).
    second: i64,
    /// Mid of the latest tick: `mid(S)` so far.
    mid: f64,
    /// `mid(S − 1)`, once `S − 1` belongs to the segment.
    base: Option<f64>,
}

/// What the grid says after a tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GridValues {
    /// Realized variance per covered second over each of [`GRID_HORIZONS`].
    pub rv: [f64; GRID_HORIZONS.len()],
    /// Bipower variation per covered second over 60 s.
    pub bv_60s: f64,
    /// Largest squared return of the last 60 s over their sum (0 when the sum is 0).
    pub jump_share_60s: f64,
    /// Realized variance per covered second over the last hour, across segments.
    pub level: f64,
    /// Seconds of the segment with a return (`S − start`), at most [`MAX_SEGMENT_AGE_SECS`].
    pub age: i64,
    /// Seconds with a return in the level's window.
    pub level_seconds: i64,
}

/// One product's grid.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecondGrid {
    /// Non-zero closed returns of the last hour, oldest first, over segments.
    returns: VecDeque<GridReturn>,
    /// Index of the current segment's first entry in `returns`.
    segment_first: usize,
    horizons: [Horizon; GRID_HORIZONS.len()],
    /// Squared returns in `(S − 3600, S − 1]`, over segments (every entry of `returns`).
    level: SmallSum,
    /// Largest squared returns of the 60 s window, decreasing (a monotonic queue).
    peaks: VecDeque<(i64, i128)>,
    /// Past segments still inside the level's window.
    spans: VecDeque<Span>,
    open: Option<Open>,
}

impl SecondGrid {
    /// Ends the current segment: its open second is final (the next tick is after a silence).
    pub(crate) fn end_segment(&mut self) {
        let Some(open) = self.open.take() else { return };
        self.close(open);
        if open.second > open.start {
            self.spans.push_back(Span { first: open.start + 1, last: open.second });
        }
        self.segment_first = self.returns.len();
        self.horizons = [Horizon { cursor: self.returns.len(), ..Horizon::default() }; GRID_HORIZONS.len()];
        self.peaks.clear();
    }

    /// Folds in a tick at `time` (ns, never before the previous one) with mid `mid`.
    pub(crate) fn push(&mut self, time: i64, mid: f64) -> GridValues {
        let second = grid_second(time);
        match self.open {
            None => self.open = Some(Open { start: second, second, mid, base: None }),
            Some(open) if second == open.second => self.open = Some(Open { mid, ..open }),
            Some(open) => {
                self.close(open);
                // Every second from the open one to `second − 1` has the open second's mid.
                self.open = Some(Open { start: open.start, second, mid, base: Some(open.mid) });
            }
        }
        self.advance(second);
        self.values()
    }

    /// Stores the final return of a second that just closed, when it is not zero.
    fn close(&mut self, open: Open) {
        let Some(base) = open.base else { return };
        let r = log_return(open.mid, base);
        if r == 0.0 {
            return;
        }
        let bipower = match self.returns.back() {
            Some(prev) if prev.second == open.second - 1 && self.returns.len() > self.segment_first => {
                SmallSum::units_of(r.abs() * prev.abs)
            }
            _ => 0,
        };
        let entry = GridReturn { second: open.second, abs: r.abs(), sq: SmallSum::units_of(r * r), bipower };
        self.returns.push_back(entry);
        for h in &mut self.horizons {
            h.sq.add_units(entry.sq);
            h.bipower.add_units(entry.bipower);
        }
        self.level.add_units(entry.sq);
        while self.peaks.back().is_some_and(|&(_, sq)| sq <= entry.sq) {
            self.peaks.pop_back();
        }
        self.peaks.push_back((entry.second, entry.sq));
    }

    /// Moves every window to end at `second`.
    fn advance(&mut self, second: i64) {
        for (h, secs) in self.horizons.iter_mut().zip(GRID_HORIZONS) {
            while let Some(e) = self.returns.get(h.cursor) {
                if e.second > second - secs {
                    break;
                }
                h.sq.sub_units(e.sq);
                h.bipower.sub_units(e.bipower);
                h.cursor += 1;
            }
        }
        while self.peaks.front().is_some_and(|&(s, _)| s <= second - GRID_HORIZONS[G60]) {
            self.peaks.pop_front();
        }
        while let Some(e) = self.returns.front() {
            if e.second > second - LEVEL_SECS {
                break;
            }
            self.level.sub_units(e.sq);
            self.returns.pop_front();
            self.segment_first = self.segment_first.saturating_sub(1);
            for h in &mut self.horizons {
                h.cursor = h.cursor.saturating_sub(1);
            }
        }
        while self.spans.front().is_some_and(|s| s.last <= second - LEVEL_SECS) {
            self.spans.pop_front();
        }
    }

    fn values(&self) -> GridValues {
        let Some(open) = self.open else {
            return GridValues {
                rv: [0.0; GRID_HORIZONS.len()],
                bv_60s: 0.0,
                jump_share_60s: 0.0,
                level: 0.0,
                age: 0,
                level_seconds: 0,
            };
        };
        // The open second's return so far, and its bipower term with the second before it.
        let (partial_sq, partial_bipower) = match open.base {
            Some(base) => {
                let r = log_return(open.mid, base);
                let bipower = match self.returns.back() {
                    Some(prev) if prev.second == open.second - 1 && self.returns.len() > self.segment_first => {
                        SmallSum::units_of(r.abs() * prev.abs)
                    }
                    _ => 0,
                };
                (SmallSum::units_of(r * r), bipower)
            }
            None => (0, 0),
        };
        let age = open.second - open.start;
        let per_second =
            |units: i128, seconds: i64| -> f64 { if seconds <= 0 { 0.0 } else { units_value(units) / seconds as f64 } };
        let rv = std::array::from_fn(|k| {
            let h = &self.horizons[k];
            per_second(units_sum(h.sq, partial_sq), age.min(GRID_HORIZONS[k]))
        });
        let h60 = &self.horizons[G60];
        let sum_60 = units_sum(h60.sq, partial_sq);
        let peak = self.peaks.front().map_or(0, |&(_, sq)| sq).max(partial_sq);
        let jump_share_60s = if sum_60 > 0 { (units_value(peak) / units_value(sum_60)).min(1.0) } else { 0.0 };
        let bv_60s = std::f64::consts::FRAC_PI_2
            * per_second(units_sum(h60.bipower, partial_bipower), age.min(GRID_HORIZONS[G60]));
        let window_start = open.second - LEVEL_SECS + 1;
        let past: i64 = self.spans.iter().map(|s| (s.last - s.first.max(window_start) + 1).max(0)).sum();
        let current = (open.second - (open.start + 1).max(window_start) + 1).max(0);
        let level_seconds = past + current;
        GridValues {
            rv,
            bv_60s,
            jump_share_60s,
            level: per_second(units_sum(self.level, partial_sq), level_seconds),
            age: age.min(MAX_SEGMENT_AGE_SECS),
            level_seconds,
        }
    }
}

/// `sum` plus `extra` units.
fn units_sum(sum: SmallSum, extra: i128) -> i128 {
    sum.units().saturating_add(extra)
}

/// What a (non-negative) number of units stands for.
fn units_value(units: i128) -> f64 {
    SmallSum::value_of(units).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;

    #[test]
    fn grid_seconds_round_up() {
        assert_eq!(grid_second(0), 0);
        assert_eq!(grid_second(1), 1);
        assert_eq!(grid_second(S), 1);
        assert_eq!(grid_second(S + 1), 2);
        assert_eq!(grid_second(-1), 0);
        assert_eq!(grid_second(-S - 1), -1);
    }
}
