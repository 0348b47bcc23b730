use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the [`Prediction`] JSON layout on `ticks.predictions`.
pub const PREDICTION_SCHEMA: u32 = 1;

/// Which model answers: the trained GBDT or the z-score fallback (`MODEL_VARIANT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}
