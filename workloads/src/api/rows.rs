//! One feature row as clients send it, and the plausibility check every row passes before scoring.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{FEATURE_NAMES, Features};

use super::error::ApiError;

/// One row of features: the flat body of the original `/predict` API.
///
/// Every field is optional. The original API's eleven fields, when absent, are filled with the
/// training median stored with the model (and listed in the answer's `imputed`; strict mode
/// refuses them instead); the newer ones are derived from the others or take their neutral
/// value (see each field). Unknown fields are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, ToSchema)]
#[schema(example = json!({
    "price": 91234.5, "midprice": 91234.25, "return_1s": 0.00001, "return_5s": -0.00002,
    "return_30s": 0.0001, "return_60s": 0.0003, "volatility": 0.00004, "volatility_10s": 0.00003,
    "trade_intensity": 4.2, "spread_abs": 0.01, "spread_rel": 0.0000001, "order_book_imbalance": 0.12,
    "tick_count": 252.0, "time_since_prev_tick": 0.2
}))]
pub struct FeatureRow {
    /// Last trade price (> 0).
    #[serde(default, deserialize_with = "number")]
    pub price: Option<f64>,
    /// (best bid + best ask) / 2 (> 0).
    #[serde(default, deserialize_with = "number")]
    pub midprice: Option<f64>,
    /// Log mid-price return over the last 1 s, in [-1, 1].
    #[serde(default, deserialize_with = "number")]
    pub return_1s: Option<f64>,
    /// Log mid-price return over the last 5 s, in [-1, 1].
    #[serde(default, deserialize_with = "number")]
    pub return_5s: Option<f64>,
    /// Log mid-price return over the last 30 s, in [-1, 1].
    #[serde(default, deserialize_with = "number")]
    pub return_30s: Option<f64>,
    /// Log mid-price return over the last 60 s, in [-1, 1].
    #[serde(default, deserialize_with = "number")]
    pub return_60s: Option<f64>,
    /// Realized volatility of log mid-price returns over the last 60 s, in [0, 1].
    #[serde(default, deserialize_with = "number")]
    pub volatility: Option<f64>,
    /// Realized volatility over the last 10 s, in [0, 1]. Default: `volatility`.
    #[serde(default, deserialize_with = "number")]
    pub volatility_10s: Option<f64>,
    /// Ticks per second over the last 60 s, in [0, 1e6].
    #[serde(default, deserialize_with = "number")]
    pub trade_intensity: Option<f64>,
    /// best ask − best bid, in [0, 1e9].
    #[serde(default, deserialize_with = "number")]
    pub spread_abs: Option<f64>,
    /// spread_abs / midprice, in [0, 1].
    #[serde(default, deserialize_with = "number")]
    pub spread_rel: Option<f64>,
    /// (bid size − ask size) / (bid size + ask size), in [-1, 1].
    #[serde(default, deserialize_with = "number")]
    pub order_book_imbalance: Option<f64>,
    /// Ticks in the last 60 s (the current one included), in [0, 1e9].
    /// Default: `max(1, 60 × trade_intensity)` (trades are a lower bound of ticks).
    #[serde(default, deserialize_with = "number")]
    pub tick_count: Option<f64>,
    /// Seconds since the product's previous tick, in [0, 1e9]. Default: `1 / trade_intensity`
    /// (60 when `trade_intensity` is 0).
    #[serde(default, deserialize_with = "number")]
    pub time_since_prev_tick: Option<f64>,
    /// Realized volatility over the last 5 minutes, in [0, 1]. Default: `volatility`.
    #[serde(default, deserialize_with = "number")]
    pub volatility_300s: Option<f64>,
    /// Realized volatility over the last 30 minutes, in [0, 1]. Default: `volatility_300s`.
    #[serde(default, deserialize_with = "number")]
    pub volatility_1800s: Option<f64>,
    /// `volatility / volatility_300s`, in [0, 1e9]. Default: derived from the two, else 1.
    #[serde(default, deserialize_with = "number")]
    pub volatility_ratio_60s_300s: Option<f64>,
    /// `volatility_300s / volatility_1800s`, in [0, 1e9]. Default: derived, else 1.
    #[serde(default, deserialize_with = "number")]
    pub volatility_ratio_300s_1800s: Option<f64>,
    /// Tick rate over 10 s against 5 minutes, in [0, 1e9]. Default: 1 (no change).
    #[serde(default, deserialize_with = "number")]
    pub tick_rate_ratio_10s_300s: Option<f64>,
    /// `spread_rel` against its 5-minute mean, in [0, 1e9]. Default: 1 (no change).
    #[serde(default, deserialize_with = "number")]
    pub spread_rel_ratio_300s: Option<f64>,
    /// Sine of the UTC time of day, in [-1, 1]. Default: the time the request is scored.
    #[serde(default, deserialize_with = "number")]
    pub time_of_day_sin: Option<f64>,
    /// Cosine of the UTC time of day, in [-1, 1]. Default: the time the request is scored.
    #[serde(default, deserialize_with = "number")]
    pub time_of_day_cos: Option<f64>,
}

/// A field that, when present, must be a number: `null` is refused like any wrong type (a
/// serializer writes NaN as `null`: it must not read as "absent").
fn number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    f64::deserialize(deserializer).map(Some)
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

/// How a row's absent original fields are filled.
#[derive(Debug, Clone, Copy)]
pub enum Fill<'a> {
    /// With the training medians (in [`FEATURE_NAMES`] order).
    Medians(&'a [f64; FEATURE_NAMES.len()]),
    /// Not at all: an absent field is an error (strict mode).
    Strict,
    /// Not at all: the model has no training medians.
    NoReference,
}

/// A row's features and the original fields that were filled with training medians.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub features: Features,
    pub imputed: Vec<&'static str>,
}

/// The original API's fields, with their index in [`FEATURE_NAMES`].
const ORIGINAL: [(&str, usize); 11] = [
    ("price", 0),
    ("midprice", 1),
    ("return_1s", 2),
    ("return_5s", 3),
    ("return_30s", 4),
    ("return_60s", 5),
    ("volatility", 6),
    ("trade_intensity", 8),
    ("spread_abs", 9),
    ("spread_rel", 10),
    ("order_book_imbalance", 11),
];

impl FeatureRow {
    fn original(&self) -> [Option<f64>; 11] {
        [
            self.price,
            self.midprice,
            self.return_1s,
            self.return_5s,
            self.return_30s,
            self.return_60s,
            self.volatility,
            self.trade_intensity,
            self.spread_abs,
            self.spread_rel,
            self.order_book_imbalance,
        ]
    }

    /// The model's input: absent original fields filled per `fill`, the newer ones derived;
    /// every value then checked against its range. `prefix` locates the row (`rows[3]`).
    pub fn complete(&self, prefix: &str, fill: Fill<'_>) -> Result<Completed, ApiError> {
        let sent = self.original();
        let missing: Vec<&'static str> =
            ORIGINAL.iter().zip(sent).filter(|(_, v)| v.is_none()).map(|((name, _), _)| *name).collect();
        let medians = match (fill, missing.is_empty()) {
            (_, true) => None,
            (Fill::Medians(medians), false) => Some(medians),
            (Fill::Strict | Fill::NoReference, false) => {
                let field = if prefix.is_empty() { missing[0].to_string() } else { format!("{prefix}.{}", missing[0]) };
                let why = match fill {
                    Fill::Strict => "strict mode fills in nothing",
                    _ => "the model has no training medians to fill them in with",
                };
                return Err(ApiError::Incomplete { field, missing, why });
            }
        };
        let value = |k: usize| -> f64 {
            let (_, index) = ORIGINAL[k];
            sent[k].or_else(|| medians.map(|m| m[index])).unwrap_or(0.0)
        };
        let features = self.derive([
            value(0),
            value(1),
            value(2),
            value(3),
            value(4),
            value(5),
            value(6),
            value(7),
            value(8),
            value(9),
            value(10),
        ]);
        // Check what the client sent before anything derived from it: the error then names
        // the field the client got wrong, not one computed from it.
        let as_sent = Features {
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
            ..features
        };
        check(&as_sent, prefix)?;
        check(&features, prefix)?;
        Ok(Completed { features, imputed: missing })
    }

    /// The features from the eleven original values (in [`ORIGINAL`] order), the newer fields
    /// as sent or derived.
    fn derive(&self, o: [f64; 11]) -> Features {
        let [
            price,
            midprice,
            return_1s,
            return_5s,
            return_30s,
            return_60s,
            volatility,
            trade_intensity,
            spread_abs,
            spread_rel,
            order_book_imbalance,
        ] = o;
        let time_since_prev_tick =
            self.time_since_prev_tick.unwrap_or(if trade_intensity > 0.0 { 1.0 / trade_intensity } else { 60.0 });
        let volatility_300s = self.volatility_300s.unwrap_or(volatility);
        let volatility_1800s = self.volatility_1800s.unwrap_or(volatility_300s);
        let (now_sin, now_cos) = time_of_day_now();
        Features {
            price,
            midprice,
            return_1s,
            return_5s,
            return_30s,
            return_60s,
            volatility,
            volatility_10s: self.volatility_10s.unwrap_or(volatility),
            trade_intensity,
            spread_abs,
            spread_rel,
            order_book_imbalance,
            tick_count: self.tick_count.unwrap_or((trade_intensity * 60.0).max(1.0)),
            time_since_prev_tick,
            volatility_300s,
            volatility_1800s,
            volatility_ratio_60s_300s: self
                .volatility_ratio_60s_300s
                .unwrap_or_else(|| ratio(volatility, volatility_300s)),
            volatility_ratio_300s_1800s: self
                .volatility_ratio_300s_1800s
                .unwrap_or_else(|| ratio(volatility_300s, volatility_1800s)),
            tick_rate_ratio_10s_300s: self.tick_rate_ratio_10s_300s.unwrap_or(1.0),
            spread_rel_ratio_300s: self.spread_rel_ratio_300s.unwrap_or(1.0),
            time_of_day_sin: self.time_of_day_sin.unwrap_or(now_sin),
            time_of_day_cos: self.time_of_day_cos.unwrap_or(now_cos),
        }
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
            price: Some(100.0),
            midprice: Some(100.0),
            return_1s: Some(0.0),
            return_5s: Some(0.0),
            return_30s: Some(0.0),
            return_60s: Some(0.0),
            volatility: Some(0.001),
            volatility_10s: None,
            trade_intensity: Some(2.0),
            spread_abs: Some(0.01),
            spread_rel: Some(0.0001),
            order_book_imbalance: Some(0.0),
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

    fn complete(row: FeatureRow) -> Result<Features, ApiError> {
        row.complete("", Fill::Strict).map(|c| c.features)
    }

    /// Medians 1, 2, 3, ... by feature number (in range for every feature but the returns).
    fn medians() -> [f64; FEATURE_NAMES.len()] {
        let mut m: [f64; FEATURE_NAMES.len()] = std::array::from_fn(|i| (i + 1) as f64 * 1e-3);
        m[0] = 50_000.0;
        m[1] = 50_000.5;
        m
    }

    #[test]
    fn from_array_inverts_to_array() {
        let values: [f64; FEATURE_NAMES.len()] = std::array::from_fn(|i| i as f64 + 1.0);
        assert_eq!(from_array(values).to_array(), values);
    }

    #[test]
    fn defaults_derive_from_the_original_fields() {
        let f = complete(row()).unwrap();
        assert_eq!(f.volatility_10s, 0.001);
        assert_eq!(f.tick_count, 120.0);
        assert_eq!(f.time_since_prev_tick, 0.5);
        let idle = complete(FeatureRow { trade_intensity: Some(0.0), ..row() }).unwrap();
        assert_eq!((idle.tick_count, idle.time_since_prev_tick), (1.0, 60.0));
        // The longer horizons default to the current volatility: ratios read "no change".
        assert_eq!((f.volatility_300s, f.volatility_1800s), (0.001, 0.001));
        assert_eq!((f.volatility_ratio_60s_300s, f.volatility_ratio_300s_1800s), (1.0, 1.0));
        assert_eq!((f.tick_rate_ratio_10s_300s, f.spread_rel_ratio_300s), (1.0, 1.0));
        let unit = f.time_of_day_sin.powi(2) + f.time_of_day_cos.powi(2);
        assert!((unit - 1.0).abs() < 1e-12, "a point of the unit circle: {unit}");
        let calm = complete(FeatureRow { volatility_300s: Some(0.004), ..row() }).unwrap();
        assert_eq!(calm.volatility_ratio_60s_300s, 0.25, "derived from what was sent");
    }

    #[test]
    fn absent_original_fields_take_the_training_medians_and_are_listed() {
        let medians = medians();
        let partial = FeatureRow { return_1s: None, spread_abs: None, ..row() };
        let done = partial.complete("", Fill::Medians(&medians)).unwrap();
        assert_eq!(done.imputed, ["return_1s", "spread_abs"]);
        assert_eq!(done.features.return_1s, medians[2]);
        assert_eq!(done.features.spread_abs, medians[9]);
        assert_eq!(done.features.price, 100.0, "what was sent stays");
        // The runbook's smoke test: a price alone.
        let only_price = FeatureRow { price: Some(50_000.0), ..serde_json::from_str::<FeatureRow>("{}").unwrap() };
        let done = only_price.complete("", Fill::Medians(&medians)).unwrap();
        assert_eq!(done.imputed.len(), 10);
        assert_eq!(done.features.volatility_10s, medians[6], "derived from the imputed volatility");
        // A full row imputes nothing.
        assert!(row().complete("", Fill::Medians(&medians)).unwrap().imputed.is_empty());
    }

    #[test]
    fn strict_mode_and_a_model_without_medians_refuse_partial_rows() {
        let partial = FeatureRow { price: None, volatility: None, ..row() };
        for (fill, why) in [(Fill::Strict, "strict"), (Fill::NoReference, "no training medians")] {
            match partial.complete("rows[1]", fill) {
                Err(e @ ApiError::Incomplete { .. }) => {
                    assert_eq!(e.field().as_deref(), Some("rows[1].price"));
                    assert!(e.reason().contains("price, volatility") && e.reason().contains(why), "{}", e.reason());
                    assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn each_range_violation_names_its_field() {
        let cases: [(FeatureRow, &str); 9] = [
            (FeatureRow { price: Some(-1.0), ..row() }, "price"),
            (FeatureRow { price: Some(0.0), ..row() }, "price"),
            (FeatureRow { midprice: Some(2e9), ..row() }, "midprice"),
            (FeatureRow { return_60s: Some(1.5), ..row() }, "return_60s"),
            (FeatureRow { volatility: Some(-0.1), ..row() }, "volatility"),
            (FeatureRow { spread_rel: Some(1.5), ..row() }, "spread_rel"),
            (FeatureRow { order_book_imbalance: Some(-1.01), ..row() }, "order_book_imbalance"),
            (FeatureRow { tick_count: Some(-3.0), ..row() }, "tick_count"),
            (FeatureRow { time_since_prev_tick: Some(-0.1), ..row() }, "time_since_prev_tick"),
        ];
        for (bad, name) in cases {
            match bad.complete("rows[2]", Fill::Strict) {
                Err(ApiError::OutOfRange { field, .. }) => assert_eq!(field, format!("rows[2].{name}")),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_finite_is_its_own_error() {
        let err = complete(FeatureRow { volatility_10s: Some(f64::INFINITY), ..row() }).unwrap_err();
        assert_eq!(err, ApiError::NonFinite { field: "volatility_10s".into() });
    }

    #[test]
    fn bounds_are_inclusive_where_documented() {
        for ok in [
            FeatureRow { spread_rel: Some(1.0), ..row() },
            FeatureRow { spread_rel: Some(0.0), ..row() },
            FeatureRow { order_book_imbalance: Some(-1.0), ..row() },
            FeatureRow { return_1s: Some(1.0), ..row() },
        ] {
            complete(ok).unwrap();
        }
    }
}
