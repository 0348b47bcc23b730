//! The featurizer stage: Ticks → FeatureVectors through the one [`FeatureEngine`].
//!
//! [`Featurizer`] is the transform (engine + counting) shared by `spikewatch featurize` (Kafka,
//! [`run_kafka`]) and `spikewatch run` (in-memory links, [`super::local`]).

use chrono::Utc;
use prometheus::{Gauge, IntCounter, IntCounterVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, FeaturesConfig};
use crate::domain::{FeatureVector, Tick};
use crate::features::{EngineStats, FeatureEngine};
use crate::transport::kafka::{
    BatchPolicy, Inbound, Outbound, Stage, StageMetricNames, StageMetrics, StageSpec, StageTotals, TransportError,
    ensure_topics,
};

/// Rejection kinds of [`crate::features::TickRejected::kind`], pre-created at zero.
const REJECTION_KINDS: [&str; 4] = ["duplicate", "out_of_order", "invalid_tick", "time_out_of_range"];

/// `spikewatch_featurizer_*` metrics.
#[derive(Clone)]
pub struct FeaturizerMetrics {
    /// Ticks consumed, features published, errors by kind, processing latency (stage loop).
    pub stage: StageMetrics,
    pub features_computed: IntCounter,
    pub ticks_rejected: IntCounterVec,
    /// Now minus the receive time of the last processed tick.
    pub consumer_lag_seconds: Gauge,
}

impl FeaturizerMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<FeaturizerMetrics> {
        let stage = StageMetrics::register(
            registry,
            StageMetricNames {
                consumed: "spikewatch_featurizer_ticks_consumed_total",
                produced: "spikewatch_featurizer_features_published_total",
                errors: "spikewatch_featurizer_errors_total",
                processing_seconds: "spikewatch_featurizer_processing_seconds",
            },
        )?;
        let features_computed =
            IntCounter::new("spikewatch_featurizer_features_computed_total", "Feature vectors computed")?;
        let ticks_rejected = IntCounterVec::new(
            Opts::new("spikewatch_featurizer_ticks_rejected_total", "Ticks the feature engine did not use, by kind"),
            &["kind"],
        )?;
        let consumer_lag_seconds = Gauge::new(
            "spikewatch_featurizer_consumer_lag_seconds",
            "Seconds between receiving the last processed tick from the exchange and processing it",
        )?;
        registry.register(Box::new(features_computed.clone()))?;
        registry.register(Box::new(ticks_rejected.clone()))?;
        registry.register(Box::new(consumer_lag_seconds.clone()))?;
        for kind in REJECTION_KINDS {
            ticks_rejected.with_label_values(&[kind]);
        }
        Ok(FeaturizerMetrics { stage, features_computed, ticks_rejected, consumer_lag_seconds })
    }
}

/// The feature engine plus the counting every deployment of it does.
pub struct Featurizer {
    engine: FeatureEngine,
    metrics: FeaturizerMetrics,
}

impl Featurizer {
    pub fn new(config: &FeaturesConfig, metrics: FeaturizerMetrics) -> Featurizer {
        Featurizer { engine: FeatureEngine::new(config), metrics }
    }

    /// The tick's feature vector, or `None` when the engine rejected it (counted by kind).
    pub fn featurize(&mut self, tick: &Tick) -> Option<FeatureVector> {
        match self.engine.update(tick) {
            Ok(vector) => {
                self.metrics.features_computed.inc();
                Some(vector)
            }
            Err(rejected) => {
                self.metrics.ticks_rejected.with_label_values(&[rejected.kind()]).inc();
                tracing::debug!(%rejected, "tick rejected");
                None
            }
        }
    }

    /// Featurizes a batch and records the lag of its last tick.
    pub fn featurize_batch<'a>(&mut self, ticks: impl IntoIterator<Item = &'a Tick>) -> Vec<FeatureVector> {
        let mut last_receive_time = None;
        let vectors = ticks
            .into_iter()
            .filter_map(|tick| {
                last_receive_time = Some(tick.receive_time);
                self.featurize(tick)
            })
            .collect();
        if let Some(received) = last_receive_time {
            let lag = (Utc::now() - received).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            self.metrics.consumer_lag_seconds.set(lag.max(0.0));
        }
        vectors
    }

    pub fn stats(&self) -> EngineStats {
        self.engine.stats()
    }
}

/// `spikewatch featurize`: `ticks.raw` → [`Featurizer`] → `ticks.features`, at least once, until
/// `shutdown`. Creates both topics first when `kafka.create_topics` is set.
pub async fn run_kafka(
    config: &Config,
    metrics: FeaturizerMetrics,
    shutdown: CancellationToken,
) -> Result<StageTotals, TransportError> {
    let kafka = &config.kafka;
    if kafka.create_topics {
        ensure_topics(kafka, &[&kafka.topics.raw, &kafka.topics.features]).await?;
    }
    let spec = StageSpec {
        name: "featurizer",
        group_id: &kafka.featurizer_group_id,
        input_topic: &kafka.topics.raw,
        output_topic: &kafka.topics.features,
        batch: BatchPolicy::from_config(kafka),
    };
    let stage = Stage::new(kafka, spec, metrics.stage.clone())?;
    let mut featurizer = Featurizer::new(&config.features, metrics);
    let totals = stage
        .run(shutdown.cancelled_owned(), |batch: Vec<Inbound<Tick>>| {
            featurizer
                .featurize_batch(batch.iter().map(|record| &record.value))
                .into_iter()
                .map(|vector| Outbound { key: vector.product_id.clone(), value: vector })
                .collect()
        })
        .await?;
    tracing::info!(?totals, engine = ?featurizer.stats(), "featurizer stopped");
    Ok(totals)
}
