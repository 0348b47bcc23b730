//! Prediction API (`spikewatch serve`): axum router, handlers, OpenAPI, Open Inference Protocol v2.
