//! Running sums that do not depend on history: each value is rounded once to a fixed-point
//! integer and sums of integers are exact, so a window's sum is the same whatever entered and
//! left it before. A restarted featurizer that rebuilds its windows from the last hour of ticks
//! therefore computes bit-identical features to one that ran all along (floating-point running
//! sums would carry the rounding residue of everything that ever passed through them).

/// A sum of `f64` values held as a multiple of `2^-SCALE_BITS` in an `i128`.
///
/// Each value is rounded to the nearest multiple once, when added; removing the same value
/// subtracts the same integer. With `SCALE_BITS = 90` (squared returns, spreads) the step is
/// 8e-28 and sums up to 1.3e11 fit; with 40 (notional in quote currency) the step is 9e-13 and
/// sums up to 1.5e26 fit. Values beyond the range saturate (the engine never produces them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExactSum<const SCALE_BITS: u32> {
    units: i128,
}

impl<const SCALE_BITS: u32> ExactSum<SCALE_BITS> {
    const SCALE: f64 = (1u128 << SCALE_BITS) as f64;

    /// `value` as the integer it contributes (`as` saturates, and maps NaN to 0).
    pub(crate) fn units_of(value: f64) -> i128 {
        (value * Self::SCALE).round() as i128
    }

    pub(crate) fn add_units(&mut self, units: i128) {
        self.units = self.units.saturating_add(units);
    }

    pub(crate) fn sub_units(&mut self, units: i128) {
        self.units = self.units.saturating_sub(units);
    }

    pub(crate) fn add(&mut self, value: f64) {
        self.add_units(Self::units_of(value));
    }

    pub(crate) fn sub(&mut self, value: f64) {
        self.sub_units(Self::units_of(value));
    }

    pub(crate) fn value(&self) -> f64 {
        Self::value_of(self.units)
    }

    /// The integer this sum holds.
    pub(crate) fn units(&self) -> i128 {
        self.units
    }

    /// What `units` stands for.
    pub(crate) fn value_of(units: i128) -> f64 {
        units as f64 / Self::SCALE
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.units == 0
    }
}

/// Squared log returns, log returns and relative spreads: all well below 1e3 in magnitude.
pub(crate) type SmallSum = ExactSum<90>;
/// Notional (price × size) in quote currency.
pub(crate) type NotionalSum = ExactSum<40>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_does_not_depend_on_what_passed_through_it() {
        let values = [1e-9, 3.3e-12, 7.77e-5, 1e-16, 0.25, 2.5e-7];
        let mut long = SmallSum::default();
        for _ in 0..1000 {
            for v in values {
                long.add(v * 1.000_1);
            }
            for v in values {
                long.sub(v * 1.000_1);
            }
        }
        for v in values {
            long.add(v);
        }
        let mut fresh = SmallSum::default();
        for v in values.iter().rev() {
            fresh.add(*v);
        }
        assert_eq!(long, fresh);
        assert!((fresh.value() - values.iter().sum::<f64>()).abs() < 1e-20);
    }

    #[test]
    fn removing_everything_leaves_exactly_zero() {
        let mut sum = NotionalSum::default();
        for i in 0..100 {
            sum.add(12_345.678 * i as f64);
        }
        for i in 0..100 {
            sum.sub(12_345.678 * i as f64);
        }
        assert!(sum.is_zero());
        assert_eq!(sum.value(), 0.0);
    }

    #[test]
    fn extreme_values_saturate_instead_of_wrapping() {
        let mut sum = SmallSum::default();
        sum.add(f64::MAX);
        sum.add(f64::MAX);
        assert!(sum.value() > 0.0);
        let mut nan = SmallSum::default();
        nan.add(f64::NAN);
        assert!(nan.is_zero());
    }
}
