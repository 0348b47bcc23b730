//! The model-switch lever: reloading the model and switching its variant at run time, the
//! operator's rollback and a person's hot reload. One implementation for every process that
//! serves a model (the API and the predictor), so the same action behaves the same on every
//! pod: the same bearer-token check ([`auth`]), one pull at a time, the same metrics
//! ([`metrics`]), the same routes and status codes ([`routes`]).

pub mod auth;
pub mod auth_failures;
pub mod lever;
pub mod metrics;
pub mod routes;

pub use auth::AdminAuth;
pub use lever::ModelLever;
pub use metrics::ModelMetrics;
pub use routes::router;
