//! The label (version 2) and the seconds it is evaluated on, computed offline only (it looks
//! into the future). docs/features.md, "Label".
//!
//! For a product at grid second `s`: `mid(s)` is the mid of the last tick at or before `s`,
//! `r(s) = ln mid(s) − ln mid(s − 1)` and `RV(s) = Σ r(u)²` over `u` in `(s, s + 60]`: the
//! realized variance of one-second returns over the coming minute. A second is evaluated when
//! it is at least 60 s after the first tick of its run and 60 s before its last, a run being
//! the product's ticks between two silences longer than [`SILENCE_SECS`]; so no silence touches
//! `(s − 60, s + 60]` and no label window crosses one. Whether `RV(s)` is a spike (the top
//! decile of the product's day) is decided by the trainer, which sees whole days.
//!
//! The past windows (`(s − h, s]` for 60, 300 and 900 s, per covered second, within the run)
//! are the baselines' inputs at `s` exactly: persistence and HAR-RV.

use super::grid::grid_second;
use super::window::{NANOS_PER_SEC, log_return};

/// Length of the label's window, in seconds.
pub const HORIZON_SECS: i64 = 60;
/// A silence longer than this (between two ticks of a product) ends a run of evaluated seconds.
pub const SILENCE_SECS: i64 = 30;
/// The past windows of the baselines, in seconds.
pub const PAST_WINDOWS_SECS: [i64; 3] = [60, 300, 900];

/// One accepted tick of one product, in processing order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelPoint {
    /// Event time in nanoseconds since the epoch (as applied by the engine).
    pub time_nanos: i64,
    pub midprice: f64,
}

/// The label of one evaluated second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondLabel {
    /// The grid second `s` (seconds since the epoch).
    pub second: i64,
    /// Index (into the points) of the last tick at or before `s`: the row that is scored for `s`.
    pub point: usize,
    /// `RV(s)`: squared one-second returns over `(s, s + 60]`.
    pub rv_future_60s: f64,
    /// Squared one-second returns over `(s − h, s]` per covered second of the run, for each of
    /// [`PAST_WINDOWS_SECS`] (the 60 s one times 60 is persistence's `RV` of the past minute).
    pub rv_past: [f64; PAST_WINDOWS_SECS.len()],
}

/// The evaluated seconds of ONE product, in time order. Points must be in processing order
/// (non-decreasing time), as the engine produces them.
///
/// One pass over the points and the seconds of each run: O(n + seconds covered).
pub fn evaluated_seconds(points: &[LabelPoint]) -> Vec<SecondLabel> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < points.len() {
        let mut end = start + 1;
        while end < points.len() && points[end].time_nanos - points[end - 1].time_nanos <= SILENCE_SECS * NANOS_PER_SEC
        {
            end += 1;
        }
        label_run(&points[start..end], start, &mut out);
        start = end;
    }
    out
}

/// The seconds of one run (`points`, the first of which is `points[offset]` overall).
fn label_run(points: &[LabelPoint], offset: usize, out: &mut Vec<SecondLabel>) {
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return };
    let horizon = HORIZON_SECS * NANOS_PER_SEC;
    // Evaluated: first + 60 s <= s and s <= last − 60 s (s in ns: s · 10⁹).
    let lo = grid_second(first.time_nanos.saturating_add(horizon));
    let hi = (last.time_nanos - horizon).div_euclid(NANOS_PER_SEC);
    if lo > hi {
        return;
    }
    // The run's grid: mid(u) for u in [g0, g1], with g0 the first tick's second.
    let g0 = grid_second(first.time_nanos);
    let g1 = hi + HORIZON_SECS;
    let len = usize::try_from(g1 - g0 + 1).unwrap_or(0);
    // last_point[k]: index of the last tick at or before second g0 + k.
    let mut last_point = Vec::with_capacity(len);
    let mut p = 0;
    for k in 0..len {
        let end_ns = (g0 + k as i64) * NANOS_PER_SEC;
        while p + 1 < points.len() && points[p + 1].time_nanos <= end_ns {
            p += 1;
        }
        last_point.push(p);
    }
    // prefix[k] = Σ r(u)² for u in (g0, g0 + k].
    let mut prefix = Vec::with_capacity(len);
    prefix.push(0.0);
    for k in 1..len {
        let r = log_return(points[last_point[k]].midprice, points[last_point[k - 1]].midprice);
        prefix.push(prefix[k - 1] + r * r);
    }
    let sum = |from: usize, to: usize| (prefix[to] - prefix[from]).max(0.0);
    for s in lo..=hi {
        let k = (s - g0) as usize;
        let rv_past = PAST_WINDOWS_SECS.map(|h| {
            let covered = (h as usize).min(k);
            if covered == 0 { 0.0 } else { sum(k - covered, k) / covered as f64 }
        });
        out.push(SecondLabel {
            second: s,
            point: offset + last_point[k],
            rv_future_60s: sum(k, k + HORIZON_SECS as usize),
            rv_past,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;

    fn point(secs: f64, mid: f64) -> LabelPoint {
        LabelPoint { time_nanos: (secs * S as f64) as i64, midprice: mid }
    }

    #[test]
    fn a_second_is_evaluated_a_minute_inside_its_run() {
        // Ticks every 0.5 s from 0 to 200 s: evaluated seconds 60..=140.
        let points: Vec<_> = (0..=400).map(|i| point(i as f64 * 0.5, 100.0)).collect();
        let labels = evaluated_seconds(&points);
        assert_eq!(labels.first().map(|l| l.second), Some(60));
        assert_eq!(labels.last().map(|l| l.second), Some(140));
        assert_eq!(labels.len(), 81);
        assert!(labels.iter().all(|l| l.rv_future_60s == 0.0), "a flat mid has no variance");
        // The row scored for second 60 is the tick at 60.0 (at or before it).
        assert_eq!(points[labels[0].point].time_nanos, 60 * S);
    }

    #[test]
    fn a_silence_splits_runs_and_nothing_near_it_is_evaluated() {
        let mut points: Vec<_> = (0..=300).map(|i| point(i as f64, 100.0)).collect();
        // 31 s of silence, then another 300 s.
        points.extend((0..=300).map(|i| point(331.0 + i as f64, 100.0)));
        let seconds: Vec<i64> = evaluated_seconds(&points).iter().map(|l| l.second).collect();
        assert_eq!(seconds.first(), Some(&60));
        assert!(seconds.contains(&240) && !seconds.contains(&241), "60 s before the silence");
        assert!(!seconds.contains(&390) && seconds.contains(&391), "60 s after the run restarts");
        assert_eq!(seconds.last(), Some(&571));
        // A silence of exactly 30 s does not split.
        let mut joined: Vec<_> = (0..=300).map(|i| point(i as f64, 100.0)).collect();
        joined.extend((0..=300).map(|i| point(330.0 + i as f64, 100.0)));
        assert_eq!(evaluated_seconds(&joined).len(), 630 - 120 + 1);
    }

    #[test]
    fn the_label_is_the_realized_variance_of_the_coming_minute_on_the_grid() {
        // A mid that changes at 100.5 s (inside second 101) and twice within second 131.
        let mut points = vec![point(0.0, 100.0), point(100.5, 101.0), point(130.2, 102.0), point(130.7, 100.0)];
        points.push(point(300.0, 100.0));
        let mut ticks = Vec::new();
        for p in points {
            // Fill silences with unchanged ticks every 10 s so that the run is unbroken.
            if let Some(&LabelPoint { time_nanos, midprice }) = ticks.last() {
                let mut t = time_nanos + 10 * S;
                while t < p.time_nanos {
                    ticks.push(LabelPoint { time_nanos: t, midprice });
                    t += 10 * S;
                }
            }
            ticks.push(p);
        }
        let labels = evaluated_seconds(&ticks);
        let at = |s: i64| labels.iter().find(|l| l.second == s).copied().unwrap();
        let r1 = (101.0f64 / 100.0).ln();
        // Second 131 ends at 100: the move 101 → 102 → 100 inside it nets ln(100/101).
        let r2 = (100.0f64 / 101.0).ln();
        // s = 70: (70, 130] holds second 101 only.
        assert!((at(70).rv_future_60s - r1 * r1).abs() < 1e-15);
        // s = 71: (71, 131] holds both.
        assert!((at(71).rv_future_60s - (r1 * r1 + r2 * r2)).abs() < 1e-15);
        // s = 101: (101, 161] holds 131 only; its past minute (41, 101] holds 101.
        assert!((at(101).rv_future_60s - r2 * r2).abs() < 1e-15);
        assert!((at(101).rv_past[0] - r1 * r1 / 60.0).abs() < 1e-18);
        // The past 300 s at 101 cover 101 seconds of the run.
        assert!((at(101).rv_past[1] - r1 * r1 / 101.0).abs() < 1e-18);
        assert_eq!(at(131).rv_future_60s, 0.0);
    }

    #[test]
    fn short_runs_have_no_evaluated_second() {
        let points: Vec<_> = (0..=119).map(|i| point(i as f64, 100.0 + i as f64)).collect();
        assert!(evaluated_seconds(&points).is_empty());
        assert!(evaluated_seconds(&[]).is_empty());
    }
}
