//! The data contracts that flow between the workloads: market feed → features → model.
//!
//! Every message on a topic is one JSON object carrying a `schema` version, keyed by product id.

mod feature_set;
mod feature_vector;
mod prediction;
mod tick;

pub use feature_set::{
    FEATURE_NAMES, FEATURE_SET_VERSION, FEATURES, Feature, FeatureSpec, Features, Impute, N_FEATURES, Range,
};
pub use feature_vector::{FEATURE_VECTOR_SCHEMA, FeatureVector};
pub use prediction::{ModelVariant, PREDICTION_SCHEMA, Prediction};
pub use tick::{Feed, Side, TICK_SCHEMA, Tick};
