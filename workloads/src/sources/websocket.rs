//! The live Coinbase client: connect, subscribe, stream tickers into a channel, and keep doing
//! so across disconnects.
//!
//! One connection at a time. A connection ends when the server closes it, on a transport
//! error, or when the heartbeat watchdog sees no frame for `heartbeat_timeout`; the client then
//! reconnects after an exponential, jittered backoff (reset once a connection delivered
//! tickers) and subscribes again. Every frame is counted; bad frames are counted by kind and
//! skipped; sequence gaps are counted per product. Cancelling the token closes the socket and
//! returns.

use std::time::Duration;

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::coinbase::{Frame, FrameParser, TradeTicks};
use super::metrics::IngestMetrics;
use super::sequence::{ConnectionSequence, Continuity, ExchangeSequences};
use crate::config::FeedConfig;
use crate::domain::{Feed, Tick};
use crate::sinks::mirror::MirrorHandle;

pub const ADVANCED_TRADE_URL: &str = "wss://advanced-trade-ws.coinbase.com";
pub const EXCHANGE_URL: &str = "wss://ws-feed.exchange.coinbase.com";

/// The public endpoint of a feed.
pub fn default_url(feed: Feed) -> &'static str {
    match feed {
        Feed::AdvancedTrade => ADVANCED_TRADE_URL,
        Feed::Exchange => EXCHANGE_URL,
    }
}

/// The messages that subscribe a fresh connection to tickers and heartbeats of `products`.
/// Advanced Trade takes one channel per message; Exchange takes a list.
pub fn subscribe_messages(feed: Feed, products: &[String]) -> Vec<String> {
    match feed {
        // The ticker carries the book, `market_trades` the trades (paired with the book).
        Feed::AdvancedTrade => ["ticker", "market_trades", "heartbeats"]
            .iter()
            .map(|channel| {
                serde_json::json!({"type": "subscribe", "product_ids": products, "channel": channel}).to_string()
            })
            .collect(),
        Feed::Exchange => vec![
            serde_json::json!({"type": "subscribe", "product_ids": products, "channels": ["ticker", "heartbeat"]})
                .to_string(),
        ],
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    pub feed: Feed,
    pub url: String,
    pub products: Vec<String>,
    /// No frame for this long → the connection is considered dead.
    pub heartbeat_timeout: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_frame_bytes: usize,
}

impl ClientConfig {
    pub fn from_feed_config(feed: &FeedConfig) -> ClientConfig {
        ClientConfig {
            feed: feed.kind,
            url: feed.url.clone().unwrap_or_else(|| default_url(feed.kind).to_owned()),
            products: feed.products.clone(),
            heartbeat_timeout: Duration::from_secs(feed.heartbeat_timeout_secs.max(1)),
            initial_backoff: Duration::from_millis(feed.reconnect_initial_backoff_ms.max(1)),
            max_backoff: Duration::from_millis(feed.reconnect_max_backoff_ms.max(1)),
            max_frame_bytes: feed.max_frame_bytes.max(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no products to subscribe to")]
    NoProducts,
    #[error("invalid feed URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

/// Why a connection ended.
#[derive(Debug)]
enum SessionEnd {
    Shutdown,
    /// Nobody consumes ticks any more: stop, there is nothing to reconnect for.
    ReceiverClosed,
    /// The server closed, the transport failed, or the watchdog fired.
    Lost {
        reason: String,
        delivered_ticks: bool,
    },
}

pub struct FeedClient {
    config: ClientConfig,
    parser: FrameParser,
    metrics: IngestMetrics,
    mirror: Option<MirrorHandle>,
    exchange_sequences: ExchangeSequences,
    connection_sequence: ConnectionSequence,
    /// Each product's latest book, for the Advanced Trade trades.
    trade_ticks: TradeTicks,
}

impl FeedClient {
    pub fn new(config: ClientConfig, metrics: IngestMetrics) -> FeedClient {
        FeedClient {
            parser: FrameParser::new(config.max_frame_bytes),
            config,
            metrics,
            mirror: None,
            exchange_sequences: ExchangeSequences::default(),
            connection_sequence: ConnectionSequence::default(),
            trade_ticks: TradeTicks::default(),
        }
    }

    /// Also writes every raw frame to the NDJSON mirror.
    pub fn with_mirror(mut self, mirror: MirrorHandle) -> FeedClient {
        self.mirror = Some(mirror);
        self
    }

    /// Streams until `shutdown` is cancelled or the receiver of `ticks` is dropped.
    pub async fn run(mut self, ticks: mpsc::Sender<Tick>, shutdown: CancellationToken) -> Result<(), ClientError> {
        if self.config.products.is_empty() {
            return Err(ClientError::NoProducts);
        }
        let url = url::Url::parse(&self.config.url)
            .map_err(|e| ClientError::InvalidUrl { url: self.config.url.clone(), reason: e.to_string() })?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(ClientError::InvalidUrl {
                url: self.config.url.clone(),
                reason: "scheme must be ws or wss".into(),
            });
        }
        let mut backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
        let mut first = true;
        loop {
            if !first {
                self.metrics.reconnects.inc();
            }
            first = false;
            match self.session(&ticks, &shutdown).await {
                SessionEnd::Shutdown => {
                    tracing::info!("feed client stopped");
                    return Ok(());
                }
                SessionEnd::ReceiverClosed => {
                    tracing::info!("tick receiver closed; feed client stopping");
                    return Ok(());
                }
                SessionEnd::Lost { reason, delivered_ticks } => {
                    if delivered_ticks {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay(&mut rand::rng());
                    tracing::warn!(%reason, delay_ms = delay.as_millis() as u64, "feed connection lost; reconnecting");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One connection: connect, subscribe, stream.
    async fn session(&mut self, ticks: &mpsc::Sender<Tick>, shutdown: &CancellationToken) -> SessionEnd {
        let lost = |reason: String| SessionEnd::Lost { reason, delivered_ticks: false };
        // The transport enforces a generous bound; the parser's cap (counted, not fatal) is the real one.
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(self.config.max_frame_bytes.saturating_mul(16).max(16 << 20)));
        let connect = tokio_tungstenite::connect_async_with_config(self.config.url.as_str(), Some(ws_config), true);
        let mut ws = tokio::select! {
            _ = shutdown.cancelled() => return SessionEnd::Shutdown,
            result = tokio::time::timeout(self.config.heartbeat_timeout, connect) => match result {
                Err(_) => return lost("connect timed out".into()),
                Ok(Err(err)) => return lost(format!("connect failed: {err}")),
                Ok(Ok((ws, _response))) => ws,
            },
        };
        self.metrics.connections.inc();
        self.connection_sequence.reset();
        for message in subscribe_messages(self.config.feed, &self.config.products) {
            if let Err(err) = ws.send(Message::text(message)).await {
                return lost(format!("subscribe failed: {err}"));
            }
        }
        tracing::info!(url = %self.config.url, products = ?self.config.products, "subscribed");
        self.metrics.connected.set(1);
        let end = self.stream(&mut ws, ticks, shutdown).await;
        self.metrics.connected.set(0);
        if matches!(end, SessionEnd::Shutdown | SessionEnd::ReceiverClosed) {
            // Best effort: the process is leaving either way.
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        }
        end
    }

    async fn stream<S>(&mut self, ws: &mut S, ticks: &mpsc::Sender<Tick>, shutdown: &CancellationToken) -> SessionEnd
    where
        S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    {
        let mut delivered_ticks = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return SessionEnd::Shutdown,
                next = tokio::time::timeout(self.config.heartbeat_timeout, ws.next()) => next,
            };
            let message = match next {
                Err(_) => {
                    self.metrics.watchdog_timeouts.inc();
                    let reason = format!("no frame for {:?} (heartbeat watchdog)", self.config.heartbeat_timeout);
                    return SessionEnd::Lost { reason, delivered_ticks };
                }
                Ok(None) => return SessionEnd::Lost { reason: "connection closed".into(), delivered_ticks },
                Ok(Some(Err(err))) => return SessionEnd::Lost { reason: err.to_string(), delivered_ticks },
                Ok(Some(Ok(message))) => message,
            };
            let text = match &message {
                Message::Text(text) => text.as_str(),
                Message::Binary(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        self.metrics.frames_received.inc();
                        self.metrics.parse_errors.with_label_values(&["invalid_json"]).inc();
                        continue;
                    }
                },
                Message::Close(frame) => {
                    let reason = format!("server closed the connection: {frame:?}");
                    return SessionEnd::Lost { reason, delivered_ticks };
                }
                // Pings are answered by tungstenite itself; any frame feeds the watchdog.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            for tick in self.handle_text(text) {
                let product = tick.product_id.clone();
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return SessionEnd::Shutdown,
                    sent = ticks.send(tick) => if sent.is_err() {
                        return SessionEnd::ReceiverClosed;
                    },
                }
                self.metrics.ticks_published.with_label_values(&[&product]).inc();
                delivered_ticks = true;
            }
        }
    }

    /// Counts, mirrors and parses one frame; returns the ticks to publish.
    fn handle_text(&mut self, text: &str) -> Vec<Tick> {
        let received_at = Utc::now();
        self.metrics.frames_received.inc();
        self.metrics.bytes_received.inc_by(text.len() as u64);
        if let Some(mirror) = &self.mirror {
            mirror.record(received_at, text);
        }
        let parsed = match self.parser.parse_with_sequence(self.config.feed, text, received_at) {
            Ok(parsed) => parsed,
            Err(err) => {
                self.metrics.parse_errors.with_label_values(&[err.kind()]).inc();
                tracing::debug!(kind = err.kind(), %err, "frame rejected");
                return Vec::new();
            }
        };
        if let Some(sequence_num) = parsed.sequence_num {
            let continuity = self.connection_sequence.observe(sequence_num);
            self.record_continuity("connection", continuity);
        }
        match parsed.frame {
            Frame::Tickers(ticks) => {
                for tick in &ticks {
                    if self.config.feed == Feed::Exchange {
                        let continuity = self.exchange_sequences.observe(tick);
                        self.record_continuity(&tick.product_id, continuity);
                    }
                    let lag = (tick.receive_time - tick.exchange_time).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    self.metrics.feed_lag_seconds.observe(lag.max(0.0));
                    self.trade_ticks.observe(tick);
                }
                ticks
            }
            Frame::Trades(trades) => {
                let ticks: Vec<Tick> = trades.iter().filter_map(|t| self.trade_ticks.tick(t, received_at)).collect();
                if ticks.len() < trades.len() {
                    // Trades of a product whose first ticker has not arrived: no book to pair with.
                    self.metrics.frames_skipped.with_label_values(&["trade_before_book"]).inc();
                }
                ticks
            }
            Frame::Heartbeat => self.skipped("heartbeat"),
            Frame::Subscriptions => self.skipped("subscriptions"),
            Frame::Error(message) => {
                self.metrics.server_errors.inc();
                tracing::error!(%message, "feed reported an error");
                self.skipped("error")
            }
            Frame::Other(_) => self.skipped("other"),
        }
    }

    fn skipped(&self, kind: &str) -> Vec<Tick> {
        self.metrics.frames_skipped.with_label_values(&[kind]).inc();
        Vec::new()
    }

    fn record_continuity(&self, product: &str, continuity: Continuity) {
        match continuity {
            Continuity::First | Continuity::InOrder => {}
            Continuity::Gap { missed } => {
                self.metrics.sequence_gaps.with_label_values(&[product]).inc();
                self.metrics.missed_messages.with_label_values(&[product]).inc_by(missed);
                tracing::warn!(product, missed, "sequence gap");
            }
            Continuity::OutOfOrder => {
                self.metrics.out_of_order.with_label_values(&[product]).inc();
                tracing::debug!(product, "sequence did not advance");
            }
        }
    }
}
