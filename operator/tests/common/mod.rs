//! Helpers shared by the operator crate's integration tests.
#![allow(dead_code)]

pub mod cluster;
pub mod processes;
