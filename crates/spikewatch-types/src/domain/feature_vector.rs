use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the [`FeatureVector`] JSON layout on `ticks.features`.
pub const FEATURE_VECTOR_SCHEMA: u32 = 1;
/// Version of the feature definitions (docs/features.md). Bump when a formula changes.
pub const FEATURE_SET_VERSION: &str = "v2";

/// The model's input, in this exact order (the ONNX model's metadata is checked against it).
pub const FEATURE_NAMES: [&str; 22] = [
    "price",
    "midprice",
    "return_1s",
    "return_5s",
    "return_30s",
    "return_60s",
    "volatility",
    "volatility_10s",
    "trade_intensity",
    "spread_abs",
    "spread_rel",
    "order_book_imbalance",
    "tick_count",
    "time_since_prev_tick",
    "volatility_300s",
    "volatility_1800s",
    "volatility_ratio_60s_300s",
    "volatility_ratio_300s_1800s",
    "tick_rate_ratio_10s_300s",
    "spread_rel_ratio_300s",
    "time_of_day_sin",
    "time_of_day_cos",
];

/// The features of one product at one event time. Formulas: docs/features.md.
///
/// The first eleven fields are the original prediction API's request body and keep its names.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Features {
    pub price: f64,
    pub midprice: f64,
    pub return_1s: f64,
    pub return_5s: f64,
    pub return_30s: f64,
    pub return_60s: f64,
    /// Realized volatility of log mid-price returns over the last 60 s.
    pub volatility: f64,
    /// Realized volatility of log mid-price returns over the last 10 s.
    pub volatility_10s: f64,
    pub trade_intensity: f64,
    pub spread_abs: f64,
    pub spread_rel: f64,
    pub order_book_imbalance: f64,
    /// Ticks in the last 60 s.
    pub tick_count: f64,
    /// Seconds since the product's previous tick.
    pub time_since_prev_tick: f64,
    /// Realized volatility over the last 5 minutes (same estimator as `volatility`).
    pub volatility_300s: f64,
    /// Realized volatility over the last 30 minutes.
    pub volatility_1800s: f64,
    /// `volatility / volatility_300s`: the last minute against the last five.
    pub volatility_ratio_60s_300s: f64,
    /// `volatility_300s / volatility_1800s`.
    pub volatility_ratio_300s_1800s: f64,
    /// Tick rate over the last 10 s against the last 5 minutes.
    pub tick_rate_ratio_10s_300s: f64,
    /// `spread_rel` against its mean over the last 5 minutes.
    pub spread_rel_ratio_300s: f64,
    /// Sine and cosine of the UTC time of day.
    pub time_of_day_sin: f64,
    pub time_of_day_cos: f64,
}

impl Features {
    /// The values in [`FEATURE_NAMES`] order.
    pub fn to_array(&self) -> [f64; FEATURE_NAMES.len()] {
        [
            self.price,
            self.midprice,
            self.return_1s,
            self.return_5s,
            self.return_30s,
            self.return_60s,
            self.volatility,
            self.volatility_10s,
            self.trade_intensity,
            self.spread_abs,
            self.spread_rel,
            self.order_book_imbalance,
            self.tick_count,
            self.time_since_prev_tick,
            self.volatility_300s,
            self.volatility_1800s,
            self.volatility_ratio_60s_300s,
            self.volatility_ratio_300s_1800s,
            self.tick_rate_ratio_10s_300s,
            self.spread_rel_ratio_300s,
            self.time_of_day_sin,
            self.time_of_day_cos,
        ]
    }
}

/// Features of one product at one event time, as published on `ticks.features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureVector {
    pub schema: u32,
    pub product_id: String,
    /// Exchange time of the tick that produced this vector.
    pub event_time: DateTime<Utc>,
    /// When the tick behind this vector was received (carried through for end-to-end lag).
    pub receive_time: DateTime<Utc>,
    pub feature_set: String,
    pub features: Features,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_follows_feature_names() {
        let json = serde_json::to_value(Features {
            price: 1.0,
            midprice: 2.0,
            return_1s: 3.0,
            return_5s: 4.0,
            return_30s: 5.0,
            return_60s: 6.0,
            volatility: 7.0,
            volatility_10s: 8.0,
            trade_intensity: 9.0,
            spread_abs: 10.0,
            spread_rel: 11.0,
            order_book_imbalance: 12.0,
            tick_count: 13.0,
            time_since_prev_tick: 14.0,
            volatility_300s: 15.0,
            volatility_1800s: 16.0,
            volatility_ratio_60s_300s: 17.0,
            volatility_ratio_300s_1800s: 18.0,
            tick_rate_ratio_10s_300s: 19.0,
            spread_rel_ratio_300s: 20.0,
            time_of_day_sin: 21.0,
            time_of_day_cos: 22.0,
        })
        .unwrap();
        let f: Features = serde_json::from_value(json.clone()).unwrap();
        for (i, (name, value)) in FEATURE_NAMES.iter().zip(f.to_array()).enumerate() {
            assert_eq!(json[name].as_f64(), Some(value), "{name}");
            assert_eq!(value, (i + 1) as f64, "{name} is number {} of FEATURE_NAMES", i + 1);
        }
    }
}
