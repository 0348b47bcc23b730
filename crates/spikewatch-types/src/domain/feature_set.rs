//! The feature set, declared once: every feature's name, unit, formula, accepted range, whether
//! it is one of the original prediction API's fields, and how an absent value is filled in.
//!
//! Everything else follows from [`FEATURES`]: [`FEATURE_NAMES`] (the model's input order, checked
//! against the ONNX model's metadata), [`Feature`] (an index per feature), the JSON shape of
//! [`Features`], the API's range checks and imputation, the table in `docs/features.md` and the
//! training pipeline's list (`spikewatch features --describe`, checked by tests). Adding a
//! feature means adding a line here and computing it in the feature engine.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Version of the feature definitions. Bump when a formula changes or a feature is added.
pub const FEATURE_SET_VERSION: &str = "v3";

/// Accepted values of a feature: `min < x` (or `min <= x` when `min_inclusive`) and `x <= max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub min_inclusive: bool,
    pub max: f64,
}

impl Range {
    pub const fn closed(min: f64, max: f64) -> Range {
        Range { min, min_inclusive: true, max }
    }

    pub const fn positive(max: f64) -> Range {
        Range { min: 0.0, min_inclusive: false, max }
    }

    pub fn contains(&self, x: f64) -> bool {
        let above_min = if self.min_inclusive { x >= self.min } else { x > self.min };
        above_min && x <= self.max
    }

    /// `[min, max]` or `(min, max]`.
    pub fn interval(&self) -> String {
        let open = if self.min_inclusive { '[' } else { '(' };
        format!("{open}{}, {}]", self.min, self.max)
    }
}

/// How a feature is filled in when a request leaves it out, and whether it may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impute {
    /// The training median stored with the model (`reference.json`).
    Median,
    /// Missing (NaN): the source may not have it (trades, book sizes) and the model handles a
    /// missing value as such. The feature engine leaves it missing in the same cases.
    Missing,
}

impl Impute {
    pub fn as_str(&self) -> &'static str {
        match self {
            Impute::Median => "training median",
            Impute::Missing => "missing",
        }
    }
}

/// One feature's declaration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureSpec {
    pub name: &'static str,
    /// One of the original prediction API's eleven request fields.
    pub seed: bool,
    pub unit: &'static str,
    pub range: Range,
    pub impute: Impute,
    /// The formula, in the notation of `docs/features.md`.
    pub doc: &'static str,
}

macro_rules! feature_set {
    ($( $variant:ident $name:literal { seed: $seed:literal, unit: $unit:literal, range: $range:expr, impute: $impute:ident, doc: $doc:literal } )*) => {
        /// A feature, by its position in [`FEATURE_NAMES`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(usize)]
        pub enum Feature { $($variant),* }

        /// Every feature, in the model's input order.
        pub const FEATURES: [FeatureSpec; N_FEATURES] = [
            $(FeatureSpec { name: $name, seed: $seed, unit: $unit, range: $range, impute: Impute::$impute, doc: $doc }),*
        ];

        impl Feature {
            /// Every feature, in the model's input order.
            pub const ALL: [Feature; N_FEATURES] = [$(Feature::$variant),*];
        }

        /// Number of features.
        pub const N_FEATURES: usize = [$($name),*].len();
    };
}

feature_set! {
    Price "price" { seed: true, unit: "quote currency", range: Range::positive(1e9), impute: Median,
        doc: "last trade price of the tick" }
    Midprice "midprice" { seed: true, unit: "quote currency", range: Range::positive(1e9), impute: Median,
        doc: "`mid_t = (best_bid + best_ask) / 2`" }
    Return1s "return_1s" { seed: true, unit: "log return", range: Range::closed(-1.0, 1.0), impute: Median,
        doc: "`ln(mid_t / mid_base(1 s))`" }
    Return5s "return_5s" { seed: true, unit: "log return", range: Range::closed(-1.0, 1.0), impute: Median,
        doc: "`ln(mid_t / mid_base(5 s))`" }
    Return30s "return_30s" { seed: true, unit: "log return", range: Range::closed(-1.0, 1.0), impute: Median,
        doc: "`ln(mid_t / mid_base(30 s))`" }
    Return60s "return_60s" { seed: true, unit: "log return", range: Range::closed(-1.0, 1.0), impute: Median,
        doc: "`ln(mid_t / mid_base(60 s))`" }
    Volatility "volatility" { seed: true, unit: "log return per tick", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "sample std of the tick-to-tick log mid returns whose later tick lies in `(t − 60 s, t]`" }
    TradeIntensity "trade_intensity" { seed: true, unit: "trades / s", range: Range::closed(0.0, 1e6), impute: Median,
        doc: "trades among the ticks in `(t − 60 s, t]`, divided by 60" }
    SpreadAbs "spread_abs" { seed: true, unit: "quote currency", range: Range::closed(0.0, 1e9), impute: Median,
        doc: "`best_ask − best_bid`" }
    SpreadRel "spread_rel" { seed: true, unit: "fraction of the mid", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "`spread_abs / mid_t`" }
    OrderBookImbalance "order_book_imbalance" { seed: true, unit: "ratio", range: Range::closed(-1.0, 1.0), impute: Median,
        doc: "`(bid_size − ask_size) / (bid_size + ask_size)` at the best levels; 0 when a size is absent or both are 0" }
    TickCount "tick_count" { seed: false, unit: "ticks", range: Range::closed(0.0, 1e9), impute: Median,
        doc: "ticks of the segment in `(t − 60 s, t]`, the current one included" }
    TimeSincePrevTick "time_since_prev_tick" { seed: false, unit: "s", range: Range::closed(0.0, 1e9), impute: Median,
        doc: "`t − t_prev` (previous accepted tick of the segment); 0 for a segment's first tick" }
    Rv10s "rv_10s" { seed: false, unit: "log return² / s", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "`RV(10 s) / n`: squared one-second mid returns of the grid seconds in `(S − 10, S]`, per covered second" }
    Rv30s "rv_30s" { seed: false, unit: "log return² / s", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "as `rv_10s` over `(S − 30, S]`" }
    Rv60s "rv_60s" { seed: false, unit: "log return² / s", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "as `rv_10s` over `(S − 60, S]`: the persistence forecast (past-minute realized variance, per second)" }
    Rv300s "rv_300s" { seed: false, unit: "log return² / s", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "as `rv_10s` over `(S − 300, S]`" }
    Rv900s "rv_900s" { seed: false, unit: "log return² / s", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "as `rv_10s` over `(S − 900, S]`" }
    Bv60s "bv_60s" { seed: false, unit: "log return² / s", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "bipower variation `(π / 2) Σ abs(r(u)) abs(r(u − 1))` over `u` in `(S − 60, S]`, per covered second (robust to a single jump)" }
    JumpShare60s "jump_share_60s" { seed: false, unit: "ratio", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "largest `r(u)²` in `(S − 60, S]` over their sum; 0 when the sum is 0" }
    RvLevel "rv_level_3600s" { seed: false, unit: "log return² / s", range: Range::closed(0.0, 1.0), impute: Median,
        doc: "squared one-second returns of the last hour per covered second, across segments (gaps excluded): the product's own trailing level" }
    Rv60sToLevel "rv_60s_to_level" { seed: false, unit: "ratio", range: Range::closed(0.0, 1e9), impute: Median,
        doc: "`rv_60s / rv_level_3600s`; 1 when the level is 0" }
    SegmentAge "segment_age" { seed: false, unit: "s", range: Range::closed(0.0, 3600.0), impute: Median,
        doc: "covered seconds of the segment so far (`S − first second`), at most 3600: how much of the windows is filled" }
    TradeRate2s "trade_rate_2s" { seed: false, unit: "trades / s", range: Range::closed(0.0, 1e6), impute: Missing,
        doc: "trades in `(t − 2 s, t]` per covered second" }
    TradeRate10s "trade_rate_10s" { seed: false, unit: "trades / s", range: Range::closed(0.0, 1e6), impute: Missing,
        doc: "trades in `(t − 10 s, t]` per covered second" }
    TradeRate60s "trade_rate_60s" { seed: false, unit: "trades / s", range: Range::closed(0.0, 1e6), impute: Missing,
        doc: "trades in `(t − 60 s, t]` per covered second" }
    TradeAcceleration "trade_acceleration" { seed: false, unit: "ratio", range: Range::closed(0.0, 1e9), impute: Missing,
        doc: "`trade_rate_10s / trade_rate_60s`; 1 when the latter is 0" }
    NotionalRateToLevel "notional_rate_to_level" { seed: false, unit: "ratio", range: Range::closed(0.0, 1e9), impute: Missing,
        doc: "traded notional per covered second over `(t − 60 s, t]` against the same over the last hour; 1 when the latter is 0" }
    TradeImbalance10s "trade_imbalance_10s" { seed: false, unit: "ratio", range: Range::closed(-1.0, 1.0), impute: Missing,
        doc: "(taker-buy − taker-sell notional) / notional of the trades in `(t − 10 s, t]`; 0 without trades" }
    TradeImbalance60s "trade_imbalance_60s" { seed: false, unit: "ratio", range: Range::closed(-1.0, 1.0), impute: Missing,
        doc: "as `trade_imbalance_10s` over `(t − 60 s, t]`" }
    SignedNotionalToLevel "signed_notional_to_level" { seed: false, unit: "ratio", range: Range::closed(-1e9, 1e9), impute: Missing,
        doc: "signed taker notional per covered second over `(t − 60 s, t]` against the notional per covered second of the last hour; 0 when the latter is 0" }
    LargeTradeRatio60s "large_trade_ratio_60s" { seed: false, unit: "ratio", range: Range::closed(0.0, 1e12), impute: Missing,
        doc: "largest trade notional in `(t − 60 s, t]` over the mean trade notional of the last hour; 0 without trades" }
    SweepShare60s "sweep_share_60s" { seed: false, unit: "ratio", range: Range::closed(0.0, 1.0), impute: Missing,
        doc: "share of the trades in `(t − 60 s, t]` that share their timestamp with the product's previous trade (one order sweeping several resting ones)" }
    SweepLevels60s "sweep_levels_60s" { seed: false, unit: "price levels", range: Range::closed(0.0, 1e9), impute: Missing,
        doc: "most price levels one sweep crossed in `(t − 60 s, t]` (trade prices that differ from the previous trade of the same sweep)" }
    DepthToTradeSize "depth_to_trade_size" { seed: false, unit: "ratio", range: Range::closed(0.0, 1e12), impute: Missing,
        doc: "`(bid_size + ask_size) × mid_t` over the mean trade notional of the last hour; missing without sizes or trades" }
    SpreadTicks "spread_ticks" { seed: false, unit: "ticks", range: Range::closed(0.0, 1e9), impute: Median,
        doc: "`spread_abs` over the smallest positive spread of the last hour (the price increment, as seen); 1 before any positive spread" }
    SpreadRelRatio300s "spread_rel_ratio_300s" { seed: false, unit: "ratio", range: Range::closed(0.0, 1e9), impute: Median,
        doc: "`spread_rel` over the mean `spread_rel` of the ticks in `(t − 300 s, t]`; 1 when that mean is 0" }
}

/// Feature names, in the model's input order (the ONNX model's metadata is checked against it).
pub const FEATURE_NAMES: [&str; N_FEATURES] = {
    let mut names = [""; N_FEATURES];
    let mut i = 0;
    while i < N_FEATURES {
        names[i] = FEATURES[i].name;
        i += 1;
    }
    names
};

impl Feature {
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn spec(self) -> &'static FeatureSpec {
        &FEATURES[self as usize]
    }

    pub const fn name(self) -> &'static str {
        FEATURES[self as usize].name
    }

    /// The feature called `name`.
    pub fn from_name(name: &str) -> Option<Feature> {
        FEATURE_NAMES.iter().position(|n| *n == name).map(|i| Feature::ALL[i])
    }
}

/// The features of one product at one event time, in [`FEATURE_NAMES`] order. A feature the
/// source cannot provide ([`Impute::Missing`]) is NaN.
///
/// In JSON: an object with every feature by name, a missing one as `null`. Two vectors are
/// equal when every feature is, a missing one equal to a missing one.
#[derive(Debug, Clone, Copy)]
pub struct Features(pub [f64; N_FEATURES]);

impl PartialEq for Features {
    fn eq(&self, other: &Features) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()))
    }
}

impl Default for Features {
    fn default() -> Self {
        Features([0.0; N_FEATURES])
    }
}

impl Features {
    /// The values in [`FEATURE_NAMES`] order.
    pub fn to_array(&self) -> [f64; N_FEATURES] {
        self.0
    }

    pub fn get(&self, feature: Feature) -> f64 {
        self.0[feature.index()]
    }

    /// `self` with `feature` set to `value`.
    pub fn with(mut self, feature: Feature, value: f64) -> Features {
        self.0[feature.index()] = value;
        self
    }
}

impl std::ops::Index<Feature> for Features {
    type Output = f64;

    fn index(&self, feature: Feature) -> &f64 {
        &self.0[feature.index()]
    }
}

impl std::ops::IndexMut<Feature> for Features {
    fn index_mut(&mut self, feature: Feature) -> &mut f64 {
        &mut self.0[feature.index()]
    }
}

impl Serialize for Features {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(N_FEATURES))?;
        for (name, value) in FEATURE_NAMES.iter().zip(self.0) {
            // NaN is how a missing feature is held; JSON has no NaN, so it travels as null.
            map.serialize_entry(name, &(!value.is_nan()).then_some(value))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Features {
    /// Every feature of this feature set must be present (`null` reads as missing); a name this
    /// build does not know is an error, as is a name given twice.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FeaturesVisitor;
        impl<'de> Visitor<'de> for FeaturesVisitor {
            type Value = Features;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an object with the {N_FEATURES} features of feature set {FEATURE_SET_VERSION}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Features, A::Error> {
                let mut values = [None::<f64>; N_FEATURES];
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let Some(feature) = Feature::from_name(&key) else {
                        return Err(de::Error::unknown_field(&key, &FEATURE_NAMES));
                    };
                    let slot = &mut values[feature.index()];
                    if slot.is_some() {
                        return Err(de::Error::duplicate_field(feature.name()));
                    }
                    *slot = Some(map.next_value::<Option<f64>>()?.unwrap_or(f64::NAN));
                }
                let mut out = [0.0; N_FEATURES];
                for (i, value) in values.into_iter().enumerate() {
                    out[i] = value.ok_or_else(|| de::Error::missing_field(FEATURE_NAMES[i]))?;
                }
                Ok(Features(out))
            }
        }
        deserializer.deserialize_map(FeaturesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_table() {
        let mut seen = std::collections::HashSet::new();
        for (i, feature) in Feature::ALL.iter().enumerate() {
            assert_eq!(feature.index(), i);
            assert_eq!(feature.name(), FEATURE_NAMES[i]);
            assert_eq!(Feature::from_name(feature.name()), Some(*feature));
            assert!(seen.insert(feature.name()), "{} twice", feature.name());
        }
        assert_eq!(Feature::from_name("time_of_day_sin"), None);
    }

    #[test]
    fn the_original_api_fields_are_the_seed_features() {
        let seed: Vec<&str> = FEATURES.iter().filter(|f| f.seed).map(|f| f.name).collect();
        assert_eq!(
            seed,
            [
                "price",
                "midprice",
                "return_1s",
                "return_5s",
                "return_30s",
                "return_60s",
                "volatility",
                "trade_intensity",
                "spread_abs",
                "spread_rel",
                "order_book_imbalance"
            ]
        );
        assert!(FEATURES.iter().filter(|f| f.seed).all(|f| f.impute == Impute::Median));
    }

    #[test]
    fn json_is_an_object_by_name_with_missing_as_null() {
        let mut features = Features(std::array::from_fn(|i| i as f64 + 0.5));
        features[Feature::TradeRate2s] = f64::NAN;
        let json = serde_json::to_value(features).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), N_FEATURES);
        assert_eq!(json["price"], 0.5);
        assert_eq!(json["spread_rel_ratio_300s"], N_FEATURES as f64 - 0.5);
        assert!(json["trade_rate_2s"].is_null());
        let back: Features = serde_json::from_value(json).unwrap();
        assert!(back[Feature::TradeRate2s].is_nan());
        assert_eq!(back[Feature::Rv60s], features[Feature::Rv60s]);
    }

    #[test]
    fn json_must_name_every_feature_once_and_nothing_else() {
        let full = serde_json::to_string(&Features::default()).unwrap();
        let missing = full.replacen("\"price\":0.0,", "", 1);
        let err = serde_json::from_str::<Features>(&missing).unwrap_err().to_string();
        assert!(err.contains("missing field `price`"), "{err}");
        let unknown = full.replacen("{", "{\"time_of_day_sin\":0.0,", 1);
        let err = serde_json::from_str::<Features>(&unknown).unwrap_err().to_string();
        assert!(err.contains("unknown field `time_of_day_sin`"), "{err}");
        let twice = full.replacen("{", "{\"price\":1.0,", 1);
        let err = serde_json::from_str::<Features>(&twice).unwrap_err().to_string();
        assert!(err.contains("duplicate field `price`"), "{err}");
    }

    #[test]
    fn missing_equals_missing_and_nothing_else() {
        let a = Features::default().with(Feature::TradeRate2s, f64::NAN);
        assert_eq!(a, a);
        assert_ne!(a, Features::default());
        assert_ne!(a, a.with(Feature::Price, 1.0));
    }

    #[test]
    fn ranges_admit_their_bounds_as_declared() {
        assert!(Range::closed(0.0, 1.0).contains(0.0));
        assert!(!Range::positive(1.0).contains(0.0));
        assert!(Range::positive(1.0).contains(1.0));
        assert!(!Range::closed(0.0, 1.0).contains(f64::NAN));
        assert_eq!(Range::positive(1e9).interval(), "(0, 1000000000]");
    }
}
