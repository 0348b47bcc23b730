//! The forward quantities the label needs, computed offline only (they look into the future).
//!
//! For a row at event time `t`: the log mid returns whose later tick lies in `(t, t + 60 s]`
//! (the first of them starts from the mid at `t`, i.e. of the last tick at or before `t`),
//! their sample standard deviation, and how many ticks that window holds. The window never
//! overlaps the features' windows, which end at `t`.

use super::window::{NANOS_PER_SEC, log_return, sample_std};

/// Length of the future window.
pub const FUTURE_HORIZON_SECS: i64 = 60;

/// One accepted tick of one product, in processing order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelPoint {
    /// Event time in nanoseconds since the epoch (as applied by the engine).
    pub time_nanos: i64,
    pub segment: u64,
    pub midprice: f64,
}

/// The forward quantities of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forward {
    /// Sample std of the log mid returns in `(t, t + 60 s]`; `None` when the window is incomplete.
    pub volatility_60s: Option<f64>,
    /// The segment has a tick after `t + 60 s`: no reset and no end of data inside the window.
    pub window_complete: bool,
    /// Ticks of the segment in `(t, t + 60 s]`.
    pub tick_count: u64,
}

/// Forward quantities for every point of ONE product. Points must be in processing order
/// (non-decreasing time within a segment, segments contiguous), as the engine produces them.
///
/// Two pointers per segment and prefix sums of the returns: O(n) in total.
pub fn forward_windows(points: &[LabelPoint]) -> Vec<Forward> {
    let mut out = Vec::with_capacity(points.len());
    let mut start = 0;
    while start < points.len() {
        let segment = points[start].segment;
        let end = points[start..].iter().position(|p| p.segment != segment).map_or(points.len(), |n| start + n);
        forward_in_segment(&points[start..end], &mut out);
        start = end;
    }
    out
}

fn forward_in_segment(points: &[LabelPoint], out: &mut Vec<Forward>) {
    let horizon = FUTURE_HORIZON_SECS * NANOS_PER_SEC;
    // prefix[k] = moments of the returns of points[1..k] (point 0 starts the segment: no return).
    let mut prefix = Vec::with_capacity(points.len() + 1);
    let mut acc = PrefixMoments::default();
    prefix.push(acc);
    for (k, p) in points.iter().enumerate() {
        if k > 0 {
            acc.add(log_return(p.midprice, points[k - 1].midprice));
        }
        prefix.push(acc);
    }
    let last_time = points.last().map_or(i64::MIN, |p| p.time_nanos);

    // Window of point i = points[first..past], first = first index with time > t,
    // past = first index with time > t + 60 s. Both only move forward.
    let (mut first, mut past) = (0, 0);
    for p in points {
        let t = p.time_nanos;
        let window_end = t.saturating_add(horizon);
        while first < points.len() && points[first].time_nanos <= t {
            first += 1;
        }
        past = past.max(first);
        while past < points.len() && points[past].time_nanos <= window_end {
            past += 1;
        }
        let window_complete = last_time > window_end;
        let moments = prefix[past].minus(&prefix[first]);
        out.push(Forward {
            volatility_60s: window_complete.then(|| moments.std()),
            window_complete,
            tick_count: (past - first) as u64,
        });
    }
}

/// Running totals of returns; a window's moments are the difference of two prefixes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PrefixMoments {
    n: u64,
    nonzero: u64,
    sum: f64,
    sum_sq: f64,
}

impl PrefixMoments {
    pub(crate) fn add(&mut self, r: f64) {
        self.n += 1;
        if r != 0.0 {
            self.nonzero += 1;
            self.sum += r;
            self.sum_sq += r * r;
        }
    }

    pub(crate) fn minus(&self, earlier: &PrefixMoments) -> PrefixMoments {
        PrefixMoments {
            n: self.n - earlier.n,
            nonzero: self.nonzero - earlier.nonzero,
            sum: self.sum - earlier.sum,
            sum_sq: self.sum_sq - earlier.sum_sq,
        }
    }

    pub(crate) fn std(&self) -> f64 {
        sample_std(self.n, self.nonzero, self.sum, self.sum_sq)
    }
}
