//! Time arithmetic for the decisions, tolerant of clock edges: a timestamp from "the future"
//! (the clock went backwards, or a status written by another replica with a skewed clock)
//! counts as no time elapsed, never as negative time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Seconds from `earlier` to `later`; 0 when `later` is not after `earlier`.
pub fn elapsed_seconds(earlier: Timestamp, later: Timestamp) -> f64 {
    let millis = later.as_millisecond().saturating_sub(earlier.as_millisecond());
    millis.max(0) as f64 / 1000.0
}

/// `elapsed_seconds` from a status time.
pub fn since(earlier: &Time, now: Timestamp) -> f64 {
    elapsed_seconds(earlier.0, now)
}

/// `at` plus `seconds` (saturating at the end of time).
pub fn plus_seconds(at: Timestamp, seconds: f64) -> Timestamp {
    let millis = at.as_millisecond().saturating_add((seconds * 1000.0) as i64);
    Timestamp::from_millisecond(millis).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn elapsed_time_never_goes_negative() {
        assert_eq!(elapsed_seconds(at(10), at(25)), 15.0);
        assert_eq!(elapsed_seconds(at(25), at(10)), 0.0, "a clock that went back is no time elapsed");
        assert_eq!(plus_seconds(at(10), 2.5).as_millisecond(), 12_500);
    }
}
