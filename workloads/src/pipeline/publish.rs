//! Forwarding an in-process link of Ticks to Kafka (replay, and the live ingestor's feed).

use crate::domain::Tick;
use crate::telemetry::server::Health;
use crate::transport::kafka::{JsonPublisher, PublishTotals, TransportError};
use crate::transport::memory::LinkReceiver;

/// Publishes every tick from `ticks` keyed by product id until the link is closed and drained,
/// then waits until the broker acknowledged all of them. `ready`, when given, turns true once
/// the first tick is handed to the producer: a source is ready when ticks flow, not before.
pub async fn publish_ticks(
    mut ticks: LinkReceiver<Tick>,
    mut publisher: JsonPublisher,
    ready: Option<Health>,
) -> Result<PublishTotals, TransportError> {
    while let Some(tick) = ticks.recv().await {
        publisher.publish(&tick.product_id, &tick).await?;
        if let Some(ready) = &ready
            && !ready.is_ready()
        {
            ready.set_ready(true);
        }
    }
    publisher.close().await
}
