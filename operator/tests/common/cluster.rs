//! The mock cluster the reconciler tests run against: a mock Kubernetes API server holding one
//! pipeline (see `spikewatch_operator::fixtures`), a fake broker, and the operator's context.
//! Tests play the other controllers (the Deployment controller, Strimzi, kubectl) through
//! [`Cluster::server`].

use std::sync::Arc;

use kube::runtime::controller::Action;
use serde_json::Value;
use spikewatch_operator::automation::RETRY_ANNOTATION;
use spikewatch_operator::controller::{Context, FINALIZER, reconcile};
use spikewatch_operator::crd::{ConditionType, RollbackState, VolatilityPipeline, Workload, find_condition};
use spikewatch_operator::discovery::Capabilities;
use spikewatch_operator::fixtures::{ApiServer, FakeBroker, path};

/// `vp` with the operator's finalizer, as after its first reconcile.
pub fn finalized(mut vp: VolatilityPipeline) -> VolatilityPipeline {
    vp.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    vp
}

pub struct Cluster {
    pub server: ApiServer,
    pub broker: Arc<FakeBroker>,
    pub ctx: Arc<Context>,
}

impl Cluster {
    /// An API server holding `vp`, a broker, and a cluster without the optional APIs; lag
    /// measurements fail.
    pub fn with(vp: &VolatilityPipeline, broker: Arc<FakeBroker>) -> Cluster {
        Cluster::serving(vp, broker, Capabilities::default())
    }

    /// [`Cluster::with`] on a cluster serving `capabilities` (Prometheus operator, Strimzi, KEDA).
    pub fn serving(vp: &VolatilityPipeline, broker: Arc<FakeBroker>, capabilities: Capabilities) -> Cluster {
        let (client, server) = ApiServer::start();
        server.insert_pipeline(vp);
        let ctx = Context::test(client, broker.clone(), capabilities);
        Cluster { server, broker, ctx }
    }

    /// A reachable broker that also answers lag measurements with what a test sets
    /// ([`FakeBroker::set_lag`]).
    pub fn measuring_lag(vp: &VolatilityPipeline, capabilities: Capabilities) -> Cluster {
        let (client, server) = ApiServer::start();
        server.insert_pipeline(vp);
        let broker = FakeBroker::reachable();
        let ctx = Context::test_with_lag(client, broker.clone(), broker.clone(), capabilities);
        Cluster { server, broker, ctx }
    }

    /// The pipeline as the API server holds it now.
    pub fn pipeline(&self) -> VolatilityPipeline {
        self.server.pipeline()
    }

    /// One reconcile of the pipeline as the API server holds it now (as a watch event would bring it).
    pub async fn try_reconcile(&self) -> Result<Action, spikewatch_operator::Error> {
        reconcile(Arc::new(self.pipeline()), self.ctx.clone()).await
    }

    /// One reconcile that must succeed.
    pub async fn reconcile(&self) {
        self.try_reconcile().await.expect("reconcile");
    }

    /// Reconciles until the pipeline is Ready, playing the Deployment controller in between;
    /// then forgets the requests seen so far.
    pub async fn converge(&self) {
        self.try_reconcile().await.expect("first apply");
        self.server.mark_deployments_ready();
        self.try_reconcile().await.expect("status catches up");
        self.server.forget_requests();
    }

    /// `(status, reason)` of a condition of the pipeline's status.
    pub fn condition(&self, type_: ConditionType) -> (String, String) {
        let status = self.pipeline().status.expect("status written");
        let c = find_condition(&status.conditions, type_).unwrap_or_else(|| panic!("{type_:?} condition"));
        (c.status.clone(), c.reason.clone())
    }

    /// Paths of the Deployments the API server holds.
    pub fn deployments(&self) -> Vec<String> {
        self.server.paths("/deployments/")
    }

    /// The Deployment of `workload`.
    pub fn deployment(&self, workload: Workload) -> Value {
        self.server.get(&path("apps/v1", "deployments", &format!("test-{}", workload.component()))).expect("deployment")
    }

    /// `spec.replicas` of the Deployment of `workload`.
    pub fn replicas(&self, workload: Workload) -> i64 {
        self.deployment(workload)["spec"]["replicas"].as_i64().expect("replicas")
    }

    /// The model variant the Deployment of `workload` starts new pods on.
    pub fn rendered_variant(&self, workload: Workload) -> String {
        self.deployment(workload)["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .and_then(|env| env.iter().find(|e| e["name"] == "SPIKEWATCH_MODEL_VARIANT"))
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// The rollback state the status records.
    pub fn rollback_state(&self) -> RollbackState {
        self.pipeline().status.and_then(|s| s.rollback).map(|r| r.state).unwrap_or_default()
    }

    /// Annotates the pipeline to retry the ML model after a rollback.
    pub fn annotate_retry(&self, value: &str) {
        let mut vp = self.pipeline();
        vp.metadata.annotations.get_or_insert_default().insert(RETRY_ANNOTATION.into(), value.into());
        self.server.insert_pipeline(&vp);
    }
}
