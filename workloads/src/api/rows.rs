//! One feature row as clients send it, and the plausibility check every row passes before scoring.
//!
//! The fields, their ranges and how an absent one is filled in all come from the feature table
//! (`spikewatch_types::domain::FEATURES`); nothing here lists features by hand.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::domain::{FEATURE_NAMES, FEATURES, Feature, Features, Impute, N_FEATURES};

use crate::http::error::ApiError;

/// One row of features: the flat body of the original `/predict` API, with any of the newer
/// features by name.
///
/// Every field is optional. An absent field with a training median (the original API's eleven,
/// and the newer ones that every source has) is filled with the median stored with the model
/// and listed in the answer's `imputed`; strict mode refuses absent original fields instead.
/// An absent (or `null`) trade or book-size feature is missing, as it is for a source that does
/// not report trades, and the model handles it as such. Unknown fields are ignored; a field given
/// twice is an error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureRow {
    /// As sent: `None` when absent; NaN for an explicit `null` of a feature that may be missing.
    values: [Option<f64>; N_FEATURES],
}

impl FeatureRow {
    /// A row with the given values and nothing else.
    pub fn from_values(values: impl IntoIterator<Item = (Feature, f64)>) -> FeatureRow {
        let mut row = FeatureRow { values: [None; N_FEATURES] };
        for (feature, value) in values {
            row.values[feature.index()] = Some(value);
        }
        row
    }

    /// A row with every feature of `features`.
    pub fn full(features: &Features) -> FeatureRow {
        FeatureRow { values: features.0.map(Some) }
    }

    pub fn get(&self, feature: Feature) -> Option<f64> {
        self.values[feature.index()]
    }
}

impl<'de> Deserialize<'de> for FeatureRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = FeatureRow;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of features by name")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FeatureRow, A::Error> {
                let mut values = [None; N_FEATURES];
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let Some(feature) = Feature::from_name(&key) else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    if values[feature.index()].is_some() {
                        return Err(de::Error::duplicate_field(feature.name()));
                    }
                    let value = match feature.spec().impute {
                        // `null` is how a serializer writes NaN: for a feature that may be
                        // missing that is what it means; for the others it is refused like any
                        // wrong type, never read as "absent".
                        Impute::Missing => map.next_value::<Option<f64>>()?.unwrap_or(f64::NAN),
                        Impute::Median => map.next_value::<f64>()?,
                    };
                    values[feature.index()] = Some(value);
                }
                Ok(FeatureRow { values })
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

impl utoipa::PartialSchema for FeatureRow {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let mut object = ObjectBuilder::new().description(Some(
            "One row of features by name (docs/features.md). Every field is optional: an absent field \
             takes the training median (original fields: refused in strict mode); an absent or null \
             trade or book-size feature is missing. Unknown fields are ignored.",
        ));
        for spec in FEATURES {
            let mut property = ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some(format!(
                    "{} ({}), in {}. {}",
                    spec.doc,
                    spec.unit,
                    spec.range.interval(),
                    match spec.impute {
                        Impute::Median => "Absent: the training median.",
                        Impute::Missing => "Absent or null: missing.",
                    }
                )))
                .maximum(Some(spec.range.max));
            property = if spec.range.min_inclusive {
                property.minimum(Some(spec.range.min))
            } else {
                property.exclusive_minimum(Some(spec.range.min))
            };
            if spec.impute == Impute::Missing {
                property =
                    property.schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::Number, Type::Null]));
            }
            object = object.property(spec.name, property);
        }
        object
            .examples([serde_json::json!({
                "price": 91234.5, "midprice": 91234.25, "return_1s": 0.00001, "return_5s": -0.00002,
                "return_30s": 0.0001, "return_60s": 0.0003, "volatility": 0.00004, "trade_intensity": 4.2,
                "spread_abs": 0.01, "spread_rel": 0.0000001, "order_book_imbalance": 0.12,
                "rv_60s": 2.5e-9, "rv_300s": 1.9e-9, "rv_900s": 2.2e-9
            })])
            .into()
    }
}

impl utoipa::ToSchema for FeatureRow {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FeatureRow")
    }
}

/// How a row's absent fields are filled.
#[derive(Debug, Clone, Copy)]
pub enum Fill<'a> {
    /// With the training medians (in [`FEATURE_NAMES`] order).
    Medians(&'a [f64; N_FEATURES]),
    /// Absent original fields are an error (strict mode); the newer ones take the training
    /// medians when the model has them.
    Strict(Option<&'a [f64; N_FEATURES]>),
    /// Not at all: the model has no training medians, so an absent field that needs one is an
    /// error.
    NoReference,
}

impl<'a> Fill<'a> {
    fn medians(&self) -> Option<&'a [f64; N_FEATURES]> {
        match *self {
            Fill::Medians(m) | Fill::Strict(Some(m)) => Some(m),
            Fill::Strict(None) | Fill::NoReference => None,
        }
    }
}

/// A row's features and the fields that were filled with training medians.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub features: Features,
    pub imputed: Vec<&'static str>,
}

impl FeatureRow {
    /// The model's input: absent fields filled per `fill`, every value then checked against its
    /// range. `prefix` locates the row (`rows[3]`).
    pub fn complete(&self, prefix: &str, fill: Fill<'_>) -> Result<Completed, ApiError> {
        let field = |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
        // Check what the client sent before anything is filled in: the error then names the
        // field the client got wrong.
        for (i, value) in self.values.iter().enumerate() {
            if let Some(value) = value {
                check_feature(i, *value).map_err(|violation| violation.into_error(field(FEATURE_NAMES[i])))?;
            }
        }
        let absent_seed: Vec<&'static str> =
            FEATURES.iter().zip(&self.values).filter(|(s, v)| s.seed && v.is_none()).map(|(s, _)| s.name).collect();
        if let (Some(first), Fill::Strict(_) | Fill::NoReference) = (absent_seed.first(), fill) {
            let why = match fill {
                Fill::Strict(_) => "strict mode fills in nothing",
                _ => "the model has no training medians to fill them in with",
            };
            return Err(ApiError::Incomplete { field: field(first), missing: absent_seed, why });
        }
        let mut values = [0.0; N_FEATURES];
        let mut imputed = Vec::new();
        for (i, spec) in FEATURES.iter().enumerate() {
            values[i] = match (self.values[i], spec.impute, fill.medians()) {
                (Some(v), _, _) => v,
                (None, Impute::Missing, _) => f64::NAN,
                (None, Impute::Median, Some(medians)) => {
                    imputed.push(spec.name);
                    medians[i]
                }
                (None, Impute::Median, None) => {
                    return Err(ApiError::Incomplete {
                        field: field(spec.name),
                        missing: vec![spec.name],
                        why: "the model has no training medians to fill them in with",
                    });
                }
            };
        }
        let features = Features(values);
        check(&features, prefix)?;
        Ok(Completed { features, imputed })
    }
}

/// First value of `features` that is out of its range, non-finite, or missing where the feature
/// cannot be.
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

/// Checks the value of feature number `index` (in [`FEATURE_NAMES`] order): in range, or NaN
/// (missing) for a feature that may be missing.
pub fn check_feature(index: usize, value: f64) -> Result<(), Violation> {
    let spec = &FEATURES[index];
    if value.is_nan() && spec.impute == Impute::Missing {
        return Ok(());
    }
    if !value.is_finite() {
        return Err(Violation::NonFinite);
    }
    if spec.range.contains(value) {
        Ok(())
    } else {
        Err(Violation::OutOfRange(format!("must be in {} (got {value})", spec.range.interval())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Feature::*;

    /// The original API's eleven fields.
    pub(crate) fn row() -> FeatureRow {
        FeatureRow::from_values([
            (Price, 100.0),
            (Midprice, 100.0),
            (Return1s, 0.0),
            (Return5s, 0.0),
            (Return30s, 0.0),
            (Return60s, 0.0),
            (Volatility, 0.001),
            (TradeIntensity, 2.0),
            (SpreadAbs, 0.01),
            (SpreadRel, 0.0001),
            (OrderBookImbalance, 0.0),
        ])
    }

    fn with(row: FeatureRow, feature: Feature, value: Option<f64>) -> FeatureRow {
        let mut row = row;
        row.values[feature.index()] = value;
        row
    }

    /// Medians 0.001, 0.002, ... by feature number (in range for every feature), prices 50,000.
    fn medians() -> [f64; N_FEATURES] {
        let mut m: [f64; N_FEATURES] = std::array::from_fn(|i| (i + 1) as f64 * 1e-3);
        m[Price.index()] = 50_000.0;
        m[Midprice.index()] = 50_000.5;
        m
    }

    #[test]
    fn absent_fields_take_the_training_medians_or_are_missing() {
        let medians = medians();
        let done = row().complete("", Fill::Medians(&medians)).unwrap();
        assert_eq!(done.features[Price], 100.0, "what was sent stays");
        assert_eq!(done.features[Rv60s], medians[Rv60s.index()]);
        assert!(done.imputed.contains(&"rv_60s") && !done.imputed.contains(&"price"));
        assert!(done.features[TradeRate10s].is_nan(), "a trade feature is missing, not imputed");
        assert!(!done.imputed.contains(&"trade_rate_10s"));
        // The runbook's smoke test: a price alone.
        let only_price = FeatureRow::from_values([(Price, 50_000.0)]);
        let done = only_price.complete("", Fill::Medians(&medians)).unwrap();
        assert_eq!(done.imputed.len(), FEATURES.iter().filter(|f| f.impute == Impute::Median).count() - 1);
        assert_eq!(done.features[Volatility], medians[Volatility.index()]);
        // A full row imputes nothing.
        let full = FeatureRow::full(&Features(medians));
        assert!(full.complete("", Fill::Medians(&medians)).unwrap().imputed.is_empty());
    }

    #[test]
    fn strict_mode_and_a_model_without_medians_refuse_partial_rows() {
        let partial = with(with(row(), Price, None), Volatility, None);
        for (fill, why) in [(Fill::Strict(None), "strict"), (Fill::NoReference, "no training medians")] {
            match partial.complete("rows[1]", fill) {
                Err(e @ ApiError::Incomplete { .. }) => {
                    assert_eq!(e.field().as_deref(), Some("rows[1].price"));
                    assert!(e.reason().contains("price, volatility") && e.reason().contains(why), "{}", e.reason());
                    assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
                }
                other => panic!("{other:?}"),
            }
        }
        // Strict mode with medians still fills the newer fields.
        let medians = medians();
        let done = row().complete("", Fill::Strict(Some(&medians))).unwrap();
        assert_eq!(done.features[Rv300s], medians[Rv300s.index()]);
    }

    #[test]
    fn each_range_violation_names_its_field() {
        let medians = medians();
        let cases: [(FeatureRow, &str); 9] = [
            (with(row(), Price, Some(-1.0)), "price"),
            (with(row(), Price, Some(0.0)), "price"),
            (with(row(), Midprice, Some(2e9)), "midprice"),
            (with(row(), Return60s, Some(1.5)), "return_60s"),
            (with(row(), Volatility, Some(-0.1)), "volatility"),
            (with(row(), SpreadRel, Some(1.5)), "spread_rel"),
            (with(row(), OrderBookImbalance, Some(-1.01)), "order_book_imbalance"),
            (with(row(), TickCount, Some(-3.0)), "tick_count"),
            (with(row(), TradeImbalance60s, Some(1.01)), "trade_imbalance_60s"),
        ];
        for (bad, name) in cases {
            match bad.complete("rows[2]", Fill::Medians(&medians)) {
                Err(ApiError::OutOfRange { field, .. }) => assert_eq!(field, format!("rows[2].{name}")),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_finite_is_its_own_error_and_only_some_features_may_be_missing() {
        let medians = medians();
        let err = with(row(), Rv10s, Some(f64::INFINITY)).complete("", Fill::Medians(&medians)).unwrap_err();
        assert_eq!(err, ApiError::NonFinite { field: "rv_10s".into() });
        let err = with(row(), Rv10s, Some(f64::NAN)).complete("", Fill::Medians(&medians)).unwrap_err();
        assert_eq!(err, ApiError::NonFinite { field: "rv_10s".into() });
        let missing = with(row(), TradeRate2s, Some(f64::NAN)).complete("", Fill::Medians(&medians)).unwrap();
        assert!(missing.features[TradeRate2s].is_nan());
    }

    #[test]
    fn json_nulls_unknown_fields_and_duplicates() {
        let row: FeatureRow = serde_json::from_str(r#"{"price": 5, "trade_rate_2s": null, "colour": "red"}"#).unwrap();
        assert_eq!(row.get(Price), Some(5.0));
        assert!(row.get(TradeRate2s).unwrap().is_nan());
        assert_eq!(row.get(Volatility), None);
        let err = serde_json::from_str::<FeatureRow>(r#"{"price": null}"#).unwrap_err().to_string();
        assert!(err.contains("invalid type: null"), "{err}");
        let err = serde_json::from_str::<FeatureRow>(r#"{"price": 1, "price": 2}"#).unwrap_err().to_string();
        assert!(err.contains("duplicate field `price`"), "{err}");
    }

    #[test]
    fn bounds_are_inclusive_where_documented() {
        let medians = medians();
        for ok in [
            with(row(), SpreadRel, Some(1.0)),
            with(row(), SpreadRel, Some(0.0)),
            with(row(), OrderBookImbalance, Some(-1.0)),
            with(row(), Return1s, Some(1.0)),
        ] {
            ok.complete("", Fill::Medians(&medians)).unwrap();
        }
    }
}
