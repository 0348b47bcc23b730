//! The types the workloads (`spikewatch`) and the operator (`spikewatch-operator`) share:
//!
//! - [`config`]: the one YAML config file of every `spikewatch` subcommand, its defaults and its
//!   environment overrides. The operator renders it into each pipeline's ConfigMap.
//! - [`domain`]: the messages on the topics (`Tick`, `FeatureVector`, `Prediction`), their
//!   schema versions, and the enums the operator's CRD maps onto (`Feed`, `ModelVariant`).
//! - [`metric_names`]: the names of the workloads' metrics, which the operator's rules,
//!   dashboard and rollback checks query.
//!
//! The workloads re-export both modules (`spikewatch::config`, `spikewatch::domain`). This crate
//! stays free of the workloads' runtime dependencies (Tokio, Kafka, ONNX Runtime, Arrow) so that
//! the operator does not build or link them. The optional features `clap` and `utoipa` add the
//! derives only the workloads' CLI and OpenAPI document need.

pub mod build_info;
pub mod config;
pub mod domain;
pub mod metric_names;
