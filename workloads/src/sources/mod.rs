//! Where market data comes in: Coinbase WebSocket feeds and recorded NDJSON.

pub mod backoff;
pub mod coinbase;
pub mod metrics;
pub mod recording;
pub mod sequence;
pub mod websocket;
