use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the [`FeatureVector`] JSON layout on `ticks.features`.
pub const FEATURE_VECTOR_SCHEMA: u32 = 1;
/// Version of the feature definitions (docs/features.md). Bump when a formula changes.
pub const FEATURE_SET_VERSION: &str = "v1";

/// The model's input, in this exact order (the ONNX model's metadata is checked against it).
pub const FEATURE_NAMES: [&str; 14] = [
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
        })
        .unwrap();
        let f: Features = serde_json::from_value(json.clone()).unwrap();
        for (name, value) in FEATURE_NAMES.iter().zip(f.to_array()) {
            assert_eq!(json[name].as_f64(), Some(value), "{name}");
        }
    }
}
