//! The served model: both variants of one source, swapped atomically.
//!
//! Readers call [`ModelHandle::current`] per request or batch and keep the returned `Arc` for
//! its duration, so a reload or variant switch never interrupts a prediction in flight: the old
//! model is dropped when its last reader finishes.
//!
//! When the configured variant is `ml` and the ML model cannot be loaded (no ONNX Runtime, a
//! broken export), the baseline answers in its place and the handle says why
//! ([`ModelHandle::fallback`]), so every place a user looks can show it; with
//! `model.require_ml` the load fails instead.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{ArtifactSource, Fallback, Model, ModelError, ModelInfo, Reference, load_variant};
use crate::config::ModelConfig;
use crate::domain::ModelVariant;

/// The loaded variants of one source and which one answers.
struct Loaded {
    ml: Option<Arc<dyn Model>>,
    baseline: Option<Arc<dyn Model>>,
    active: ModelVariant,
    /// The training rows' feature reference, when the source has one.
    reference: Option<Arc<Reference>>,
    /// Why the baseline answers although `ml` was asked for (the ML model could not be loaded).
    fallback: Option<Arc<Fallback>>,
}

impl Loaded {
    fn get(&self, variant: ModelVariant) -> Option<&Arc<dyn Model>> {
        match variant {
            ModelVariant::Ml => self.ml.as_ref(),
            ModelVariant::Baseline => self.baseline.as_ref(),
        }
    }

    fn active(&self) -> &Arc<dyn Model> {
        // Invariant (checked wherever a `Loaded` is built): the active variant is loaded.
        self.get(self.active).expect("active variant is loaded")
    }
}

struct Inner {
    config: ModelConfig,
    state: ArcSwap<Loaded>,
    /// Serializes reloads so that two concurrent ones cannot interleave their swaps.
    reload_lock: tokio::sync::Mutex<()>,
}

/// Cheap to clone; every clone sees the same model.
#[derive(Clone)]
pub struct ModelHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHandle")
            .field("source", &self.inner.config.source)
            .field("current", self.current().info())
            .finish()
    }
}

/// Loads both variants from `config.source`; the requested one must load, the other may be
/// absent (logged), in which case switching to it fails. An `ml` that cannot be loaded is
/// replaced by the baseline unless `config.require_ml`.
async fn load_both(config: &ModelConfig, requested: ModelVariant) -> Result<Loaded, ModelError> {
    let source = ArtifactSource::parse(&config.source, config.mlflow_tracking_uri.as_deref())?;
    let fetched = source.fetch(&[requested]).await?;
    let threshold = config.threshold;
    let require_ml = config.require_ml;
    // Building ONNX Runtime sessions is blocking work.
    let loaded = tokio::task::spawn_blocking(move || {
        let ml = load_variant(&fetched, ModelVariant::Ml, threshold);
        let baseline = load_variant(&fetched, ModelVariant::Baseline, threshold);
        let (ml, baseline, active, fallback) = choose(requested, require_ml, ml, baseline)?;
        // Optional: without it, requests must carry every feature and drift is not measured.
        let reference = match fetched.reference.as_deref().map(Reference::load) {
            Some(Ok(reference)) => Some(Arc::new(reference)),
            Some(Err(err)) => {
                tracing::warn!(%err, "feature reference unusable; missing request fields cannot be filled in");
                None
            }
            None => None,
        };
        Ok::<_, ModelError>(Loaded { ml, baseline, active, reference, fallback })
    })
    .await
    .map_err(|e| ModelError::load(&config.source, format!("loader task failed: {e}")))??;
    Ok(loaded)
}

type Variants = (Option<Arc<dyn Model>>, Option<Arc<dyn Model>>, ModelVariant, Option<Arc<Fallback>>);

/// Which variant answers, given what loaded: the requested one; the baseline in place of an `ml`
/// that failed (unless `require_ml`), with the reason; an error when neither can answer.
fn choose(
    requested: ModelVariant,
    require_ml: bool,
    ml: Result<Arc<dyn Model>, ModelError>,
    baseline: Result<Arc<dyn Model>, ModelError>,
) -> Result<Variants, ModelError> {
    let other_unavailable = |variant: ModelVariant, err: &ModelError| {
        tracing::warn!(variant = variant.as_str(), %err, "model variant unavailable; switching to it will fail");
    };
    match (requested, ml, baseline) {
        (ModelVariant::Baseline, ml, Ok(baseline)) => {
            let ml = ml.inspect_err(|err| other_unavailable(ModelVariant::Ml, err)).ok();
            Ok((ml, Some(baseline), ModelVariant::Baseline, None))
        }
        (ModelVariant::Baseline, _, Err(err)) => Err(err),
        (ModelVariant::Ml, Ok(ml), baseline) => {
            let baseline = baseline.inspect_err(|err| other_unavailable(ModelVariant::Baseline, err)).ok();
            Ok((Some(ml), baseline, ModelVariant::Ml, None))
        }
        (ModelVariant::Ml, Err(err), _) if require_ml => Err(ModelError::MlRequired(err.to_string())),
        (ModelVariant::Ml, Err(err), Ok(baseline)) => {
            let fallback = Fallback::new(&err, super::onnx::environment().is_ok());
            tracing::warn!(reason = fallback.reason.as_str(), detail = %fallback.detail, "serving the baseline in place of the ML model (set model.require_ml to stop instead)");
            Ok((None, Some(baseline), ModelVariant::Baseline, Some(Arc::new(fallback))))
        }
        (ModelVariant::Ml, Err(err), Err(baseline_err)) => Err(ModelError::load(
            "both variants",
            format!("{err}; the baseline could not be loaded either: {baseline_err}"),
        )),
    }
}

impl ModelHandle {
    /// Loads `config.source` with `config.variant` active.
    pub async fn load(config: &ModelConfig) -> Result<Self, ModelError> {
        let loaded = load_both(config, config.variant).await?;
        Ok(ModelHandle {
            inner: Arc::new(Inner {
                config: config.clone(),
                state: ArcSwap::from_pointee(loaded),
                reload_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// A handle over already loaded models (tests, benches). `active` must be one of them.
    pub fn from_models(
        config: ModelConfig,
        ml: Option<Arc<dyn Model>>,
        baseline: Option<Arc<dyn Model>>,
        active: ModelVariant,
    ) -> Result<Self, ModelError> {
        let loaded = Loaded { ml, baseline, active, reference: None, fallback: None };
        if loaded.get(active).is_none() {
            return Err(ModelError::load(&config.source, format!("variant {} is not loaded", active.as_str())));
        }
        Ok(ModelHandle {
            inner: Arc::new(Inner {
                config,
                state: ArcSwap::from_pointee(loaded),
                reload_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The model answering now. Keep the `Arc` for the duration of one request or batch.
    pub fn current(&self) -> Arc<dyn Model> {
        self.inner.state.load().active().clone()
    }

    /// The training rows' feature reference of the loaded source, if it has one.
    pub fn reference(&self) -> Option<Arc<Reference>> {
        self.inner.state.load().reference.clone()
    }

    pub fn variant(&self) -> ModelVariant {
        self.inner.state.load().active
    }

    /// Why the baseline answers in place of the configured ML model, when it does.
    pub fn fallback(&self) -> Option<Arc<Fallback>> {
        self.inner.state.load().fallback.clone()
    }

    /// Which variants are loaded (and can be switched to).
    pub fn available(&self) -> Vec<ModelVariant> {
        let state = self.inner.state.load();
        [ModelVariant::Ml, ModelVariant::Baseline].into_iter().filter(|&v| state.get(v).is_some()).collect()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.inner.config
    }

    /// Re-fetches the configured source (e.g. a moved registry alias) and swaps in the new
    /// models, keeping the active variant (or trying `ml` again, when the baseline answers in its
    /// place). On error the current models keep serving.
    pub async fn reload(&self) -> Result<ModelInfo, ModelError> {
        let _guard = self.inner.reload_lock.lock().await;
        let active = match self.fallback() {
            Some(_) => ModelVariant::Ml,
            None => self.variant(),
        };
        let loaded = load_both(&self.inner.config, active).await?;
        let info = loaded.active().info().clone();
        self.inner.state.store(Arc::new(loaded));
        tracing::info!(model = info.name, version = info.version, variant = active.as_str(), "model reloaded");
        Ok(info)
    }

    /// Switches the answering variant atomically (the operator's rollback uses this).
    pub fn set_variant(&self, variant: ModelVariant) -> Result<ModelInfo, ModelError> {
        let mut result = None;
        self.inner.state.rcu(|state| match state.get(variant) {
            Some(model) => {
                result = Some(Ok(model.info().clone()));
                Arc::new(Loaded {
                    ml: state.ml.clone(),
                    baseline: state.baseline.clone(),
                    active: variant,
                    reference: state.reference.clone(),
                    // Asked for: no longer a fallback.
                    fallback: None,
                })
            }
            None => {
                result = Some(Err(ModelError::load(
                    &self.inner.config.source,
                    format!("variant {} is not available from this source", variant.as_str()),
                )));
                state.clone()
            }
        });
        let info =
            result.unwrap_or_else(|| Err(ModelError::load(&self.inner.config.source, "variant switch not applied")))?;
        tracing::info!(variant = variant.as_str(), model = info.name, "model variant switched");
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::baseline::{persistence_for_tests, persistence_params_for_tests};

    fn baseline(version: &str) -> Arc<dyn Model> {
        Arc::new(persistence_for_tests(version))
    }

    #[test]
    fn switching_to_a_missing_variant_fails_and_keeps_serving() {
        let handle =
            ModelHandle::from_models(ModelConfig::default(), None, Some(baseline("1")), ModelVariant::Baseline)
                .unwrap();
        assert!(handle.set_variant(ModelVariant::Ml).is_err());
        assert_eq!(handle.variant(), ModelVariant::Baseline);
        assert_eq!(handle.current().info().version, "1");
        assert_eq!(handle.available(), [ModelVariant::Baseline]);
        assert!(ModelHandle::from_models(ModelConfig::default(), None, Some(baseline("1")), ModelVariant::Ml).is_err());
    }

    #[tokio::test]
    async fn an_ml_model_that_cannot_load_is_replaced_by_the_baseline_unless_required() {
        let dir = tempfile::tempdir().unwrap();
        let params = serde_json::to_string(&persistence_params_for_tests("b-1")).unwrap();
        std::fs::write(dir.path().join("baseline.json"), params).unwrap();
        // A model.onnx that is not a model: the ML model cannot load (a source without the file
        // at all is a mistake of the deployment, refused whatever `require_ml` says).
        std::fs::write(dir.path().join("model.onnx"), b"not a model").unwrap();
        let config = ModelConfig {
            variant: ModelVariant::Ml,
            source: dir.path().display().to_string(),
            ..ModelConfig::default()
        };
        let handle = ModelHandle::load(&config).await.unwrap();
        assert_eq!(handle.variant(), ModelVariant::Baseline);
        let fallback = handle.fallback().expect("the fallback is reported");
        assert!(fallback.detail.contains("cannot load model"), "{fallback}");
        // Choosing the baseline is not a fallback.
        handle.set_variant(ModelVariant::Baseline).unwrap();
        assert!(handle.fallback().is_none());

        let required = ModelConfig { require_ml: true, ..config.clone() };
        let err = ModelHandle::load(&required).await.unwrap_err();
        assert!(matches!(err, ModelError::MlRequired(_)), "{err}");
        // `require_ml` is about `ml`: a baseline process starts as ever (a rollback never stops one).
        let baseline = ModelConfig { variant: ModelVariant::Baseline, ..required };
        assert!(ModelHandle::load(&baseline).await.unwrap().fallback().is_none());
    }

    #[tokio::test]
    async fn reload_swaps_in_the_new_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let write = |version: &str| {
            let params = serde_json::to_string(&persistence_params_for_tests(version)).unwrap();
            std::fs::write(dir.path().join("baseline.json"), params).unwrap();
        };
        write("1");
        let config = ModelConfig {
            variant: ModelVariant::Baseline,
            source: dir.path().display().to_string(),
            ..ModelConfig::default()
        };
        let handle = ModelHandle::load(&config).await.unwrap();
        let before = handle.current();
        write("2");
        let info = handle.reload().await.unwrap();
        assert_eq!(info.version, "2");
        assert_eq!(handle.current().info().version, "2");
        assert_eq!(before.info().version, "1", "a reader keeps the model it started with");
    }
}
