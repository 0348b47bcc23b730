//! Where market data comes in: Coinbase WebSocket feeds and recorded NDJSON.

pub mod coinbase;
pub mod recording;
