//! Replay pacing: when to emit each recorded tick, as a pure function of exchange times.
//!
//! The schedule is cumulative (offset from the start of the replay) rather than per-tick sleeps,
//! so timer granularity does not accumulate into drift over thousands of sub-millisecond gaps.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// `--speed`: a multiple of the original pace, or as fast as the sink accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Max,
    /// 1.0 = original pace, 10.0 = ten times faster. Finite and > 0.
    Factor(f64),
}

impl FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Speed, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let number = s.strip_suffix(['x', 'X']).unwrap_or(s);
        match number.parse::<f64>() {
            Ok(factor) if factor.is_finite() && factor > 0.0 => Ok(Speed::Factor(factor)),
            _ => Err(format!("invalid speed {s:?}: expected `max` or a positive factor such as `1`, `10` or `0.5`")),
        }
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Max => f.write_str("max"),
            Speed::Factor(factor) => write!(f, "{factor}x"),
        }
    }
}

/// Computes when each tick is due, relative to the start of the replay.
///
/// The recording's clock is the latest exchange time seen so far, so an out-of-order tick is
/// due immediately instead of rewinding the schedule. Each step is divided by the speed factor
/// and then capped at `max_sleep`, which compresses the hours-long holes of a recording into a
/// short pause instead of stalling the replay.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: Speed,
    max_sleep: Duration,
    clock: Option<DateTime<Utc>>,
    due: Duration,
}

impl Pacer {
    pub fn new(speed: Speed, max_sleep: Duration) -> Pacer {
        Pacer { speed, max_sleep, clock: None, due: Duration::ZERO }
    }

    /// Offset from the start at which the tick with `exchange_time` is due; `None` for
    /// [`Speed::Max`] (emit now).
    pub fn due(&mut self, exchange_time: DateTime<Utc>) -> Option<Duration> {
        let Speed::Factor(factor) = self.speed else {
            return None;
        };
        let step = match self.clock {
            None => Duration::ZERO,
            Some(clock) => step(clock, exchange_time, factor, self.max_sleep),
        };
        if self.clock.is_none_or(|clock| exchange_time > clock) {
            self.clock = Some(exchange_time);
        }
        self.due += step;
        Some(self.due)
    }
}

/// Wall-clock time between two ticks of a recording: the exchange-time delta (zero when the
/// second is not later) divided by `factor`, capped at `max_sleep`.
pub fn step(previous: DateTime<Utc>, next: DateTime<Utc>, factor: f64, max_sleep: Duration) -> Duration {
    let delta = (next - previous).to_std().unwrap_or(Duration::ZERO);
    let scaled = delta.as_secs_f64() / factor;
    if !scaled.is_finite() || scaled >= max_sleep.as_secs_f64() {
        return max_sleep;
    }
    Duration::from_secs_f64(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_762_932_011_000 + ms).unwrap()
    }

    const CAP: Duration = Duration::from_secs(5);

    #[test]
    fn step_scales_exchange_time_deltas() {
        let cases = [
            // (previous ms, next ms, factor, expected ms)
            (0, 1_000, 1.0, 1_000),
            (0, 1_000, 10.0, 100),
            (0, 1_000, 0.5, 2_000),
            (0, 2, 1.0, 2),
            (0, 0, 1.0, 0),
            (1_000, 0, 1.0, 0), // out of order: no waiting
        ];
        for (previous, next, factor, expected) in cases {
            assert_eq!(
                step(at(previous), at(next), factor, CAP),
                Duration::from_millis(expected),
                "{previous} → {next} at {factor}x"
            );
        }
    }

    #[test]
    fn long_holes_are_compressed_to_the_cap() {
        let thirty_five_hours = 35 * 3_600 * 1_000;
        assert_eq!(step(at(0), at(thirty_five_hours), 1.0, CAP), CAP);
        assert_eq!(step(at(0), at(thirty_five_hours), 1_000.0, CAP), CAP, "126 s after scaling, still capped");
        assert_eq!(step(at(0), at(60_000), 100.0, CAP), Duration::from_millis(600), "under the cap after scaling");
    }

    #[test]
    fn schedule_is_cumulative_and_never_rewinds() {
        let mut pacer = Pacer::new(Speed::Factor(2.0), CAP);
        let due: Vec<u128> = [0, 1_000, 1_500, 1_200, 2_000, 3_600_000, 3_601_000]
            .into_iter()
            .map(|ms| pacer.due(at(ms)).unwrap().as_millis())
            .collect();
        // 1 s → 0.5 s; 0.5 s → 0.25 s; a late tick adds nothing and does not move the clock back;
        // 1.5 s after the clock's 1.5 s mark → 0.25 s; a 1 h hole → the 5 s cap; 1 s → 0.5 s.
        assert_eq!(due, vec![0, 500, 750, 750, 1_000, 6_000, 6_500]);
    }

    #[test]
    fn max_speed_never_waits() {
        let mut pacer = Pacer::new(Speed::Max, CAP);
        assert_eq!(pacer.due(at(0)), None);
        assert_eq!(pacer.due(at(10_000)), None);
    }

    #[test]
    fn speed_parses_max_and_positive_factors_only() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("MAX".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("10".parse::<Speed>(), Ok(Speed::Factor(10.0)));
        assert_eq!("2.5x".parse::<Speed>(), Ok(Speed::Factor(2.5)));
        for bad in ["0", "-1", "NaN", "inf", "fast", ""] {
            assert!(bad.parse::<Speed>().is_err(), "{bad:?}");
        }
    }
}
