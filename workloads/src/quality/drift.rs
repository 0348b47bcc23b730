//! Drift: how far the features the model sees now have moved from the ones it was trained on,
//! as the population stability index (PSI) of each feature over the training rows' quantile
//! bins (`reference.json`):
//!
//! `PSI = Σ_bins (a − e) · ln(a / e)`, `a` the share of the current rows in a bin, `e` the
//! training share; both floored at 1e-4 so an empty bin counts as rare, not infinite. Usual
//! reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 the model is scoring a population it
//! did not see.

use std::collections::VecDeque;

use crate::domain::{FEATURE_NAMES, Features};
use crate::model::Reference;

/// Smallest share a bin is given (so that a bin never seen does not make the index infinite).
const FLOOR: f64 = 1e-4;

/// The bin of `x` among `edges` (bin `i` holds `edges[i-1] <= x < edges[i]`).
pub fn bin(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e <= x)
}

/// PSI of `counts` (current rows per bin) against the `expected` shares; `None` without rows.
pub fn psi(expected: &[f64], counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 || expected.len() != counts.len() {
        return None;
    }
    Some(
        expected
            .iter()
            .zip(counts)
            .map(|(&e, &c)| {
                let (a, e) = ((c as f64 / total as f64).max(FLOOR), e.max(FLOOR));
                (a - e) * (a / e).ln()
            })
            .sum(),
    )
}

/// Current bin counts of every feature over the last `window` rows.
#[derive(Debug, Clone)]
pub struct DriftMonitor {
    edges: Vec<Vec<f64>>,
    expected: Vec<Vec<f64>>,
    limits: Vec<Option<f64>>,
    window: usize,
    recent: VecDeque<[u16; FEATURE_NAMES.len()]>,
    counts: Vec<Vec<u64>>,
}

impl DriftMonitor {
    /// `window` = 0 keeps every row (offline reports).
    pub fn new(reference: &Reference, window: usize) -> DriftMonitor {
        DriftMonitor {
            edges: reference.features.iter().map(|f| f.bin_edges.clone()).collect(),
            expected: reference.features.iter().map(|f| f.bin_fractions.clone()).collect(),
            limits: reference.features.iter().map(|f| f.psi_limit).collect(),
            window,
            recent: VecDeque::new(),
            counts: reference.features.iter().map(|f| vec![0; f.bin_fractions.len()]).collect(),
        }
    }

    pub fn observe(&mut self, features: &Features) {
        let values = features.to_array();
        // A missing value (a source without trades) is in no bin: it is not drift.
        let bins: [u16; FEATURE_NAMES.len()] = std::array::from_fn(|i| {
            if values[i].is_nan() {
                u16::MAX
            } else {
                u16::try_from(bin(&self.edges[i], values[i])).unwrap_or(u16::MAX)
            }
        });
        for (i, b) in bins.iter().enumerate() {
            if let Some(c) = self.counts[i].get_mut(usize::from(*b)) {
                *c += 1;
            }
        }
        if self.window > 0 {
            self.recent.push_back(bins);
            if self.recent.len() > self.window
                && let Some(old) = self.recent.pop_front()
            {
                for (i, b) in old.iter().enumerate() {
                    if let Some(c) = self.counts[i].get_mut(usize::from(*b)) {
                        *c -= 1;
                    }
                }
            }
        }
    }

    /// Rows counted now.
    pub fn rows(&self) -> u64 {
        self.counts.first().map_or(0, |c| c.iter().sum())
    }

    /// PSI of every feature, in [`FEATURE_NAMES`] order.
    pub fn psi(&self) -> Vec<(&'static str, Option<f64>)> {
        FEATURE_NAMES.iter().enumerate().map(|(i, name)| (*name, psi(&self.expected[i], &self.counts[i]))).collect()
    }

    /// Each feature's drift limit (the training days' largest PSI), in [`FEATURE_NAMES`] order.
    pub fn limits(&self) -> Vec<(&'static str, Option<f64>)> {
        FEATURE_NAMES.iter().copied().zip(self.limits.iter().copied()).collect()
    }

    /// Current shares per bin of feature `i` (for reports).
    pub fn shares(&self, i: usize) -> Vec<f64> {
        let total = self.counts[i].iter().sum::<u64>().max(1) as f64;
        self.counts[i].iter().map(|c| *c as f64 / total).collect()
    }

    pub fn expected(&self, i: usize) -> &[f64] {
        &self.expected[i]
    }

    pub fn edges(&self, i: usize) -> &[f64] {
        &self.edges[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_by_hand() {
        // Reference 50/50; current 80/20: (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5).
        let want = 0.3 * (1.6f64).ln() + (-0.3) * (0.4f64).ln();
        let got = psi(&[0.5, 0.5], &[80, 20]).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert_eq!(psi(&[0.5, 0.5], &[50, 50]), Some(0.0));
        assert_eq!(psi(&[0.5, 0.5], &[0, 0]), None);
        // An empty bin is floored, not infinite.
        assert!(psi(&[0.5, 0.5], &[100, 0]).unwrap().is_finite());
    }

    #[test]
    fn bins_follow_the_edges() {
        let edges = [1.0, 2.0, 3.0];
        assert_eq!([bin(&edges, 0.5), bin(&edges, 1.0), bin(&edges, 2.5), bin(&edges, 9.0)], [0, 1, 2, 3]);
    }

    #[test]
    fn the_window_slides() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/spikewatch-gbdt/reference.json");
        let reference = Reference::load(&path).unwrap();
        let mut monitor = DriftMonitor::new(&reference, 10);
        let medians = crate::domain::Features(reference.medians());
        for _ in 0..25 {
            monitor.observe(&medians);
        }
        assert_eq!(monitor.rows(), 10);
        // Every row in the medians' bin: far from the training spread.
        let (name, psi) = monitor.psi()[0];
        assert_eq!(name, "price");
        assert!(psi.unwrap() > 1.0, "{psi:?}");
    }
}
