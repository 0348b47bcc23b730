use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::feature_set::Features;

/// Version of the [`FeatureVector`] JSON layout on `ticks.features`.
pub const FEATURE_VECTOR_SCHEMA: u32 = 1;
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
