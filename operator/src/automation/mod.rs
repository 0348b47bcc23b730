//! What the operator decides on its own, as pure functions: roll the model back to the
//! baseline and bring it back ([`rollback`]), and size the predictor on consumer lag
//! ([`scaling`]).
//!
//! Inputs are the policy from the spec, what the status remembers (failed checks in a row,
//! state, recent scaling recommendations), this reconcile's measurements and the time; outputs
//! are the next state and a decision. Nothing here performs I/O: measurements come from
//! [`crate::observe`], and [`crate::controller::automation`] records decisions in the status
//! and acts on them. The spec is never edited.

pub mod rollback;
pub mod scaling;
pub mod signals;
pub mod time;
pub mod window;

pub use rollback::{
    Decision, RETRY_ANNOTATION, RecoveryReason, RollbackInput, RollbackPolicy, check_due, effective_variant,
    rollback_decision,
};
pub use scaling::{LagObservation, Recommendation, ScalingDecision, ScalingPolicy, ScalingReason, scaling_decision};
pub use signals::{Measurement, Measurements, PodReadiness, evaluate_check};
