//! Why the baseline answers in place of the ML model that was asked for: a short, bounded
//! reason (the `reason` label of `model_fallback_active`, the `reason` of `/version`'s
//! `model_fallback`) and the load error for people.

use serde::Serialize;
use utoipa::ToSchema;

use super::ModelError;

/// The kinds of failure that put the baseline in the ML model's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The ONNX Runtime library is not there (`ORT_DYLIB_PATH` unset or wrong) or does not load.
    RuntimeUnavailable,
    /// The runtime loaded but the ML model did not (missing or broken export).
    ModelUnloadable,
}

impl FallbackReason {
    pub const ALL: [FallbackReason; 2] = [FallbackReason::RuntimeUnavailable, FallbackReason::ModelUnloadable];

    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::RuntimeUnavailable => "runtime_unavailable",
            FallbackReason::ModelUnloadable => "model_unloadable",
        }
    }
}

/// The baseline answers because the ML model could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Fallback {
    /// `runtime_unavailable` (no ONNX Runtime library) or `model_unloadable`.
    #[schema(value_type = String, example = "runtime_unavailable")]
    #[serde(serialize_with = "serialize_reason")]
    pub reason: FallbackReason,
    /// The load error.
    pub detail: String,
}

fn serialize_reason<S: serde::Serializer>(reason: &FallbackReason, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(reason.as_str())
}

impl Fallback {
    /// The fallback for the ML model's load error `err`, given whether the ONNX Runtime
    /// library itself is usable.
    pub fn new(err: &ModelError, runtime_available: bool) -> Fallback {
        let reason =
            if runtime_available { FallbackReason::ModelUnloadable } else { FallbackReason::RuntimeUnavailable };
        Fallback { reason, detail: err.to_string() }
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the baseline answers in place of the ML model ({}): {}", self.reason.as_str(), self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_says_whether_the_runtime_or_the_model_failed() {
        let err = ModelError::load("builtin:spikewatch-gbdt", "ORT_DYLIB_PATH is unset");
        let fallback = Fallback::new(&err, false);
        assert_eq!(fallback.reason.as_str(), "runtime_unavailable");
        assert!(fallback.to_string().contains("ORT_DYLIB_PATH is unset"), "{fallback}");
        assert_eq!(Fallback::new(&err, true).reason, FallbackReason::ModelUnloadable);
        let json = serde_json::to_value(&fallback).unwrap();
        assert_eq!(json["reason"], "runtime_unavailable");
    }
}
