//! `spikewatch ingest`: Coinbase WebSocket feed → `ticks.raw`, keyed by product id.
//!
//! The feed client pushes ticks into a bounded link; the publisher drains it into Kafka. On
//! SIGINT or SIGTERM the client closes the socket and drops its end of the link, the publisher
//! publishes what is left and waits until the broker acknowledged every tick, and the mirror
//! (if any) writes its last lines.

use anyhow::Context;
use prometheus::Registry;

use crate::config::Config;
use crate::domain::Feed;
use crate::domain::Tick;
use crate::pipeline::shutdown;
use crate::sinks::mirror;
use crate::sources::metrics::IngestMetrics;
use crate::sources::websocket::{ClientConfig, FeedClient};
use crate::telemetry::server::{self, Health};
use crate::transport::kafka::{JsonPublisher, PublishTotals, TransportError, create_producer, ensure_topics};
use crate::transport::memory::{self, LinkReceiver};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Feed to subscribe to, `advanced_trade` or `exchange` (overrides `feed.kind`).
    #[arg(long, value_name = "FEED", value_parser = parse_feed)]
    pub feed: Option<Feed>,
    /// Comma-separated product ids (overrides `feed.products`).
    #[arg(long, value_name = "PRODUCT", value_delimiter = ',')]
    pub products: Vec<String>,
}

fn parse_feed(value: &str) -> Result<Feed, String> {
    match value {
        "advanced_trade" | "advanced-trade" => Ok(Feed::AdvancedTrade),
        "exchange" => Ok(Feed::Exchange),
        other => Err(format!("unknown feed {other:?} (expected advanced_trade or exchange)")),
    }
}

pub async fn run(args: Args, mut config: Config) -> anyhow::Result<()> {
    if let Some(feed) = args.feed
        && feed != config.feed.kind
    {
        config.feed.kind = feed;
        // A URL configured for the other feed would speak the wrong protocol.
        config.feed.url = None;
    }
    if !args.products.is_empty() {
        config.feed.products = args.products;
    }
    let registry = Registry::new();
    let metrics = IngestMetrics::register(&registry).context("registering ingest metrics")?;
    let health = Health::default();
    let addr = server::spawn(&config.metrics.bind, registry.clone(), health.clone(), None).await?;
    tracing::info!(%addr, "serving /metrics and /health");
    let shutdown = shutdown::on_signal();

    let kafka = &config.kafka;
    if kafka.create_topics {
        ensure_topics(kafka, &[&kafka.topics.raw]).await.context("creating the raw topic")?;
    }
    let publisher = JsonPublisher::new(create_producer(kafka)?, kafka.topics.raw.clone())
        .with_acknowledged_counter(metrics.ticks_acknowledged.clone());

    let client_config = ClientConfig::from_feed_config(&config.feed);
    tracing::info!(
        feed = ?client_config.feed,
        url = %client_config.url,
        products = ?client_config.products,
        topic = %kafka.topics.raw,
        "ingest started"
    );
    let mut client = FeedClient::new(client_config, metrics.clone());
    let mut mirror_task = None;
    if let Some(mirror_config) = &config.feed.mirror {
        let (handle, task) = mirror::spawn(mirror_config, config.feed.kind, metrics.clone())
            .with_context(|| format!("starting the frame mirror in {}", mirror_config.dir))?;
        client = client.with_mirror(handle);
        mirror_task = Some(task);
    }

    let (tx, rx) = memory::link(memory::DEFAULT_CAPACITY);
    // Ready once the feed delivered its first tick (see `forward`): connected is not enough.
    let publishing = tokio::spawn(forward(rx, publisher, health.clone()));
    // Returns on shutdown; dropping the client closes the link and lets the publisher finish.
    let streamed = client.run(tx, shutdown).await;
    health.set_ready(false);
    let published = publishing.await.context("the publishing task failed")?;
    if let Some(task) = mirror_task {
        let _ = task.await;
    }
    streamed.context("feed client")?;
    let published = published.context("flushing ticks to Kafka")?;
    tracing::info!(
        enqueued = published.enqueued,
        acknowledged = published.acknowledged,
        failed = published.failed,
        "ingest stopped"
    );
    println!("ingested: ticks={} acknowledged={}", published.enqueued, published.acknowledged);
    Ok(())
}

/// Publishes every tick of the link keyed by product id, and waits for the broker's
/// acknowledgements whenever the feed pauses. A live feed is slow next to Kafka, so this costs
/// nothing, keeps the acknowledged counter current, and turns a delivery failure into an error
/// (and a restart) within moments instead of after thousands of unconfirmed ticks.
/// `ready` turns true with the first tick handed to the producer.
async fn forward(
    mut ticks: LinkReceiver<Tick>,
    mut publisher: JsonPublisher,
    ready: Health,
) -> Result<PublishTotals, TransportError> {
    use tokio::sync::mpsc::error::TryRecvError;
    loop {
        let tick = match ticks.try_recv() {
            Ok(tick) => tick,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                publisher.flush().await?;
                match ticks.recv().await {
                    Some(tick) => tick,
                    None => break,
                }
            }
        };
        publisher.publish(&tick.product_id, &tick).await?;
        if !ready.is_ready() {
            ready.set_ready(true);
        }
    }
    publisher.close().await
}
