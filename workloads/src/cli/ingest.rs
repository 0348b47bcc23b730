//! `spikewatch ingest`: Coinbase WebSocket feed → `ticks.raw`.
//!
//! The feed client pushes ticks into a bounded channel; the publisher drains it. On SIGINT or
//! SIGTERM the client closes the socket, the channel drains, the publisher flushes, and the
//! mirror (if any) writes its last lines.

use anyhow::Context;
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::{Feed, Tick};
use crate::sinks::mirror;
use crate::sources::metrics::IngestMetrics;
use crate::sources::websocket::{ClientConfig, FeedClient};
use crate::telemetry::server::{self, Health};

/// Ticks buffered between the socket and the publisher.
const CHANNEL_CAPACITY: usize = 8192;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Feed to subscribe to (overrides `feed.kind`).
    #[arg(long, value_parser = parse_feed)]
    pub feed: Option<Feed>,
    /// Comma-separated product ids (overrides `feed.products`).
    #[arg(long, value_delimiter = ',')]
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
    if let Some(feed) = args.feed {
        config.feed.kind = feed;
        config.feed.url = None;
    }
    if !args.products.is_empty() {
        config.feed.products = args.products;
    }
    let registry = Registry::new();
    let metrics = IngestMetrics::register(&registry).context("registering ingest metrics")?;
    let health = Health::default();
    let addr = server::spawn(&config.metrics.bind, registry.clone(), health.clone()).await?;
    tracing::info!(%addr, "serving /metrics and /health");

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let client_config = ClientConfig::from_feed_config(&config.feed);
    tracing::info!(feed = ?client_config.feed, url = %client_config.url, products = ?client_config.products, "starting ingest");
    let mut client = FeedClient::new(client_config, metrics.clone());
    let mut mirror_task = None;
    if let Some(mirror_config) = &config.feed.mirror {
        let (handle, task) = mirror::spawn(mirror_config, config.feed.kind, metrics.clone())
            .with_context(|| format!("starting the frame mirror in {}", mirror_config.dir))?;
        client = client.with_mirror(handle);
        mirror_task = Some(task);
    }

    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let client_task = tokio::spawn(client.run(tx, shutdown.clone()));
    health.set_ready(true);

    // Ends when the client stops and drops its sender: every tick received is published.
    let published = publish(rx).await;
    health.set_ready(false);
    let client_result = client_task.await.context("feed client task")?;
    if let Some(task) = mirror_task {
        // The client (and so the last mirror handle) is gone: the writer drains and flushes.
        let _ = task.await;
    }
    tracing::info!(published, "ingest stopped");
    client_result.map_err(Into::into)
}

/// Stand-in publisher until the Kafka transport is wired: logs what would go to `ticks.raw`.
async fn publish(mut rx: mpsc::Receiver<Tick>) -> u64 {
    let mut count = 0u64;
    while let Some(tick) = rx.recv().await {
        count += 1;
        tracing::debug!(product = %tick.product_id, price = tick.price, "tick");
        if count.is_multiple_of(1000) {
            tracing::info!(count, "ticks received");
        }
    }
    count
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only SIGINT stops ingest");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown requested");
    token.cancel();
}
