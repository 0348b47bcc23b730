//! HTTP plumbing shared by every server of this binary, the prediction API (`api`) and the
//! workloads' metrics port (`telemetry::server`): connections with bounds on slow clients, the
//! one error type with its JSON body, JSON request bodies read strictly, and the files built
//! into the binary.

pub mod connections;
pub mod duplicate_keys;
pub mod embedded;
pub mod error;
pub mod excerpt;
pub mod json_body;

pub use error::ApiError;
pub use json_body::{BodyLimit, JsonBody};
