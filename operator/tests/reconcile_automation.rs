//! The automation's side of the reconciler against the mock API server: who owns the
//! predictor's replicas, how a rollback decision is rendered and released, the admin token
//! Secret, KEDA mode, and the autoscaler taking its replicas back. (Decisions themselves are
//! table-tested next to their code; real components in `rollback_real_components.rs` and
//! `consumer_lag.rs`.)

mod common;

use serde_json::{Value, json};
use spikewatch_operator::crd::{ConditionType, Phase, RollbackState, RollbackStatus, Workload};
use spikewatch_operator::discovery::Capabilities;
use spikewatch_operator::fixtures::{path, pipeline_from};

use common::cluster::{Cluster, finalized};

/// A cluster holding the finalized pipeline of `spec`, whose broker measures lag.
fn with_spec(spec: Value, capabilities: Capabilities) -> Cluster {
    Cluster::measuring_lag(&finalized(pipeline_from(spec)), capabilities)
}

/// Plays an earlier reconcile that decided a rollback.
fn record_rollback(cluster: &Cluster) {
    let mut vp = cluster.pipeline();
    vp.status.get_or_insert_default().rollback = Some(RollbackStatus {
        state: RollbackState::RolledBack,
        model_source: Some(vp.spec.model.source_uri.clone()),
        ..RollbackStatus::default()
    });
    cluster.server.insert_pipeline(&vp);
}

fn spec(extra: Value) -> Value {
    let mut spec =
        json!({"products": ["BTC-USD"], "kafka": {"bootstrapServers": "kafka-0.kafka:9092", "partitions": 4}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    spec
}

#[tokio::test]
async fn with_autoscaling_off_the_predictor_replicas_are_set_once_then_left_to_whoever_scales() {
    let cluster = with_spec(spec(json!({"workloads": {"predictor": {"replicas": 2}}})), Capabilities::default());
    cluster.converge().await;
    let predictor = path("apps/v1", "deployments", "test-predictor");
    assert_eq!(cluster.replicas(Workload::Predictor), 2, "created with workloads.predictor.replicas");
    assert_eq!(cluster.server.field_owners(&predictor, "/spec/replicas"), vec!["spikewatch-operator/Update"]);

    // Someone scales it (kubectl scale, an HPA); the operator's applies never send replicas.
    cluster.server.scale_deployment("test-predictor", 4, "kubectl");
    let mut vp = cluster.pipeline();
    // Any change that makes the operator apply the predictor again.
    vp.spec.workloads.predictor.node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
    vp.metadata.generation = Some(2);
    cluster.server.insert_pipeline(&vp);
    cluster.server.forget_requests();
    cluster.reconcile().await;

    let applies: Vec<_> = cluster.server.writes().into_iter().filter(|r| r.path == predictor).collect();
    assert!(!applies.is_empty(), "the predictor was applied again");
    assert!(applies.iter().all(|r| r.body.pointer("/spec/replicas").is_none()), "{applies:#?}");
    assert_eq!(cluster.replicas(Workload::Predictor), 4, "kubectl's count stands");
    assert_eq!(cluster.server.field_owners(&predictor, "/spec/replicas"), vec!["kubectl/Update"]);
    assert_eq!(cluster.replicas(Workload::Api), 2, "the other workloads follow the spec");
    assert_eq!(cluster.condition(ConditionType::Scaling), ("False".into(), "AutoscalingDisabled".into()));
}

#[tokio::test]
async fn the_lag_is_measured_at_the_qualified_name_of_a_short_broker_name() {
    let mut pipeline = spec(json!({"autoscaling": {"enabled": true, "maxReplicas": 4, "pollingIntervalSeconds": 1}}));
    pipeline["kafka"]["bootstrapServers"] = json!("kafka:9092");
    let cluster = with_spec(pipeline, Capabilities::default());
    cluster.broker.set_lag(&[1500, 900, 0, 0]);
    cluster.converge().await;
    assert_eq!(cluster.replicas(Workload::Predictor), 3, "the lag was measured");
    let used = cluster.broker.bootstrap_servers_used();
    assert!(used.len() >= 2, "topics, then the lag: {used:?}");
    assert!(used.iter().all(|b| b == "kafka.testns.svc:9092"), "{used:?}");
}

#[tokio::test]
async fn the_autoscaler_takes_its_replicas_back_and_holds_them_without_a_measurement() {
    let cluster = with_spec(
        spec(json!({"autoscaling": {"enabled": true, "maxReplicas": 4, "pollingIntervalSeconds": 1}})),
        Capabilities::default(),
    );
    cluster.broker.set_lag(&[1500, 900, 0, 0]);
    cluster.converge().await;
    assert_eq!(cluster.replicas(Workload::Predictor), 3, "ceil(2400 / 1000)");
    let status = cluster.pipeline().status.unwrap().consumer.unwrap();
    assert_eq!((status.lag, status.partitions, status.desired_replicas), (Some(2400), Some(4), 3));

    // Scaled behind its back: put back at the next reconcile.
    cluster.server.scale_deployment("test-predictor", 1, "kubectl");
    cluster.reconcile().await;
    assert_eq!(cluster.replicas(Workload::Predictor), 3);

    // The broker becomes unreachable: nothing changes, and the status says why.
    let outage = with_spec(
        spec(json!({"autoscaling": {"enabled": true, "minReplicas": 2, "maxReplicas": 4}})),
        Capabilities::default(),
    );
    outage.converge().await;
    assert_eq!(outage.replicas(Workload::Predictor), 2, "minReplicas until a measurement");
    assert_eq!(outage.condition(ConditionType::Scaling), ("False".into(), "LagUnavailable".into()));
    assert_eq!(outage.pipeline().status.unwrap().consumer.unwrap().lag, None);
}

#[tokio::test]
async fn a_rolled_back_pipeline_renders_the_baseline_until_released() {
    let cluster = with_spec(spec(json!({"model": {"variant": "ml"}})), Capabilities::default());
    cluster.converge().await;
    assert_eq!(cluster.rendered_variant(Workload::Api), "ml");

    record_rollback(&cluster);
    cluster.reconcile().await;
    assert_eq!(cluster.rendered_variant(Workload::Api), "baseline", "new API pods start on the baseline");
    assert_eq!(cluster.rendered_variant(Workload::Predictor), "baseline");
    assert_eq!(cluster.pipeline().spec.model.variant.as_str(), "ml", "the spec is untouched");
    cluster.server.mark_deployments_ready();
    cluster.reconcile().await;
    assert_eq!(cluster.condition(ConditionType::RolledBack).0, "True");
    assert_eq!(cluster.pipeline().status.unwrap().phase, Some(Phase::Degraded));

    // Switching the automation off releases the model: the spec's variant applies again.
    let mut vp = cluster.pipeline();
    vp.spec.rollback.enabled = false;
    cluster.server.insert_pipeline(&vp);
    cluster.reconcile().await;
    cluster.reconcile().await;
    assert_eq!(cluster.rendered_variant(Workload::Api), "ml");
    assert_eq!(cluster.condition(ConditionType::RolledBack), ("False".into(), "RollbackDisabled".into()));
    assert!(cluster.server.event_reasons().contains(&"RollbackReleased".to_string()));
    assert_eq!(cluster.pipeline().status.unwrap().rollback, None);
}

#[tokio::test]
async fn the_admin_token_secret_is_created_once_and_mounted_where_the_admin_endpoints_are() {
    let cluster = with_spec(spec(json!({})), Capabilities::default());
    cluster.converge().await;
    let secret_path = path("v1", "secrets", "test-admin-token");
    let secret = cluster.server.get(&secret_path).expect("admin token Secret");
    let token = secret["data"]["token"].as_str().expect("token").to_string();
    assert!(token.len() >= 64, "{token}");
    assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "VolatilityPipeline");

    cluster.server.forget_requests();
    cluster.reconcile().await;
    assert_eq!(cluster.server.get(&secret_path).unwrap()["data"]["token"], token.as_str(), "never rewritten");
    assert!(cluster.server.writes().iter().all(|w| w.path != secret_path && !w.path.ends_with("/secrets")));

    let mounted = |workload: Workload| {
        cluster.deployment(workload)["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["secret"]["secretName"] == "test-admin-token")
    };
    assert!(mounted(Workload::Api) && mounted(Workload::Predictor));
    assert!(!mounted(Workload::Ingestor) && !mounted(Workload::Featurizer), "no admin endpoint, no token");
}

#[tokio::test]
async fn keda_scales_through_a_scaled_object_when_the_cluster_serves_it() {
    let keda_spec = spec(json!({"autoscaling": {"enabled": true, "engine": "keda", "maxReplicas": 4}}));
    let without = with_spec(keda_spec.clone(), Capabilities::default());
    without.converge().await;
    assert_eq!(without.condition(ConditionType::Scaling), ("False".into(), "KedaNotInstalled".into()));
    assert!(without.server.paths("/scaledobjects/").is_empty());

    let with = with_spec(keda_spec, Capabilities { keda: true, ..Capabilities::default() });
    with.converge().await;
    let scaled = with
        .server
        .get("/apis/keda.sh/v1alpha1/namespaces/testns/scaledobjects/test-predictor")
        .expect("ScaledObject applied");
    assert_eq!(scaled["spec"]["scaleTargetRef"]["name"], "test-predictor");
    assert_eq!(scaled["spec"]["triggers"][0]["metadata"]["consumerGroup"], "spikewatch.testns.test.predictor");
    assert_eq!(with.condition(ConditionType::Scaling), ("False".into(), "KedaScaledObject".into()));
    assert_eq!(with.pipeline().status.unwrap().consumer, None, "KEDA, not the operator, measures");
    assert_eq!(
        with.server.field_owners(&path("apps/v1", "deployments", "test-predictor"), "/spec/replicas"),
        vec!["spikewatch-operator/Update"],
        "set at creation only, for KEDA's HPA to take over"
    );
}
