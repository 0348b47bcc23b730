//! Logs and metrics shared by every workload.

pub mod logging;
pub mod server;
