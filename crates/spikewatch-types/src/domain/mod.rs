//! The data contracts that flow between the workloads: market feed → features → model.
//!
//! Every message on a topic is one JSON object carrying a `schema` version, keyed by product id.

mod feature_vector;
mod prediction;
mod tick;

pub use feature_vector::{FEATURE_NAMES, FEATURE_SET_VERSION, FEATURE_VECTOR_SCHEMA, FeatureVector, Features};
pub use prediction::{ModelVariant, PREDICTION_SCHEMA, Prediction};
pub use tick::{Feed, Side, TICK_SCHEMA, Tick};
