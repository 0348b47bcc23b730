//! The featurizer stage: Ticks → FeatureVectors through the one [`FeatureEngine`].
//!
//! [`Featurizer`] is the transform (engine + counting) shared by `spikewatch featurize` (Kafka,
//! [`run_kafka`]) and `spikewatch run` (in-memory links, [`super::local`]). Through Kafka there is
//! one per partition of `ticks.raw` ([`PartitionedFeaturizer`]), and each is rebuilt from the
//! topic before it emits ([`super::rebuild`]), so a restarted featurizer computes the vectors of
//! an uninterrupted one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prometheus::{Gauge, IntCounter, IntCounterVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

use super::rebuild::{RebuildError, Rebuilt, rebuild_partition};
use crate::config::{Config, FeaturesConfig};
use crate::domain::{FeatureVector, Tick};
use crate::features::{EngineStats, FeatureEngine};
use crate::metric_names::featurizer as names;
use crate::transport::kafka::{
    Assignments, BatchPolicy, Inbound, Outbound, Stage, StageMetricNames, StageMetrics, StageSpec, StageTotals,
    TransportError, ensure_topics,
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
    /// Partitions whose windows were rebuilt from `ticks.raw` before emitting.
    pub rebuilds: IntCounter,
    /// Ticks read (without emitting) to rebuild windows.
    pub rebuild_ticks: IntCounter,
}

impl FeaturizerMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<FeaturizerMetrics> {
        let stage = StageMetrics::register(
            registry,
            StageMetricNames {
                consumed: names::TICKS_CONSUMED,
                produced: names::FEATURES_PUBLISHED,
                errors: names::ERRORS,
                processing_seconds: names::PROCESSING_SECONDS,
            },
        )?;
        let features_computed = IntCounter::new(names::FEATURES_COMPUTED, "Feature vectors computed")?;
        let ticks_rejected = IntCounterVec::new(
            Opts::new(names::TICKS_REJECTED, "Ticks the feature engine did not use, by kind"),
            &["kind"],
        )?;
        let consumer_lag_seconds = Gauge::new(
            names::CONSUMER_LAG_SECONDS,
            "Seconds between receiving the last processed tick from the exchange and processing it",
        )?;
        let rebuilds = IntCounter::new(
            names::WINDOW_REBUILDS,
            "Partitions whose feature windows were rebuilt from the input topic before emitting",
        )?;
        let rebuild_ticks = IntCounter::new(
            names::WINDOW_REBUILD_TICKS,
            "Ticks read again, without emitting, to rebuild feature windows",
        )?;
        registry.register(Box::new(features_computed.clone()))?;
        registry.register(Box::new(ticks_rejected.clone()))?;
        registry.register(Box::new(consumer_lag_seconds.clone()))?;
        registry.register(Box::new(rebuilds.clone()))?;
        registry.register(Box::new(rebuild_ticks.clone()))?;
        for kind in REJECTION_KINDS {
            ticks_rejected.with_label_values(&[kind]);
        }
        Ok(FeaturizerMetrics {
            stage,
            features_computed,
            ticks_rejected,
            consumer_lag_seconds,
            rebuilds,
            rebuild_ticks,
        })
    }
}

/// The feature engine plus the counting every deployment of it does.
pub struct Featurizer {
    engine: FeatureEngine,
    metrics: FeaturizerMetrics,
}

impl Featurizer {
    pub fn new(config: &FeaturesConfig, metrics: FeaturizerMetrics) -> Featurizer {
        Featurizer::with_engine(FeatureEngine::new(config), metrics)
    }

    /// Goes on from an engine that already holds windows (a rebuilt one).
    pub fn with_engine(engine: FeatureEngine, metrics: FeaturizerMetrics) -> Featurizer {
        Featurizer { engine, metrics }
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
            record_lag(&self.metrics, received);
        }
        vectors
    }

    pub fn stats(&self) -> EngineStats {
        self.engine.stats()
    }
}

fn record_lag(metrics: &FeaturizerMetrics, received: DateTime<Utc>) {
    let lag = (Utc::now() - received).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
    metrics.consumer_lag_seconds.set(lag.max(0.0));
}

/// The [`Featurizer`] of one input partition and where its windows stand.
struct PartitionState {
    featurizer: Featurizer,
    /// Offset of the next record the windows are ready for.
    next_offset: i64,
    /// [`Assignments::generation`] when the last record was taken.
    generation: u64,
}

/// One [`Featurizer`] per partition of `ticks.raw` (a product's ticks are all on one partition).
///
/// A partition's windows go on only where they stopped: a record at another offset (the
/// partition is new to this process, consumption went back to the committed offset, or another
/// member consumed part of it since a rebalance) first rebuilds them from the topic. Records
/// skipped between two of a batch (not ticks) are no reason to rebuild.
pub struct PartitionedFeaturizer {
    kafka: crate::config::KafkaConfig,
    features: FeaturesConfig,
    topic: String,
    metrics: FeaturizerMetrics,
    assignments: Assignments,
    partitions: HashMap<i32, PartitionState>,
}

impl PartitionedFeaturizer {
    pub fn new(config: &Config, metrics: FeaturizerMetrics, assignments: Assignments) -> PartitionedFeaturizer {
        PartitionedFeaturizer {
            kafka: config.kafka.clone(),
            features: config.features.clone(),
            topic: config.kafka.topics.raw.clone(),
            metrics,
            assignments,
            partitions: HashMap::new(),
        }
    }

    /// The vectors of a batch, each partition's windows rebuilt first where needed.
    pub fn featurize_batch(&mut self, batch: &[Inbound<Tick>]) -> Result<Vec<FeatureVector>, RebuildError> {
        let generation = self.assignments.generation();
        let mut vectors = Vec::with_capacity(batch.len());
        for record in batch {
            let ready = self.partitions.get(&record.partition).is_some_and(|state| {
                record.offset == state.next_offset
                    || (record.offset > state.next_offset && state.generation == generation)
            });
            if !ready {
                let rebuilt = self.rebuild(record.partition, record.offset, record.value.exchange_time)?;
                let featurizer = Featurizer::with_engine(rebuilt.engine, self.metrics.clone());
                self.partitions.insert(record.partition, PartitionState { featurizer, next_offset: 0, generation });
            }
            let Some(state) = self.partitions.get_mut(&record.partition) else { continue };
            state.next_offset = record.offset + 1;
            state.generation = generation;
            vectors.extend(state.featurizer.featurize(&record.value));
        }
        if let Some(last) = batch.last() {
            record_lag(&self.metrics, last.value.receive_time);
        }
        Ok(vectors)
    }

    fn rebuild(&self, partition: i32, resume: i64, first_time: DateTime<Utc>) -> Result<Rebuilt, RebuildError> {
        let rebuilt =
            blocking(|| rebuild_partition(&self.kafka, &self.features, &self.topic, partition, resume, first_time))?;
        self.metrics.rebuilds.inc();
        self.metrics.rebuild_ticks.inc_by(rebuilt.ticks);
        tracing::info!(
            topic = %self.topic,
            partition,
            from_offset = rebuilt.from_offset,
            resume_offset = rebuilt.resume_offset,
            ticks = rebuilt.ticks,
            from_partition_start = rebuilt.from_partition_start,
            seconds = rebuilt.elapsed.as_secs_f64(),
            "feature windows rebuilt"
        );
        Ok(rebuilt)
    }

    /// What the engines of every partition did, added up.
    pub fn stats(&self) -> EngineStats {
        self.partitions.values().map(|state| state.featurizer.stats()).fold(EngineStats::default(), |a, b| {
            EngineStats {
                accepted: a.accepted + b.accepted,
                late_accepted: a.late_accepted + b.late_accepted,
                duplicates: a.duplicates + b.duplicates,
                out_of_order: a.out_of_order + b.out_of_order,
                invalid: a.invalid + b.invalid,
                resets: a.resets + b.resets,
            }
        })
    }
}

/// Runs blocking work on the current thread, telling a multi-threaded runtime to move its other
/// tasks elsewhere meanwhile.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
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
    let mut featurizer = PartitionedFeaturizer::new(config, metrics, stage.assignments());
    let totals = stage
        .try_run(shutdown.cancelled_owned(), |batch: Vec<Inbound<Tick>>| {
            Ok::<_, RebuildError>(
                featurizer
                    .featurize_batch(&batch)?
                    .into_iter()
                    .map(|vector| Outbound { key: vector.product_id.clone(), value: vector })
                    .collect(),
            )
        })
        .await?;
    tracing::info!(?totals, engine = ?featurizer.stats(), "featurizer stopped");
    Ok(totals)
}
