//! Prometheus metrics of the market-data sources (`spikewatch_ingest_*`).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, exponential_buckets};

use super::coinbase::FrameError;
use crate::metric_names::ingest as names;

/// The ingest counters, registered once per process in the registry `/metrics` serves.
#[derive(Clone)]
pub struct IngestMetrics {
    pub frames_received: IntCounter,
    pub bytes_received: IntCounter,
    /// Ticks handed to the downstream channel, by product.
    pub ticks_published: IntCounterVec,
    /// Ticks the broker acknowledged (`spikewatch ingest` only).
    pub ticks_acknowledged: IntCounter,
    /// Well-formed frames without tickers, by type.
    pub frames_skipped: IntCounterVec,
    pub parse_errors: IntCounterVec,
    pub connections: IntCounter,
    pub reconnects: IntCounter,
    pub watchdog_timeouts: IntCounter,
    pub connected: IntGauge,
    pub server_errors: IntCounter,
    /// Sequence gaps by product (Advanced Trade numbers the connection: `product="connection"`).
    pub sequence_gaps: IntCounterVec,
    /// Messages missing in those gaps.
    pub missed_messages: IntCounterVec,
    /// Messages whose sequence did not advance (duplicates, reordering).
    pub out_of_order: IntCounterVec,
    /// Receive time minus exchange time.
    pub feed_lag_seconds: Histogram,
    pub mirror_frames_written: IntCounter,
    pub mirror_frames_dropped: IntCounter,
    pub mirror_rotations: IntCounter,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<IngestMetrics> {
        let m = IngestMetrics::new()?;
        for collector in m.collectors() {
            registry.register(collector)?;
        }
        Ok(m)
    }

    /// Metrics registered nowhere: for tests and tools that only read the values.
    pub fn new() -> prometheus::Result<IngestMetrics> {
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let counter_vec = |name: &str, help: &str, label: &str| IntCounterVec::new(Opts::new(name, help), &[label]);
        let m = IngestMetrics {
            frames_received: counter(names::FRAMES_RECEIVED, "WebSocket text frames received")?,
            bytes_received: counter(names::BYTES_RECEIVED, "Bytes of WebSocket frames received")?,
            ticks_published: counter_vec(names::TICKS_PUBLISHED, "Ticks published downstream", "product")?,
            ticks_acknowledged: counter(names::TICKS_ACKNOWLEDGED, "Ticks acknowledged by the Kafka broker")?,
            frames_skipped: counter_vec(names::FRAMES_SKIPPED, "Well-formed frames without tickers", "type")?,
            parse_errors: counter_vec(names::PARSE_ERRORS, "Frames rejected by the parser, by kind", "kind")?,
            connections: counter(names::CONNECTIONS, "WebSocket connections established")?,
            reconnects: counter(names::RECONNECTS, "Reconnect attempts after a connection ended or failed")?,
            watchdog_timeouts: counter(names::WATCHDOG_TIMEOUTS, "Connections dropped for silence")?,
            connected: IntGauge::new(names::CONNECTED, "1 while subscribed to the feed")?,
            server_errors: counter(names::SERVER_ERRORS, "Error messages sent by the feed")?,
            sequence_gaps: counter_vec(names::SEQUENCE_GAPS, "Sequence gaps detected", "product")?,
            missed_messages: counter_vec(names::MISSED_MESSAGES, "Messages missing in sequence gaps", "product")?,
            out_of_order: counter_vec(names::OUT_OF_ORDER, "Messages whose sequence did not advance", "product")?,
            feed_lag_seconds: Histogram::with_opts(
                HistogramOpts::new(names::FEED_LAG_SECONDS, "Receive time minus exchange time")
                    .buckets(exponential_buckets(0.005, 2.0, 12)?),
            )?,
            mirror_frames_written: counter(names::MIRROR_FRAMES_WRITTEN, "Raw frames written to the mirror")?,
            mirror_frames_dropped: counter(
                names::MIRROR_FRAMES_DROPPED,
                "Raw frames the mirror could not keep up with",
            )?,
            mirror_rotations: counter(names::MIRROR_ROTATIONS, "Mirror files started")?,
        };
        // Zero series for every kind, so dashboards and alerts see them before the first error.
        for kind in FrameError::KINDS {
            m.parse_errors.with_label_values(&[*kind]);
        }
        Ok(m)
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.frames_received.clone()),
            Box::new(self.bytes_received.clone()),
            Box::new(self.ticks_published.clone()),
            Box::new(self.ticks_acknowledged.clone()),
            Box::new(self.frames_skipped.clone()),
            Box::new(self.parse_errors.clone()),
            Box::new(self.connections.clone()),
            Box::new(self.reconnects.clone()),
            Box::new(self.watchdog_timeouts.clone()),
            Box::new(self.connected.clone()),
            Box::new(self.server_errors.clone()),
            Box::new(self.sequence_gaps.clone()),
            Box::new(self.missed_messages.clone()),
            Box::new(self.out_of_order.clone()),
            Box::new(self.feed_lag_seconds.clone()),
            Box::new(self.mirror_frames_written.clone()),
            Box::new(self.mirror_frames_dropped.clone()),
            Box::new(self.mirror_rotations.clone()),
        ]
    }

    /// Sum of a counter vector over its labels (tests, summaries).
    pub fn total(vec: &IntCounterVec) -> u64 {
        use prometheus::core::Collector;
        vec.collect().iter().flat_map(|family| family.get_metric()).map(|m| m.get_counter().get_value() as u64).sum()
    }
}
