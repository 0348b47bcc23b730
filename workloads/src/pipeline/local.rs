//! `spikewatch run`: the whole data plane in one process over in-memory links, no Kafka.
//!
//! ```text
//! source (replay | live feed) ─Tick→ features ─FeatureVector→ [predict] ─LocalEvent→ summary
//! ```
//!
//! Every link is a bounded channel ([`crate::transport::memory`]); the stages are the ones the
//! Kafka workloads run ([`super::replay::replay`], [`super::featurize::Featurizer`]). The predict
//! stage is optional: a [`LocalPredictor`] in [`LocalOptions::predictor`] is called with
//! micro-batches of feature vectors; without one, feature vectors go straight to the summary.
//! With a [`PredictionFeed`] in [`LocalOptions::feed`] (`run --serve`), the predict stage also
//! publishes every prediction there, for the API's stream; publishing never waits, so watchers
//! never slow the run down.
//! The run ends when the source ends (replay) or on shutdown (SIGINT/SIGTERM), after every link
//! drained.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use super::featurize::{Featurizer, FeaturizerMetrics};
use super::replay::{ReplayOptions, ReplayTotals, replay};
use super::summary::{LocalEvent, Summary};
use crate::config::Config;
use crate::domain::{FeatureVector, ModelVariant, Prediction, Tick};
use crate::model::{Fallback, ModelHandle};
use crate::prediction_feed::PredictionFeed;
use crate::sources::metrics::IngestMetrics;
use crate::sources::websocket::{ClientConfig, FeedClient};
use crate::transport::memory::{self, LinkReceiver, LinkSender};

/// Where ticks come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalSource {
    /// Recordings (empty inputs = the bundled one).
    Replay(ReplayOptions),
    /// The live Coinbase feed of `config.feed`.
    Live,
}

/// The optional predict stage of a local run (the model's predictor implements it).
pub trait LocalPredictor: Send + 'static {
    /// Scores a micro-batch; returns the predictions it could make (failures are the
    /// predictor's to count and log).
    fn predict(&mut self, batch: &[FeatureVector]) -> Vec<Prediction>;
}

pub struct LocalOptions {
    pub source: LocalSource,
    /// How often the live summary line is printed.
    pub summary_interval: Duration,
    pub predictor: Option<Box<dyn LocalPredictor>>,
    /// The model the predictor scores with, reported on the totals line.
    pub model: Option<ModelHandle>,
    /// Where the predict stage also publishes its predictions (the API's live stream).
    pub feed: Option<PredictionFeed>,
    /// Largest micro-batch handed to the predictor.
    pub predict_batch: usize,
    pub link_capacity: usize,
}

impl LocalOptions {
    pub fn new(source: LocalSource) -> LocalOptions {
        LocalOptions {
            source,
            summary_interval: Duration::from_secs(1),
            predictor: None,
            model: None,
            feed: None,
            predict_batch: 256,
            link_capacity: memory::DEFAULT_CAPACITY,
        }
    }
}

/// Totals of a local run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalTotals {
    pub ticks: u64,
    pub features: u64,
    /// Ticks the feature engine rejected (duplicates, out of order, invalid).
    pub rejected: u64,
    pub predictions: u64,
    pub skipped_frames: u64,
    pub malformed_lines: u64,
    pub elapsed: Duration,
    /// The model answering at the end (`None`: the run made no predictions).
    pub model: Option<AnsweringModel>,
}

/// Which model answered a local run, and whether only because the ML model could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct AnsweringModel {
    pub variant: ModelVariant,
    pub fallback: Option<Arc<Fallback>>,
}

impl AnsweringModel {
    pub fn of(model: &ModelHandle) -> AnsweringModel {
        AnsweringModel { variant: model.variant(), fallback: model.fallback() }
    }
}

/// Counters the stages update and the summary reads.
#[derive(Default)]
pub(super) struct Counters {
    pub ticks: AtomicU64,
    pub features: AtomicU64,
    pub rejected: AtomicU64,
    pub predictions: AtomicU64,
}

/// Runs the topology, printing the live summary and the final totals to `out`.
pub async fn run<W: Write + Send + 'static>(
    config: &Config,
    options: LocalOptions,
    shutdown: CancellationToken,
    out: W,
) -> anyhow::Result<LocalTotals> {
    let source = options.source.clone();
    let feed_config = config.feed.clone();
    run_with_source(config, options, out, move |tick_tx| async move {
        match source {
            LocalSource::Replay(replay_options) => replay(&replay_options, tick_tx, shutdown, None).await,
            LocalSource::Live => {
                let client = FeedClient::new(ClientConfig::from_feed_config(&feed_config), IngestMetrics::new()?);
                client.run(tick_tx, shutdown).await.context("live feed failed")?;
                Ok(ReplayTotals::default())
            }
        }
    })
    .await
}

/// [`run`] with the ticks of `source` instead of [`LocalOptions::source`] (which is ignored):
/// `source` gets the sending end of the tick link and returns when it has sent everything
/// (dropping the link ends the run). For load generators and tests.
pub async fn run_with_source<W, S, F>(
    config: &Config,
    options: LocalOptions,
    out: W,
    source: S,
) -> anyhow::Result<LocalTotals>
where
    W: Write + Send + 'static,
    S: FnOnce(LinkSender<Tick>) -> F,
    F: Future<Output = anyhow::Result<ReplayTotals>>,
{
    let started = Instant::now();
    let counters = Arc::new(Counters::default());
    let (tick_tx, tick_rx) = memory::link::<Tick>(options.link_capacity);
    let (vector_tx, vector_rx) = memory::link::<FeatureVector>(options.link_capacity);
    let (event_tx, event_rx) = memory::link::<LocalEvent>(options.link_capacity);

    let featurizer = Featurizer::new(&config.features, FeaturizerMetrics::register(&Registry::new())?);
    let features = tokio::spawn(features_stage(featurizer, tick_rx, vector_tx, counters.clone()));
    let predict = match options.predictor {
        Some(predictor) => tokio::spawn(predict_stage(
            predictor,
            options.predict_batch,
            vector_rx,
            event_tx,
            options.feed,
            counters.clone(),
        )),
        None => tokio::spawn(pass_through(vector_rx, event_tx)),
    };
    let summary = Summary::new(out, counters.clone(), options.summary_interval);
    let sink = tokio::spawn(summary.run(event_rx));

    let source_totals = source(tick_tx).await?;
    features.await.context("feature stage failed")?;
    predict.await.context("predict stage failed")?;
    let mut summary = sink.await.context("summary stage failed")?;

    let totals = LocalTotals {
        ticks: counters.ticks.load(Ordering::Relaxed),
        features: counters.features.load(Ordering::Relaxed),
        rejected: counters.rejected.load(Ordering::Relaxed),
        predictions: counters.predictions.load(Ordering::Relaxed),
        skipped_frames: source_totals.skipped_frames,
        malformed_lines: source_totals.malformed_lines,
        elapsed: started.elapsed(),
        model: options.model.as_ref().map(AnsweringModel::of),
    };
    summary.finish(&totals)?;
    Ok(totals)
}

async fn features_stage(
    mut featurizer: Featurizer,
    mut ticks: LinkReceiver<Tick>,
    vectors: LinkSender<FeatureVector>,
    counters: Arc<Counters>,
) {
    loop {
        let batch = memory::recv_batch(&mut ticks, 512).await;
        if batch.is_empty() {
            break;
        }
        let computed = featurizer.featurize_batch(&batch);
        counters.ticks.fetch_add(batch.len() as u64, Ordering::Relaxed);
        counters.features.fetch_add(computed.len() as u64, Ordering::Relaxed);
        counters.rejected.fetch_add((batch.len() - computed.len()) as u64, Ordering::Relaxed);
        for vector in computed {
            if vectors.send(vector).await.is_err() {
                return;
            }
        }
    }
}

async fn predict_stage(
    mut predictor: Box<dyn LocalPredictor>,
    max_batch: usize,
    mut vectors: LinkReceiver<FeatureVector>,
    events: LinkSender<LocalEvent>,
    feed: Option<PredictionFeed>,
    counters: Arc<Counters>,
) {
    loop {
        let batch = memory::recv_batch(&mut vectors, max_batch).await;
        if batch.is_empty() {
            break;
        }
        let predictions = predictor.predict(&batch);
        counters.predictions.fetch_add(predictions.len() as u64, Ordering::Relaxed);
        if let Some(feed) = &feed {
            for prediction in &predictions {
                feed.publish(prediction.clone());
            }
        }
        let events_out = batch
            .into_iter()
            .map(|v| LocalEvent::Features(Box::new(v)))
            .chain(predictions.into_iter().map(LocalEvent::Prediction));
        for event in events_out {
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

async fn pass_through(mut vectors: LinkReceiver<FeatureVector>, events: LinkSender<LocalEvent>) {
    while let Some(vector) = vectors.recv().await {
        if events.send(LocalEvent::Features(Box::new(vector))).await.is_err() {
            return;
        }
    }
}
