//! One feature row as clients send it, and the plausibility check every row passes before scoring.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{FEATURE_NAMES, Features};

use super::error::ApiError;

/// One row of features: the flat body of the original `/predict` API.
///
/// The original API's eleven fields are required. The newer ones are optional so that clients
/// of the original API keep working; when absent they are derived from the others or take
/// their neutral value (see each field). Unknown fields are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, ToSchema)]
#[schema(example = json!({
    "price": 91234.5, "midprice": 91234.25, "return_1s": 0.00001, "return_5s": -0.00002,
    "return_30s": 0.0001, "return_60s": 0.0003, "volatility": 0.00004, "volatility_10s": 0.00003,
    "trade_intensity": 4.2, "spread_abs": 0.01, "spread_rel": 0.0000001, "order_book_imbalance": 0.12,
    "tick_count": 252.0, "time_since_prev_tick": 0.2
}))]
pub struct FeatureRow {
    /// Last trade price (> 0).
    pub price: f64,
    /// (best bid + best ask) / 2 (> 0).
    pub midprice: f64,
    /// Log mid-price return over the last 1 s, in [-1, 1].
    pub return_1s: f64,
    /// Log mid-price return over the last 5 s, in [-1, 1].
    pub return_5s: f64,
    /// Log mid-price return over the last 30 s, in [-1, 1].
    pub return_30s: f64,
    /// Log mid-price return over the last 60 s, in [-1, 1].
    pub return_60s: f64,
    /// Realized volatility of log mid-price returns over the last 60 s, in [0, 1].
    pub volatility: f64,
    /// Realized volatility over the last 10 s, in [0, 1]. Default: `volatility`.
    #[serde(default)]
    pub volatility_10s: Option<f64>,
    /// Ticks per second over the last 60 s, in [0, 1e6].
    pub trade_intensity: f64,
    /// best ask − best bid, in [0, 1e9].
    pub spread_abs: f64,
    /// spread_abs / midprice, in [0, 1].
    pub spread_rel: f64,
    /// (bid size − ask size) / (bid size + ask size), in [-1, 1].
    pub order_book_imbalance: f64,
    /// Ticks in the last 60 s (the current one included), in [0, 1e9].
    /// Default: `max(1, 60 × trade_intensity)` (trades are a lower bound of ticks).
    #[serde(default)]
    pub tick_count: Option<f64>,
    /// Seconds since the product's previous tick, in [0, 1e9]. Default: `1 / trade_intensity`
    /// (60 when `trade_intensity` is 0).
    #[serde(default)]
    pub time_since_prev_tick: Option<f64>,
    /// Realized volatility over the last 5 minutes, in [0, 1]. Default: `volatility`.
    #[serde(default)]
    pub volatility_300s: Option<f64>,
    /// Realized volatility over the last 30 minutes, in [0, 1]. Default: `volatility_300s`.
    #[serde(default)]
    pub volatility_1800s: Option<f64>,
    /// `volatility / volatility_300s`, in [0, 1e9]. Default: derived from the two, else 1.
    #[serde(default)]
    pub volatility_ratio_60s_300s: Option<f64>,
    /// `volatility_300s / volatility_1800s`, in [0, 1e9]. Default: derived, else 1.
    #[serde(default)]
    pub volatility_ratio_300s_1800s: Option<f64>,
    /// Tick rate over 10 s against 5 minutes, in [0, 1e9]. Default: 1 (no change).
    #[serde(default)]
    pub tick_rate_ratio_10s_300s: Option<f64>,
    /// `spread_rel` against its 5-minute mean, in [0, 1e9]. Default: 1 (no change).
    #[serde(default)]
    pub spread_rel_ratio_300s: Option<f64>,
    /// Sine of the UTC time of day, in [-1, 1]. Default: the time the request is scored.
    #[serde(default)]
    pub time_of_day_sin: Option<f64>,
    /// Cosine of the UTC time of day, in [-1, 1]. Default: the time the request is scored.
    #[serde(default)]
    pub time_of_day_cos: Option<f64>,
}

/// Accepted range of one feature: `min < x` (or `min <= x` when `min_inclusive`) and `x <= max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub min_inclusive: bool,
    pub max: f64,
}

const fn closed(min: f64, max: f64) -> Range {
    Range { min, min_inclusive: true, max }
}

const fn positive(max: f64) -> Range {
    Range { min: 0.0, min_inclusive: false, max }
}

/// Plausible range of each feature, in [`FEATURE_NAMES`] order (docs/api.md lists them).
/// Wide enough for any real market, narrow enough to catch unit mix-ups and garbage.
pub const RANGES: [Range; FEATURE_NAMES.len()] = [
    positive(1e9),     // price
    positive(1e9),     // midprice
    closed(-1.0, 1.0), // return_1s
    closed(-1.0, 1.0), // return_5s
    closed(-1.0, 1.0), // return_30s
    closed(-1.0, 1.0), // return_60s
    closed(0.0, 1.0),  // volatility
    closed(0.0, 1.0),  // volatility_10s
    closed(0.0, 1e6),  // trade_intensity
    closed(0.0, 1e9),  // spread_abs
    closed(0.0, 1.0),  // spread_rel
    closed(-1.0, 1.0), // order_book_imbalance
    closed(0.0, 1e9),  // tick_count
    closed(0.0, 1e9),  // time_since_prev_tick
    closed(0.0, 1.0),  // volatility_300s
    closed(0.0, 1.0),  // volatility_1800s
    closed(0.0, 1e9),  // volatility_ratio_60s_300s
    closed(0.0, 1e9),  // volatility_ratio_300s_1800s
    closed(0.0, 1e9),  // tick_rate_ratio_10s_300s
    closed(0.0, 1e9),  // spread_rel_ratio_300s
    closed(-1.0, 1.0), // time_of_day_sin
    closed(-1.0, 1.0), // time_of_day_cos
];

impl Range {
    pub fn contains(&self, x: f64) -> bool {
        let above_min = if self.min_inclusive { x >= self.min } else { x > self.min };
        above_min && x <= self.max
    }

    pub fn describe(&self) -> String {
        let open = if self.min_inclusive { '[' } else { '(' };
        format!("must be in {open}{}, {}]", self.min, self.max)
    }
}

/// `a / b`, or 1 (no change) when `b` is not positive: the engine's convention.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 1.0 }
}

/// Sine and cosine of the current UTC time of day (the engine's `time_of_day_*`).
fn time_of_day_now() -> (f64, f64) {
    let now = chrono::Utc::now();
    let seconds = f64::from(chrono::Timelike::num_seconds_from_midnight(&now));
    (seconds / 86_400.0 * std::f64::consts::TAU).sin_cos()
}

impl FeatureRow {
    /// The model's input, with the optional fields filled in.
    pub fn features(&self) -> Features {
        let time_since_prev_tick = self.time_since_prev_tick.unwrap_or(if self.trade_intensity > 0.0 {
            1.0 / self.trade_intensity
        } else {
            60.0
        });
        let volatility_300s = self.volatility_300s.unwrap_or(self.volatility);
        let volatility_1800s = self.volatility_1800s.unwrap_or(volatility_300s);
        let (now_sin, now_cos) = time_of_day_now();
        Features {
            price: self.price,
            midprice: self.midprice,
            return_1s: self.return_1s,
            return_5s: self.return_5s,
            return_30s: self.return_30s,
            return_60s: self.return_60s,
            volatility: self.volatility,
            volatility_10s: self.volatility_10s.unwrap_or(self.volatility),
            trade_intensity: self.trade_intensity,
            spread_abs: self.spread_abs,
            spread_rel: self.spread_rel,
            order_book_imbalance: self.order_book_imbalance,
            tick_count: self.tick_count.unwrap_or((self.trade_intensity * 60.0).max(1.0)),
            time_since_prev_tick,
            volatility_300s,
            volatility_1800s,
            volatility_ratio_60s_300s: self
                .volatility_ratio_60s_300s
                .unwrap_or_else(|| ratio(self.volatility, volatility_300s)),
            volatility_ratio_300s_1800s: self
                .volatility_ratio_300s_1800s
                .unwrap_or_else(|| ratio(volatility_300s, volatility_1800s)),
            tick_rate_ratio_10s_300s: self.tick_rate_ratio_10s_300s.unwrap_or(1.0),
            spread_rel_ratio_300s: self.spread_rel_ratio_300s.unwrap_or(1.0),
            time_of_day_sin: self.time_of_day_sin.unwrap_or(now_sin),
            time_of_day_cos: self.time_of_day_cos.unwrap_or(now_cos),
        }
    }

    /// Checks every value, then fills in the defaults. `prefix` locates the row (`rows[3]`).
    pub fn validate(&self, prefix: &str) -> Result<Features, ApiError> {
        // Check what the client sent, before defaults derive anything from it.
        let sent = Features {
            volatility_10s: self.volatility_10s.unwrap_or(0.0),
            tick_count: self.tick_count.unwrap_or(0.0),
            time_since_prev_tick: self.time_since_prev_tick.unwrap_or(0.0),
            volatility_300s: self.volatility_300s.unwrap_or(0.0),
            volatility_1800s: self.volatility_1800s.unwrap_or(0.0),
            volatility_ratio_60s_300s: self.volatility_ratio_60s_300s.unwrap_or(1.0),
            volatility_ratio_300s_1800s: self.volatility_ratio_300s_1800s.unwrap_or(1.0),
            tick_rate_ratio_10s_300s: self.tick_rate_ratio_10s_300s.unwrap_or(1.0),
            spread_rel_ratio_300s: self.spread_rel_ratio_300s.unwrap_or(1.0),
            time_of_day_sin: self.time_of_day_sin.unwrap_or(0.0),
            time_of_day_cos: self.time_of_day_cos.unwrap_or(0.0),
            ..self.features()
        };
        check(&sent, prefix)?;
        Ok(self.features())
    }
}

/// Features from values in [`FEATURE_NAMES`] order (the inverse of [`Features::to_array`]).
pub fn from_array(v: [f64; FEATURE_NAMES.len()]) -> Features {
    Features {
        price: v[0],
        midprice: v[1],
        return_1s: v[2],
        return_5s: v[3],
        return_30s: v[4],
        return_60s: v[5],
        volatility: v[6],
        volatility_10s: v[7],
        trade_intensity: v[8],
        spread_abs: v[9],
        spread_rel: v[10],
        order_book_imbalance: v[11],
        tick_count: v[12],
        time_since_prev_tick: v[13],
        volatility_300s: v[14],
        volatility_1800s: v[15],
        volatility_ratio_60s_300s: v[16],
        volatility_ratio_300s_1800s: v[17],
        tick_rate_ratio_10s_300s: v[18],
        spread_rel_ratio_300s: v[19],
        time_of_day_sin: v[20],
        time_of_day_cos: v[21],
    }
}

/// First value of `features` that is non-finite or outside its [`RANGES`] entry.
pub fn check(features: &Features, prefix: &str) -> Result<(), ApiError> {
    for (i, value) in features.to_array().into_iter().enumerate() {
        check_feature(i, value).map_err(|violation| {
            let name = FEATURE_NAMES[i];
            let field = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
            violation.into_error(field)
        })?;
    }
    Ok(())
}

/// Why a value was rejected, before it is attached to a request field.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    NonFinite,
    OutOfRange(String),
}

impl Violation {
    pub fn into_error(self, field: String) -> ApiError {
        match self {
            Violation::NonFinite => ApiError::NonFinite { field },
            Violation::OutOfRange(reason) => ApiError::OutOfRange { field, reason },
        }
    }
}

/// Checks the value of feature number `index` (in [`FEATURE_NAMES`] order).
pub fn check_feature(index: usize, value: f64) -> Result<(), Violation> {
    if !value.is_finite() {
        return Err(Violation::NonFinite);
    }
    let range = RANGES[index];
    if range.contains(value) {
        Ok(())
    } else {
        Err(Violation::OutOfRange(format!("{} (got {value})", range.describe())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row() -> FeatureRow {
        FeatureRow {
            price: 100.0,
            midprice: 100.0,
            return_1s: 0.0,
            return_5s: 0.0,
            return_30s: 0.0,
            return_60s: 0.0,
            volatility: 0.001,
            volatility_10s: None,
            trade_intensity: 2.0,
            spread_abs: 0.01,
            spread_rel: 0.0001,
            order_book_imbalance: 0.0,
            tick_count: None,
            time_since_prev_tick: None,
            volatility_300s: None,
            volatility_1800s: None,
            volatility_ratio_60s_300s: None,
            volatility_ratio_300s_1800s: None,
            tick_rate_ratio_10s_300s: None,
            spread_rel_ratio_300s: None,
            time_of_day_sin: None,
            time_of_day_cos: None,
        }
    }

    #[test]
    fn from_array_inverts_to_array() {
        let values: [f64; FEATURE_NAMES.len()] = std::array::from_fn(|i| i as f64 + 1.0);
        assert_eq!(from_array(values).to_array(), values);
    }

    #[test]
    fn defaults_derive_from_the_original_fields() {
        let f = row().validate("").unwrap();
        assert_eq!(f.volatility_10s, 0.001);
        assert_eq!(f.tick_count, 120.0);
        assert_eq!(f.time_since_prev_tick, 0.5);
        let idle = FeatureRow { trade_intensity: 0.0, ..row() }.features();
        assert_eq!((idle.tick_count, idle.time_since_prev_tick), (1.0, 60.0));
        // The longer horizons default to the current volatility: ratios read "no change".
        assert_eq!((f.volatility_300s, f.volatility_1800s), (0.001, 0.001));
        assert_eq!((f.volatility_ratio_60s_300s, f.volatility_ratio_300s_1800s), (1.0, 1.0));
        assert_eq!((f.tick_rate_ratio_10s_300s, f.spread_rel_ratio_300s), (1.0, 1.0));
        let unit = f.time_of_day_sin.powi(2) + f.time_of_day_cos.powi(2);
        assert!((unit - 1.0).abs() < 1e-12, "a point of the unit circle: {unit}");
        let calm = FeatureRow { volatility_300s: Some(0.004), ..row() }.features();
        assert_eq!(calm.volatility_ratio_60s_300s, 0.25, "derived from what was sent");
    }

    #[test]
    fn each_range_violation_names_its_field() {
        let cases: [(FeatureRow, &str); 9] = [
            (FeatureRow { price: -1.0, ..row() }, "price"),
            (FeatureRow { price: 0.0, ..row() }, "price"),
            (FeatureRow { midprice: 2e9, ..row() }, "midprice"),
            (FeatureRow { return_60s: 1.5, ..row() }, "return_60s"),
            (FeatureRow { volatility: -0.1, ..row() }, "volatility"),
            (FeatureRow { spread_rel: 1.5, ..row() }, "spread_rel"),
            (FeatureRow { order_book_imbalance: -1.01, ..row() }, "order_book_imbalance"),
            (FeatureRow { tick_count: Some(-3.0), ..row() }, "tick_count"),
            (FeatureRow { time_since_prev_tick: Some(-0.1), ..row() }, "time_since_prev_tick"),
        ];
        for (bad, name) in cases {
            match bad.validate("rows[2]") {
                Err(ApiError::OutOfRange { field, .. }) => assert_eq!(field, format!("rows[2].{name}")),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_finite_is_its_own_error() {
        let err = FeatureRow { volatility_10s: Some(f64::INFINITY), ..row() }.validate("").unwrap_err();
        assert_eq!(err, ApiError::NonFinite { field: "volatility_10s".into() });
    }

    #[test]
    fn bounds_are_inclusive_where_documented() {
        for ok in [
            FeatureRow { spread_rel: 1.0, ..row() },
            FeatureRow { spread_rel: 0.0, ..row() },
            FeatureRow { order_book_imbalance: -1.0, ..row() },
            FeatureRow { return_1s: 1.0, ..row() },
        ] {
            ok.validate("").unwrap();
        }
    }
}
