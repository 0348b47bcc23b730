//! The price increment of one product, as its book shows it: the smallest positive spread of
//! the last hour (a monotonic queue, O(1) amortized per tick). Spreads are then counted in
//! increments, which compares products whose prices differ by orders of magnitude.

use std::collections::VecDeque;

use super::window::NANOS_PER_SEC;

/// How far back the smallest spread is looked for, in seconds (spans segments).
pub(crate) const INCREMENT_WINDOW_SECS: i64 = 3600;

#[derive(Debug, Clone, Default)]
pub(crate) struct PriceIncrement {
    /// Positive spreads of the window, increasing from the front (the minimum).
    spreads: VecDeque<(i64, f64)>,
}

impl PriceIncrement {
    /// Folds in the spread at `time` and returns the smallest positive spread of the window
    /// (`None` before any).
    pub(crate) fn push(&mut self, time: i64, spread: f64) -> Option<f64> {
        let cutoff = time.saturating_sub(INCREMENT_WINDOW_SECS * NANOS_PER_SEC);
        while self.spreads.front().is_some_and(|&(t, _)| t <= cutoff) {
            self.spreads.pop_front();
        }
        if spread > 0.0 {
            while self.spreads.back().is_some_and(|&(_, s)| s >= spread) {
                self.spreads.pop_back();
            }
            self.spreads.push_back((time, spread));
        }
        self.spreads.front().map(|&(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_positive_spread_of_the_last_hour() {
        let mut inc = PriceIncrement::default();
        let s = NANOS_PER_SEC;
        assert_eq!(inc.push(0, 0.0), None);
        assert_eq!(inc.push(s, 0.03), Some(0.03));
        assert_eq!(inc.push(2 * s, 0.01), Some(0.01));
        assert_eq!(inc.push(3 * s, 0.05), Some(0.01));
        assert_eq!(inc.push(3 * s, 0.0), Some(0.01), "a locked book is not an increment");
        assert_eq!(inc.push(3602 * s, 0.04), Some(0.04), "0.01 and 0.05 left the window, then the 0.05");
    }
}
