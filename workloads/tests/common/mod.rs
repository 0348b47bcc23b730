//! Shared harness for the integration tests: `mod common;` at the top of a test file.
//!
//! Each test binary uses a different subset of these helpers, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod broker;

pub use broker::Broker;
