//! The predictor stage: FeatureVectors → Predictions through the served model.
//!
//! [`Predictor`] is the transform (model + counting) shared by `spikewatch predict` (Kafka,
//! [`run_kafka`], at least once through the generic stage loop) and the predict stage of
//! `spikewatch run` (in-memory links, through [`LocalPredictor`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus::{Gauge, IntCounter, Registry};
use tokio_util::sync::CancellationToken;

use super::local::LocalPredictor;
use crate::config::Config;
use crate::domain::{FEATURE_SET_VERSION, Feature, FeatureVector, Features, PREDICTION_SCHEMA, Prediction};
use crate::metric_names::predictor as names;
use crate::model::alerts::TrailingAlerts;
use crate::model::{ModelHandle, check_finite};
use crate::quality::{DriftMonitor, OnlineConfig, OnlineEvaluator, QualityMetrics};
use crate::transport::kafka::{
    BatchPolicy, Inbound, Outbound, Stage, StageMetricNames, StageMetrics, StageSpec, StageTotals, TransportError,
    ensure_topics,
};

/// Error types of `volatility_consumer_errors_total` added by the predictor to the stage loop's
/// (`deserialize`, `produce`, `commit`, `consume`).
pub mod error_type {
    /// A feature is NaN or infinite: no prediction for that vector.
    pub const INVALID_FEATURES: &str = "invalid_features";
    /// The vector was computed by a different feature set than the model was trained on.
    pub const FEATURE_SET_MISMATCH: &str = "feature_set_mismatch";
    /// The model failed on a batch (every vector of the batch is counted).
    pub const INFERENCE: &str = "inference";
    pub const ALL: [&str; 3] = [INVALID_FEATURES, FEATURE_SET_MISMATCH, INFERENCE];
}

/// The predictor's metrics, with the names of the original system (docs/architecture.md).
#[derive(Clone)]
pub struct PredictorMetrics {
    /// `volatility_consumer_messages_processed_total`, `volatility_consumer_predictions_made_total`,
    /// `volatility_consumer_errors_total{error_type}`, `volatility_consumer_processing_seconds`.
    pub stage: StageMetrics,
    /// `volatility_consumer_lag_seconds`: now − receive time of the newest feature vector
    /// consumed, as the featurizer measures its own lag. Receive time, not exchange time: a
    /// replayed recording's exchange times are months old, and the lag is about this pipeline
    /// keeping up, not about the exchange's clock.
    pub lag_seconds: Gauge,
    /// `volatility_consumer_processing_rate`: messages processed per second over the last second.
    pub processing_rate: Gauge,
    /// Predictions made by this process, also outside Kafka (local run).
    pub scored: IntCounter,
    /// Online quality of the predictions and drift of the features.
    pub quality: QualityMetrics,
}

impl PredictorMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<PredictorMetrics> {
        let stage = StageMetrics::register(
            registry,
            StageMetricNames {
                consumed: names::MESSAGES_PROCESSED,
                produced: names::PREDICTIONS_MADE,
                errors: names::ERRORS,
                processing_seconds: names::PROCESSING_SECONDS,
            },
        )?;
        for kind in error_type::ALL {
            stage.errors.with_label_values(&[kind]);
        }
        let lag_seconds = Gauge::new(
            names::LAG_SECONDS,
            "Seconds between the event time of the latest scored feature vector and now",
        )?;
        let processing_rate =
            Gauge::new(names::PROCESSING_RATE, "Feature messages processed per second (last second)")?;
        let scored = IntCounter::new(names::SCORED, "Feature vectors scored by the model")?;
        registry.register(Box::new(lag_seconds.clone()))?;
        registry.register(Box::new(processing_rate.clone()))?;
        registry.register(Box::new(scored.clone()))?;
        let quality = QualityMetrics::register(registry)?;
        Ok(PredictorMetrics { stage, lag_seconds, processing_rate, scored, quality })
    }

    fn error(&self, kind: &str, n: u64) {
        self.stage.errors.with_label_values(&[kind]).inc_by(n);
    }
}

/// Rows of the drift window, and how often its PSI is exported.
const DRIFT_WINDOW: usize = 20_000;
const DRIFT_EVERY: u64 = 1_000;

/// What the predictor measures of its own predictions: their outcomes and the drift.
struct Judge {
    online: OnlineEvaluator,
    drift: Option<(DriftMonitor, String)>,
    scored: u64,
    metrics: QualityMetrics,
}

/// The served model plus the counting and judging every deployment of it does.
pub struct Predictor {
    model: ModelHandle,
    metrics: PredictorMetrics,
    judge: Mutex<Judge>,
    /// Each product's trailing alert threshold (`model::alerts`).
    alerts: Mutex<TrailingAlerts>,
}

impl Predictor {
    pub fn new(model: ModelHandle, metrics: PredictorMetrics) -> Predictor {
        let judge = Judge {
            online: OnlineEvaluator::new(OnlineConfig::default()),
            drift: None,
            scored: 0,
            metrics: metrics.quality.clone(),
        };
        metrics.quality.init_psi();
        Predictor { model, metrics, judge: Mutex::new(judge), alerts: Mutex::new(TrailingAlerts::default()) }
    }

    /// Feeds the online evaluation and the drift with a scored batch: `rows[i]` are the
    /// features `predictions[i]` was made on. Each prediction joins its product's stream right
    /// after its own point, as the evaluator needs the point its window starts from.
    fn judge(&self, rows: &[Features], predictions: &[Prediction]) {
        let mut judge = self.judge.lock().unwrap_or_else(|p| p.into_inner());
        let judge = &mut *judge;
        // The reference follows the loaded model (a reload may bring another one).
        let reference = self.model.reference();
        let same = match (&judge.drift, &reference) {
            (Some((_, version)), Some(r)) => *version == r.model_version,
            (None, None) => true,
            _ => false,
        };
        if !same {
            judge.drift = reference.map(|r| (DriftMonitor::new(&r, DRIFT_WINDOW), r.model_version.clone()));
            match &judge.drift {
                Some((drift, _)) => judge.metrics.set_psi_limits(&drift.limits()),
                None => judge.metrics.init_psi(),
            }
        }
        let mut touched: Vec<&str> = Vec::new();
        for (features, prediction) in rows.iter().zip(predictions) {
            let Some(time) = prediction.event_time.timestamp_nanos_opt() else { continue };
            let outcomes = judge.online.observe_point(&prediction.product_id, time, features[Feature::Midprice]);
            if !outcomes.is_empty() {
                judge.metrics.labelled(&prediction.product_id, &outcomes);
                if !touched.contains(&prediction.product_id.as_str()) {
                    touched.push(&prediction.product_id);
                }
            }
            judge.online.observe_prediction(prediction);
            if let Some((drift, _)) = &mut judge.drift {
                drift.observe(features);
            }
        }
        if !touched.is_empty() {
            for (product, variant, quality) in judge.online.quality() {
                if touched.contains(&product.as_str()) {
                    judge.metrics.set(&product, variant, &quality);
                }
            }
        }
        let before = judge.scored;
        judge.scored += rows.len() as u64;
        if judge.scored / DRIFT_EVERY != before / DRIFT_EVERY
            && let Some((drift, _)) = &judge.drift
        {
            judge.metrics.set_psi(&drift.psi());
        }
    }

    pub fn model(&self) -> &ModelHandle {
        &self.model
    }

    /// Scores a micro-batch; `received[i]` is when `vectors[i]` reached this process. Vectors
    /// that cannot be scored are counted by error type and get no prediction.
    pub fn predict_batch(&self, vectors: &[FeatureVector], received: &[Instant]) -> Vec<Prediction> {
        // One model for the whole batch, even if a reload swaps it meanwhile.
        let model = self.model.current();
        let info = model.info();
        let mut scorable: Vec<usize> = Vec::with_capacity(vectors.len());
        let mut rows: Vec<Features> = Vec::with_capacity(vectors.len());
        for (i, vector) in vectors.iter().enumerate() {
            if vector.feature_set != FEATURE_SET_VERSION {
                self.metrics.error(error_type::FEATURE_SET_MISMATCH, 1);
                tracing::warn!(product = %vector.product_id, feature_set = %vector.feature_set, expected = FEATURE_SET_VERSION, "feature set mismatch: not scored");
                continue;
            }
            if let Err(err) = check_finite(std::slice::from_ref(&vector.features)) {
                self.metrics.error(error_type::INVALID_FEATURES, 1);
                tracing::warn!(product = %vector.product_id, %err, "invalid features: not scored");
                continue;
            }
            scorable.push(i);
            rows.push(vector.features);
        }
        if let Some(latest) = vectors.iter().map(|v| v.receive_time).max() {
            let lag = (Utc::now() - latest).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            self.metrics.lag_seconds.set(lag.max(0.0));
        }
        if rows.is_empty() {
            return Vec::new();
        }
        let probabilities = match model.predict_proba(&rows) {
            Ok(p) => p,
            Err(err) => {
                self.metrics.error(error_type::INFERENCE, rows.len() as u64);
                tracing::error!(%err, rows = rows.len(), "inference failed: batch not scored");
                return Vec::new();
            }
        };
        self.metrics.scored.inc_by(probabilities.len() as u64);
        let now = Instant::now();
        let mut alerts = self.alerts.lock().unwrap_or_else(|p| p.into_inner());
        let predictions: Vec<Prediction> = scorable
            .into_iter()
            .zip(probabilities)
            .map(|(i, probability)| {
                let vector = &vectors[i];
                let since = received.get(i).copied().unwrap_or(now);
                let second = crate::features::grid::grid_second(vector.event_time.timestamp_nanos_opt().unwrap_or(0));
                // A threshold set in the configuration is the user's: it holds. Otherwise the
                // product's trailing quantile decides.
                let threshold = match self.model.config().threshold {
                    Some(fixed) => fixed,
                    None => alerts.threshold(&vector.product_id, second, probability, info),
                };
                Prediction {
                    schema: PREDICTION_SCHEMA,
                    product_id: vector.product_id.clone(),
                    event_time: vector.event_time,
                    probability,
                    prediction: u8::from(probability >= threshold),
                    threshold,
                    model_name: info.name.clone(),
                    model_version: info.version.clone(),
                    model_variant: info.variant,
                    processing_latency_seconds: now.duration_since(since).as_secs_f64(),
                    midprice: Some(vector.features[Feature::Midprice]),
                }
            })
            .collect();
        drop(alerts);
        self.judge(&rows, &predictions);
        predictions
    }
}

impl LocalPredictor for Predictor {
    fn predict(&mut self, batch: &[FeatureVector]) -> Vec<Prediction> {
        let now = Instant::now();
        self.predict_batch(batch, &vec![now; batch.len()])
    }
}

/// The predict stage of `spikewatch run`: the configured model, or `None` (with a warning on
/// stderr) when it cannot be loaded, so that a local run without ONNX Runtime still shows the
/// features.
pub async fn local_predictor(config: &Config) -> Option<Box<dyn LocalPredictor>> {
    local_model(config)
        .await
        .inspect_err(|reason| tracing::warn!("predictions disabled: {reason}"))
        .ok()
        .and_then(local_predictor_for)
}

/// The configured model of a local run, or why it cannot be loaded (the caller decides whether
/// the run goes on without predictions or stops).
pub async fn local_model(config: &Config) -> Result<ModelHandle, String> {
    ModelHandle::load(&config.model).await.map_err(|err| err.to_string())
}

/// The predict stage of a local run over `model` (`None`, with a warning, if its metrics cannot
/// be registered).
pub fn local_predictor_for(model: ModelHandle) -> Option<Box<dyn LocalPredictor>> {
    let metrics = match PredictorMetrics::register(&Registry::new()) {
        Ok(metrics) => metrics,
        Err(err) => {
            tracing::warn!("predictions disabled: {err}");
            return None;
        }
    };
    let info = model.current().info().clone();
    tracing::info!(model = %info.name, version = %info.version, variant = info.variant.as_str(), "predict stage enabled");
    Some(Box::new(Predictor::new(model, metrics)))
}

/// The micro-batch policy of the predictor: `model.max_batch`, `model.max_batch_wait_ms`.
pub fn batch_policy(config: &Config) -> BatchPolicy {
    BatchPolicy {
        max_records: config.model.max_batch.max(1),
        max_wait: Duration::from_millis(config.model.max_batch_wait_ms),
    }
}

/// Updates `volatility_consumer_processing_rate` once a second from the processed counter.
fn spawn_rate_meter(metrics: &PredictorMetrics, shutdown: CancellationToken) {
    let processed = metrics.stage.consumed.clone();
    let rate = metrics.processing_rate.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let (mut last_count, mut last_time) = (processed.get(), Instant::now());
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    let (count, now) = (processed.get(), Instant::now());
                    let seconds = now.duration_since(last_time).as_secs_f64();
                    if seconds > 0.0 {
                        rate.set(count.saturating_sub(last_count) as f64 / seconds);
                    }
                    (last_count, last_time) = (count, now);
                }
            }
        }
    });
}

/// `spikewatch predict`: `ticks.features` → [`Predictor`] → `ticks.predictions`, at least once,
/// until `shutdown`. Creates both topics first when `kafka.create_topics` is set.
pub async fn run_kafka(
    config: &Config,
    model: ModelHandle,
    metrics: PredictorMetrics,
    shutdown: CancellationToken,
) -> Result<StageTotals, TransportError> {
    let kafka = &config.kafka;
    if kafka.create_topics {
        ensure_topics(kafka, &[&kafka.topics.features, &kafka.topics.predictions]).await?;
    }
    let spec = StageSpec {
        name: "predictor",
        group_id: &kafka.predictor_group_id,
        input_topic: &kafka.topics.features,
        output_topic: &kafka.topics.predictions,
        batch: batch_policy(config),
    };
    let stage = Stage::new(kafka, spec, metrics.stage.clone())?;
    spawn_rate_meter(&metrics, shutdown.child_token());
    let predictor = Predictor::new(model, metrics);
    let totals = stage
        .run(shutdown.cancelled_owned(), |batch: Vec<Inbound<FeatureVector>>| {
            let received: Vec<Instant> = batch.iter().map(|r| r.received).collect();
            let vectors: Vec<FeatureVector> = batch.into_iter().map(|r| r.value).collect();
            predictor
                .predict_batch(&vectors, &received)
                .into_iter()
                .map(|p| Outbound { key: p.product_id.clone(), value: p })
                .collect()
        })
        .await?;
    tracing::info!(?totals, "predictor stopped");
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::domain::{FEATURE_VECTOR_SCHEMA, ModelVariant};
    use crate::model::baseline::persistence_for_tests;
    use std::sync::Arc;

    fn predictor() -> (Predictor, Registry) {
        let baseline = persistence_for_tests("7");
        let handle =
            ModelHandle::from_models(ModelConfig::default(), None, Some(Arc::new(baseline)), ModelVariant::Baseline)
                .unwrap();
        let registry = Registry::new();
        (Predictor::new(handle, PredictorMetrics::register(&registry).unwrap()), registry)
    }

    /// A vector whose past minute had realized variance `rv_60s` per second.
    fn vector(product: &str, rv_60s: f64) -> FeatureVector {
        FeatureVector {
            schema: FEATURE_VECTOR_SCHEMA,
            product_id: product.into(),
            event_time: Utc::now(),
            receive_time: Utc::now(),
            feature_set: FEATURE_SET_VERSION.into(),
            features: Features::default().with(Feature::Rv60s, rv_60s),
        }
    }

    #[test]
    fn scores_every_valid_vector_and_counts_the_rest() {
        let (mut predictor, registry) = predictor();
        let mut stale = vector("ETH-USD", 1.0);
        stale.feature_set = "v0".into();
        let batch = [vector("BTC-USD", 1.0), vector("BTC-USD", f64::NAN), stale, vector("ETH-USD", 1e-12)];
        let predictions = predictor.predict(&batch);
        assert_eq!(predictions.len(), 2);
        assert_eq!(predictions[0].product_id, "BTC-USD");
        assert_eq!(predictions[0].probability, 0.5, "ln 1 = 0: the last knot");
        assert_eq!(predictions[0].prediction, 1);
        assert_eq!(predictions[1].prediction, 0);
        assert_eq!(predictions[1].model_variant, ModelVariant::Baseline);
        assert_eq!(predictions[1].model_version, "7");
        let text = crate::telemetry::server::render(&registry);
        assert!(text.contains("volatility_consumer_errors_total{error_type=\"invalid_features\"} 1"), "{text}");
        assert!(text.contains("volatility_consumer_errors_total{error_type=\"feature_set_mismatch\"} 1"), "{text}");
        for name in [
            "volatility_consumer_messages_processed_total",
            "volatility_consumer_predictions_made_total",
            "volatility_consumer_lag_seconds",
            "volatility_consumer_processing_seconds",
            "volatility_consumer_processing_rate",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }

    #[test]
    fn judges_its_predictions_once_their_minute_has_passed() {
        let (mut predictor, registry) = predictor();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/btc-usd-2025-11-30.csv.gz");
        let mut engine = crate::features::FeatureEngine::new(&crate::config::FeaturesConfig::default());
        let vectors: Vec<FeatureVector> = crate::sources::recording::open(path)
            .unwrap()
            .filter_map(|tick| engine.update(&tick.unwrap()).ok())
            .collect();
        let mut predicted = 0;
        for batch in vectors.chunks(64) {
            predicted += predictor.predict(batch).len();
        }
        assert!(predicted > 7_000, "{predicted}");
        let text = crate::telemetry::server::render(&registry);
        let labelled: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("volatility_online_labelled_total{product_id=\"BTC-USD\",variant=\"baseline\"} ")
            })
            .unwrap_or_else(|| panic!("no labelled count:\n{text}"))
            .parse()
            .unwrap();
        // One outcome per second of the 27-minute recording, from its second minute to its
        // second-to-last, the first two minutes of them without a reference yet.
        assert!((1_250.0..1_450.0).contains(&labelled), "{labelled} seconds judged");
        for gauge in ["volatility_online_alert_recall", "volatility_online_brier", "volatility_online_positive_rate"] {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{gauge}{{product_id=\"BTC-USD\"")))
                .unwrap_or_else(|| panic!("{gauge}"));
            let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!((0.0..=1.0).contains(&value), "{line}");
        }
        // A baseline has no training reference: the drift series exist, undefined.
        assert!(text.contains("volatility_feature_psi{feature=\"volatility\"} NaN"), "{text}");
    }
}
