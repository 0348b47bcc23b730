//! The live predictions of one process, fanned out to every stream client and remembered per
//! product.
//!
//! One `tokio::sync::broadcast` channel: publishing never waits, so no client ever slows the
//! pipeline down; every subscriber reads the same ring of `capacity` predictions, and one that
//! falls further behind loses the oldest and is told how many ([`Delivery::Dropped`]). Memory is
//! bounded by the ring and by [`MAX_PRODUCTS`], whatever the clients or the input do.
//!
//! Every prediction published is also judged ([`FeedJudge`]), so that `/predictions/quality`
//! has the online quality of what this process serves. The judge sits behind one mutex that
//! only the publisher and quality readers take, each for O(1) amortized work or a copy of the
//! numbers: never while waiting on a client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::judge::{FeedJudge, JudgedQuality, Unjudged, UnjudgedCounts};
use crate::domain::Prediction;
use crate::metric_names::prediction_feed as names;
use crate::quality::OnlineConfig;

/// Products whose latest prediction is remembered; predictions of further products are still
/// streamed, but not remembered (a bound against garbage ids on the input).
pub const MAX_PRODUCTS: usize = 1024;

/// `error_type` values of `volatility_api_feed_errors_total`.
pub mod error_type {
    /// A record on the predictions topic that is not a prediction: counted and skipped.
    pub const MALFORMED: &str = "malformed";
    /// The Kafka consumer reported an error (broker unreachable, ...).
    pub const CONSUME: &str = "consume";
    pub const ALL: [&str; 2] = [MALFORMED, CONSUME];
}

/// The feed's metrics, exported on the API's `/metrics`.
#[derive(Clone)]
pub struct FeedMetrics {
    /// `volatility_api_feed_predictions_total`: predictions received by the feed.
    pub published: IntCounter,
    /// `volatility_api_feed_errors_total{error_type}`: input the feed could not use.
    pub errors: IntCounterVec,
    /// `volatility_api_stream_clients`: connected `/predictions/stream` clients.
    pub clients: IntGauge,
    /// `volatility_api_stream_dropped_total`: predictions slow stream clients did not get.
    pub dropped: IntCounter,
    /// `volatility_api_feed_unjudged_total{reason}`: predictions streamed but not judged.
    pub unjudged: IntCounterVec,
}

impl FeedMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<FeedMetrics> {
        let published = IntCounter::new(names::PREDICTIONS, "Live predictions received for streaming")?;
        let errors = IntCounterVec::new(
            Opts::new(names::ERRORS, "Input of the live prediction feed that was skipped, by kind"),
            &["error_type"],
        )?;
        let clients = IntGauge::new(names::STREAM_CLIENTS, "Connected /predictions/stream clients")?;
        let dropped = IntCounter::new(
            names::STREAM_DROPPED,
            "Predictions not delivered to /predictions/stream clients that read too slowly",
        )?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(clients.clone()))?;
        let unjudged = IntCounterVec::new(
            Opts::new(names::UNJUDGED, "Live predictions not judged for /predictions/quality, by reason"),
            &["reason"],
        )?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(unjudged.clone()))?;
        for kind in error_type::ALL {
            errors.with_label_values(&[kind]);
        }
        for reason in Unjudged::ALL {
            unjudged.with_label_values(&[reason.as_str()]);
        }
        Ok(FeedMetrics { published, errors, clients, dropped, unjudged })
    }

    pub fn error(&self, kind: &str) -> IntCounter {
        self.errors.with_label_values(&[kind])
    }
}

/// Cheap to clone; every clone is the same feed.
#[derive(Clone)]
pub struct PredictionFeed {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Arc<Prediction>>,
    latest: RwLock<BTreeMap<String, Arc<Prediction>>>,
    /// What fills the feed (for error messages); unset = nothing does.
    source: OnceLock<String>,
    /// Cancelled when the server shuts down: every stream ends, so connections can close.
    closing: CancellationToken,
    metrics: FeedMetrics,
    judge: Mutex<FeedJudge>,
}

/// What a subscriber gets next.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Prediction(Arc<Prediction>),
    /// The subscriber fell more than the ring behind: `missed` predictions are lost for it,
    /// `total` since it subscribed.
    Dropped {
        missed: u64,
        total: u64,
    },
}

impl PredictionFeed {
    /// A feed whose subscribers may fall `capacity` predictions behind.
    pub fn new(capacity: usize, metrics: FeedMetrics) -> PredictionFeed {
        let (sender, _) = broadcast::channel(capacity.max(1));
        PredictionFeed {
            inner: Arc::new(Inner {
                sender,
                latest: RwLock::new(BTreeMap::new()),
                source: OnceLock::new(),
                closing: CancellationToken::new(),
                metrics,
                judge: Mutex::new(FeedJudge::new(OnlineConfig::default())),
            }),
        }
    }

    /// Records what fills this feed (`"the in-process pipeline"`, `"Kafka topic ticks.predictions"`).
    /// Until then the API answers that no prediction source is configured.
    pub fn set_source(&self, description: impl Into<String>) {
        let _ = self.inner.source.set(description.into());
    }

    /// What fills this feed, if anything.
    pub fn source(&self) -> Option<&str> {
        self.inner.source.get().map(String::as_str)
    }

    /// Remembers `prediction` as its product's latest, hands it to every subscriber, then
    /// judges it. Never waits on a client.
    pub fn publish(&self, prediction: Prediction) {
        let prediction = Arc::new(prediction);
        self.inner.metrics.published.inc();
        {
            let mut latest = self.inner.latest.write().unwrap_or_else(|e| e.into_inner());
            if latest.len() < MAX_PRODUCTS || latest.contains_key(&prediction.product_id) {
                latest.insert(prediction.product_id.clone(), prediction.clone());
            }
        }
        // An error only means that nobody is subscribed right now.
        let _ = self.inner.sender.send(prediction.clone());
        let verdict = self.judge().observe(&prediction);
        if let Err(reason) = verdict {
            self.inner.metrics.unjudged.with_label_values(&[reason.as_str()]).inc();
        }
    }

    /// The online quality of the products `wanted` (see [`FeedJudge::quality`]), the counts of
    /// predictions that could not be judged, and the evaluator's periods. A copy: the judge is
    /// released before the caller does anything with it.
    pub fn quality(&self, wanted: impl Fn(&str) -> bool) -> (Vec<JudgedQuality>, UnjudgedCounts, OnlineConfig) {
        let judge = self.judge();
        (judge.quality(wanted), judge.unjudged(), *judge.config())
    }

    fn judge(&self) -> std::sync::MutexGuard<'_, FeedJudge> {
        // A panic while judging must not take the stream down with it.
        self.inner.judge.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest prediction of every product seen, in product order.
    pub fn latest(&self) -> Vec<Arc<Prediction>> {
        self.inner.latest.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// The latest prediction of `product`, if one was seen.
    pub fn latest_of(&self, product: &str) -> Option<Arc<Prediction>> {
        self.inner.latest.read().unwrap_or_else(|e| e.into_inner()).get(product).cloned()
    }

    /// Predictions published from now on.
    pub fn subscribe(&self) -> Subscription {
        self.inner.metrics.clients.inc();
        Subscription {
            receiver: self.inner.sender.subscribe(),
            closing: self.inner.closing.clone(),
            metrics: self.inner.metrics.clone(),
            dropped: 0,
        }
    }

    /// Ends every subscription (server shutdown); later ones end at once.
    pub fn close(&self) {
        self.inner.closing.cancel();
    }

    /// Completes when [`PredictionFeed::close`] was called.
    pub async fn closed(&self) {
        self.inner.closing.cancelled().await;
    }

    pub fn metrics(&self) -> &FeedMetrics {
        &self.inner.metrics
    }
}

/// One subscriber's view of the feed; counted in `volatility_api_stream_clients` while it lives.
pub struct Subscription {
    receiver: broadcast::Receiver<Arc<Prediction>>,
    closing: CancellationToken,
    metrics: FeedMetrics,
    dropped: u64,
}

impl Subscription {
    /// The next prediction, or news of lost ones; `None` once the feed is closed.
    pub async fn next(&mut self) -> Option<Delivery> {
        tokio::select! {
            biased;
            () = self.closing.cancelled() => None,
            received = self.receiver.recv() => match received {
                Ok(prediction) => Some(Delivery::Prediction(prediction)),
                Err(RecvError::Lagged(missed)) => {
                    self.dropped += missed;
                    self.metrics.dropped.inc_by(missed);
                    Some(Delivery::Dropped { missed, total: self.dropped })
                }
                Err(RecvError::Closed) => None,
            },
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics.clients.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(capacity: usize) -> (PredictionFeed, Registry) {
        let registry = Registry::new();
        (PredictionFeed::new(capacity, FeedMetrics::register(&registry).unwrap()), registry)
    }

    fn prediction(product: &str, probability: f64) -> Prediction {
        super::super::test_prediction(product, chrono::Utc::now(), Some(100.0), probability)
    }

    fn probability(delivery: Option<Delivery>) -> f64 {
        match delivery {
            Some(Delivery::Prediction(p)) => p.probability,
            other => panic!("expected a prediction, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_prediction_in_order() {
        let (feed, _) = feed(8);
        let (mut a, mut b) = (feed.subscribe(), feed.subscribe());
        for p in [0.1, 0.2, 0.3] {
            feed.publish(prediction("BTC-USD", p));
        }
        for subscriber in [&mut a, &mut b] {
            assert_eq!(probability(subscriber.next().await), 0.1);
            assert_eq!(probability(subscriber.next().await), 0.2);
            assert_eq!(probability(subscriber.next().await), 0.3);
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_the_oldest_and_is_told_how_many() {
        let (feed, registry) = feed(4);
        let mut slow = feed.subscribe();
        for i in 0..10 {
            feed.publish(prediction("BTC-USD", f64::from(i) / 10.0));
        }
        assert_eq!(slow.next().await, Some(Delivery::Dropped { missed: 6, total: 6 }));
        for i in 6..10 {
            assert_eq!(probability(slow.next().await), f64::from(i) / 10.0);
        }
        let text = crate::telemetry::server::render(&registry);
        assert!(text.contains("volatility_api_stream_dropped_total 6"), "{text}");
        assert!(text.contains("volatility_api_feed_predictions_total 10"), "{text}");
    }

    #[tokio::test]
    async fn latest_keeps_one_prediction_per_product() {
        let (feed, _) = feed(4);
        feed.publish(prediction("ETH-USD", 0.1));
        feed.publish(prediction("BTC-USD", 0.2));
        feed.publish(prediction("ETH-USD", 0.3));
        let latest: Vec<(String, f64)> = feed.latest().iter().map(|p| (p.product_id.clone(), p.probability)).collect();
        assert_eq!(latest, [("BTC-USD".to_string(), 0.2), ("ETH-USD".to_string(), 0.3)]);
        assert_eq!(feed.latest_of("ETH-USD").map(|p| p.probability), Some(0.3));
        assert_eq!(feed.latest_of("SOL-USD"), None);
    }

    #[tokio::test]
    async fn products_beyond_the_bound_are_streamed_but_not_remembered() {
        let (feed, _) = feed(4);
        for i in 0..MAX_PRODUCTS {
            feed.publish(prediction(&format!("P{i}-USD"), 0.1));
        }
        let mut subscriber = feed.subscribe();
        feed.publish(prediction("ONE-MORE", 0.2));
        assert_eq!(probability(subscriber.next().await), 0.2);
        assert_eq!(feed.latest().len(), MAX_PRODUCTS);
        assert_eq!(feed.latest_of("ONE-MORE"), None);
        feed.publish(prediction("P0-USD", 0.9));
        assert_eq!(feed.latest_of("P0-USD").map(|p| p.probability), Some(0.9), "known products still update");
    }

    #[tokio::test]
    async fn close_ends_subscriptions_and_the_client_gauge_follows_them() {
        let (feed, registry) = feed(4);
        let mut subscriber = feed.subscribe();
        let gauge = || crate::telemetry::server::render(&registry);
        assert!(gauge().contains("volatility_api_stream_clients 1"), "{}", gauge());
        feed.close();
        assert_eq!(subscriber.next().await, None);
        assert_eq!(feed.subscribe().next().await, None, "a late subscriber ends at once");
        drop(subscriber);
        assert!(gauge().contains("volatility_api_stream_clients 0"), "{}", gauge());
    }
}
