use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the [`Prediction`] JSON layout on `ticks.predictions`.
pub const PREDICTION_SCHEMA: u32 = 1;

/// Which model answers (`MODEL_VARIANT`): `ml`, HAR-RV with a gradient-boosted correction, or
/// `baseline`, the HAR-RV forecaster (the default and the rollback target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelVariant {
    Ml,
    Baseline,
}

impl ModelVariant {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelVariant::Ml => "ml",
            ModelVariant::Baseline => "baseline",
        }
    }
}

impl std::str::FromStr for ModelVariant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ml" => Ok(ModelVariant::Ml),
            "baseline" => Ok(ModelVariant::Baseline),
            other => Err(format!("unknown model variant {other:?} (expected \"ml\" or \"baseline\")")),
        }
    }
}

/// A model's answer for one [`super::FeatureVector`], as published on `ticks.predictions`.
///
/// Fields added after schema 1 was published are optional, so that readers and writers of
/// either age keep understanding each other without a schema bump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Prediction {
    pub schema: u32,
    pub product_id: String,
    /// Event time of the features this prediction is about.
    pub event_time: DateTime<Utc>,
    /// P(volatility spike in the next 60 s).
    pub probability: f64,
    /// 1 when `probability >= threshold`.
    pub prediction: u8,
    pub threshold: f64,
    pub model_name: String,
    pub model_version: String,
    pub model_variant: ModelVariant,
    /// Seconds from receiving the message to producing this prediction.
    pub processing_latency_seconds: f64,
    /// Mid price of the tick behind the features, so that a chart can draw the market next to
    /// the probability. Absent in predictions written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub midprice: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA_1_WITHOUT_MIDPRICE: &str = r#"{"schema":1,"product_id":"BTC-USD",
        "event_time":"2025-11-12T07:20:11.629353Z","probability":0.25,"prediction":0,"threshold":0.31,
        "model_name":"spikewatch-gbdt","model_version":"3","model_variant":"ml",
        "processing_latency_seconds":0.001}"#;

    #[test]
    fn predictions_without_midprice_still_parse_and_round_trip_unchanged() {
        let prediction: Prediction = serde_json::from_str(SCHEMA_1_WITHOUT_MIDPRICE).unwrap();
        assert_eq!(prediction.midprice, None);
        let written = serde_json::to_value(&prediction).unwrap();
        let original: serde_json::Value = serde_json::from_str(SCHEMA_1_WITHOUT_MIDPRICE).unwrap();
        assert_eq!(written, original, "no field is added when midprice is unknown");
    }

    #[test]
    fn midprice_is_written_when_known() {
        let mut prediction: Prediction = serde_json::from_str(SCHEMA_1_WITHOUT_MIDPRICE).unwrap();
        prediction.midprice = Some(103_472.275);
        let written = serde_json::to_value(&prediction).unwrap();
        assert_eq!(written["midprice"], 103_472.275);
        assert_eq!(written["schema"], PREDICTION_SCHEMA);
    }
}
