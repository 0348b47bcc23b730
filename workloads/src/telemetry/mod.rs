//! Logs and metrics shared by every workload.

pub mod config_keys;
pub mod logging;
pub mod server;
