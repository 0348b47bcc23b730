//! Where market data comes in: Coinbase WebSocket feeds and recordings (NDJSON frames, flat
//! tick CSV).

pub mod backoff;
pub mod coinbase;
pub mod download;
pub mod merge;
pub mod metrics;
pub mod recording;
pub mod recording_blocks;
pub mod sequence;
pub mod tick_csv;
pub mod websocket;
