//! The reconciler against a mock Kubernetes API server (see `spikewatch_operator::fixtures`).
//! Each test is one scenario: what exists, one or more reconciles, what the API server and
//! the broker saw.

mod common;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::{Value, json};
use spikewatch_operator::controller::{Context, FINALIZER, error_policy, reconcile};
use spikewatch_operator::crd::{ConditionType, Phase, find_condition};
use spikewatch_operator::discovery::{self, Capabilities};
use spikewatch_operator::fixtures::{self, ApiServer, BrokerCall, FakeBroker, UID};
use spikewatch_types::config::Config;

use common::cluster::{Cluster, finalized};

const TOPICS: [&str; 3] = ["ticks.raw", "ticks.features", "ticks.predictions"];

#[tokio::test]
async fn a_new_pipeline_first_gets_a_reconciling_status_and_the_finalizer_and_nothing_else() {
    let cluster = Cluster::with(&fixtures::pipeline(), FakeBroker::reachable());

    let action = cluster.try_reconcile().await.expect("reconcile");

    assert_eq!(action, Action::await_change(), "the finalizer patch itself triggers the next reconcile");
    let writes = cluster.server.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    // The status first: kstatus readers (Flux, `kubectl wait`) take an object without status for
    // done; this one says work is in progress from the start.
    assert_eq!(writes[0].path, format!("{}/status", fixtures::pipeline_path()));
    assert_eq!((writes[1].method.as_str(), writes[1].path.as_str()), ("PATCH", fixtures::pipeline_path().as_str()));
    assert_eq!(cluster.server.pipeline().metadata.finalizers, Some(vec![FINALIZER.to_string()]));
    assert_eq!(cluster.condition(ConditionType::Reconciling), ("True".into(), "Initializing".into()));
    assert_eq!(cluster.condition(ConditionType::Stalled).0, "False");
    assert_eq!(cluster.server.pipeline().status.unwrap().observed_generation, Some(1));
    assert!(cluster.broker.calls().is_empty(), "no topic work before the finalizer is in place");
}

#[tokio::test]
async fn a_finalized_pipeline_gets_topics_then_owned_children_then_a_status() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());

    cluster.try_reconcile().await.expect("reconcile");

    assert_eq!(cluster.broker.topic_names(), {
        let mut t = TOPICS.map(String::from).to_vec();
        t.sort();
        t
    });
    let applies: Vec<_> = cluster
        .server
        .writes()
        .into_iter()
        .filter(|r| r.content_type == "application/apply-patch+yaml" && !r.path.ends_with("/status"))
        .collect();
    assert!(applies.len() >= 5, "config and four Deployments at least: {applies:#?}");
    for apply in &applies {
        assert!(apply.query.contains("fieldManager=spikewatch-operator"), "{}", apply.query);
        assert!(apply.query.contains("force=true"), "{}", apply.query);
        let stored = cluster.server.get(&apply.path).expect("applied child stored");
        let owners = stored.pointer("/metadata/ownerReferences").and_then(Value::as_array).expect("owner references");
        assert!(
            owners.iter().any(|o| o["uid"] == json!(UID)
                && o["controller"] == json!(true)
                && o["kind"] == json!("VolatilityPipeline")),
            "{} lacks the pipeline as controller owner: {owners:?}",
            apply.path
        );
    }
    assert_eq!(cluster.deployments().len(), 4);
    assert_eq!(cluster.condition(ConditionType::TopicsReady).0, "True");
    // Just created: the Deployment controller has not seen them yet.
    assert_eq!(cluster.condition(ConditionType::WorkloadsReady), ("False".into(), "RolloutInProgress".into()));
    assert_eq!(cluster.condition(ConditionType::Reconciling), ("True".into(), "RolloutInProgress".into()));
    let status = cluster.server.pipeline().status.unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.phase, Some(Phase::Progressing));
    let events = cluster.server.event_reasons();
    assert!(events.contains(&"TopicsUpdated".to_string()), "{events:?}");
    assert!(events.contains(&"Created".to_string()), "{events:?}");
}

#[tokio::test]
async fn ready_deployments_make_the_pipeline_ready_and_missing_monitoring_only_degrades_it() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.try_reconcile().await.expect("apply");
    cluster.server.mark_deployments_ready();

    let action = cluster.try_reconcile().await.expect("reconcile");

    // Ready pipelines resync every 5 minutes, but the rollback checks (on by default) are due
    // every 15 s.
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
    assert_eq!(cluster.condition(ConditionType::Ready), ("True".into(), "PipelineReady".into()));
    assert_eq!(cluster.condition(ConditionType::MonitoringReady), ("False".into(), "MonitoringCRDsMissing".into()));
    let status = cluster.server.pipeline().status.unwrap();
    assert_eq!(status.workloads.unwrap().predictor.ready_replicas, 1);
}

#[tokio::test]
async fn a_spec_change_is_reconciling_and_not_ready_until_every_deployment_rolled_it_out() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.converge().await;
    assert_eq!(cluster.condition(ConditionType::Reconciling), ("False".into(), "Reconciled".into()));

    // A new image in Git: generation 2.
    let mut vp = cluster.server.pipeline();
    vp.spec.image.tag = Some("0.2.0".into());
    vp.metadata.generation = Some(2);
    cluster.server.insert_pipeline(&vp);
    cluster.try_reconcile().await.expect("apply the new template");

    // Every old pod is still ready, but the Deployment controller has not seen the change.
    let api = fixtures::path("apps/v1", "deployments", "test-api");
    assert_eq!(cluster.server.get(&api).unwrap()["status"]["readyReplicas"], 2);
    assert_eq!(cluster.condition(ConditionType::WorkloadsReady), ("False".into(), "RolloutInProgress".into()));
    assert_eq!(cluster.condition(ConditionType::Reconciling), ("True".into(), "RolloutInProgress".into()));
    assert_eq!(cluster.condition(ConditionType::Ready).0, "False");

    // Half-way: the controller saw it, one API pod of two runs the new template.
    cluster.server.mark_deployment_rolling("test-api", 1);
    cluster.try_reconcile().await.expect("reconcile");
    let status = cluster.server.pipeline().status.unwrap();
    let workloads = find_condition(&status.conditions, ConditionType::WorkloadsReady).unwrap();
    assert!(workloads.message.contains("api: 1 of 2 replicas updated"), "{}", workloads.message);
    assert_eq!(workloads.status, "False");

    cluster.server.mark_deployments_ready();
    cluster.try_reconcile().await.expect("reconcile");
    assert_eq!(cluster.condition(ConditionType::Ready), ("True".into(), "PipelineReady".into()));
    assert_eq!(cluster.condition(ConditionType::Reconciling), ("False".into(), "Reconciled".into()));
    let status = cluster.server.pipeline().status.unwrap();
    assert_eq!(status.observed_generation, Some(2));
    assert!(
        status.conditions.iter().all(|c| c.observed_generation == Some(2)),
        "every condition describes generation 2: {:#?}",
        status.conditions
    );
    assert_eq!(status.workloads.unwrap().api.updated_replicas, 2);
}

#[tokio::test]
async fn a_converged_pipeline_reconciles_with_zero_writes() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.converge().await;

    cluster.try_reconcile().await.expect("reconcile");

    let writes = cluster.server.writes();
    assert!(writes.is_empty(), "a converged pipeline must not write: {writes:#?}");
    assert!(cluster.server.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn the_operator_reaches_a_short_broker_name_in_the_pipelines_namespace_and_renders_the_same_name() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka:9092,kafka-1.kafka:9092", "deletionPolicy": "Delete"}
    })));
    let cluster = Cluster::with(&vp, FakeBroker::reachable());
    cluster.converge().await;
    let qualified = format!("kafka.{0}.svc:9092,kafka-1.kafka:9092", fixtures::NAMESPACE);
    let used = cluster.broker.bootstrap_servers_used();
    assert!(!used.is_empty() && used.iter().all(|b| b == &qualified), "the topics step: {used:?}");
    let config_map = cluster.server.get(&fixtures::path("v1", "configmaps", "test-config")).expect("config applied");
    let config = Config::from_yaml(config_map["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(config.kafka.bootstrap_servers, qualified, "one name everywhere");

    cluster.server.mark_pipeline_deleted();
    cluster.try_reconcile().await.expect("deletion");
    assert_eq!(cluster.broker.bootstrap_servers_used().last(), Some(&qualified), "the topics deleted there too");
}

#[tokio::test]
async fn the_api_disruption_budget_is_removed_when_the_api_drops_below_two_pods() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.converge().await;
    let budget = fixtures::path("policy/v1", "poddisruptionbudgets", "test-api");
    assert!(cluster.server.get(&budget).is_some(), "two API pods by default: a budget");

    let mut single = cluster.server.pipeline();
    single.spec.workloads.api.replicas = 1;
    cluster.server.insert_pipeline(&single);
    cluster.try_reconcile().await.expect("reconcile");
    assert_eq!(cluster.server.get(&budget), None);
    let deletes: Vec<_> =
        cluster.server.writes().into_iter().filter(|r| r.method == "DELETE").map(|r| r.path).collect();
    assert_eq!(deletes, std::slice::from_ref(&budget));
    assert!(cluster.server.event_reasons().contains(&"Deleted".to_string()));

    cluster.server.mark_deployments_ready();
    cluster.try_reconcile().await.expect("reconcile");
    cluster.server.forget_requests();
    cluster.try_reconcile().await.expect("reconcile");
    assert_eq!(cluster.server.writes().len(), 0, "nothing to delete any more: {:#?}", cluster.server.writes());

    // Someone else's budget of that name is left alone.
    cluster.server.insert(
        &budget,
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "test-api", "namespace": fixtures::NAMESPACE}, "spec": {"maxUnavailable": 0}}),
    );
    cluster.try_reconcile().await.expect("reconcile");
    assert!(cluster.server.get(&budget).is_some());
}

#[tokio::test]
async fn a_deleted_child_is_restored() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.converge().await;
    let victim = cluster.deployments()[0].clone();
    cluster.server.remove(&victim);

    cluster.try_reconcile().await.expect("reconcile");

    assert!(cluster.server.get(&victim).is_some(), "{victim} restored");
    let applies: Vec<String> =
        cluster.server.writes().into_iter().filter(|r| r.method == "PATCH" && !r.is_event()).map(|r| r.path).collect();
    assert!(applies.contains(&victim), "{applies:?}");
    assert!(
        applies.iter().all(|p| p == &victim || p.ends_with("/status")),
        "only the missing child (and the status it changes) is written: {applies:?}"
    );
}

#[tokio::test]
async fn an_edited_child_is_put_back() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.converge().await;
    let victim = cluster.deployments()[0].clone();
    let mut edited = cluster.server.get(&victim).unwrap();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.org/other:1");
    cluster.server.insert(&victim, edited);

    cluster.try_reconcile().await.expect("reconcile");

    let restored = cluster.server.get(&victim).unwrap();
    assert_ne!(restored["spec"]["template"]["spec"]["containers"][0]["image"], json!("example.org/other:1"));
}

#[tokio::test]
async fn an_unreachable_broker_sets_topics_ready_false_starts_no_workload_and_backs_off() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::unreachable());
    let vp = Arc::new(cluster.server.pipeline());

    let error = cluster.try_reconcile().await.expect_err("broker unreachable");

    assert_eq!(error.metric_label(), "broker_unreachable");
    assert_eq!(cluster.condition(ConditionType::TopicsReady), ("False".into(), "BrokerUnreachable".into()));
    assert_eq!(cluster.condition(ConditionType::Ready).0, "False");
    assert!(cluster.deployments().is_empty(), "no workload may start against missing topics");
    assert!(cluster.server.event_reasons().contains(&"BrokerUnreachable".to_string()));

    assert_eq!(error_policy(vp.clone(), &error, cluster.ctx.clone()), Action::requeue(Duration::from_secs(5)));
    assert_eq!(error_policy(vp.clone(), &error, cluster.ctx.clone()), Action::requeue(Duration::from_secs(10)));
    assert_eq!(cluster.ctx.metrics.failures.with_label_values(&["broker_unreachable"]).get(), 2);
}

#[tokio::test]
async fn a_secret_without_a_password_fails_the_pipeline_with_a_clear_message_and_a_slow_retry() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {
            "bootstrapServers": "kafka:9093",
            "securityProtocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
            "authSecretRef": {"name": "kafka-user"}
        }
    })));
    let cluster = Cluster::with(&vp, FakeBroker::reachable());
    cluster.server.insert(
        &fixtures::path("v1", "secrets", "kafka-user"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-user", "namespace": "testns"},
               "data": {"username": "dXNlcg=="}}),
    );

    let error = cluster.try_reconcile().await.expect_err("invalid credentials");

    assert_eq!(error.metric_label(), "invalid_spec");
    let status = cluster.server.pipeline().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    let ready = find_condition(&status.conditions, ConditionType::Ready).unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(ready.message.contains("password"), "{}", ready.message);
    // kstatus: stalled, not reconciling; Flux and `kubectl wait` stop waiting.
    assert_eq!(cluster.condition(ConditionType::Stalled), ("True".into(), "InvalidSpec".into()));
    assert_eq!(cluster.condition(ConditionType::Reconciling).0, "False");
    assert!(cluster.broker.calls().is_empty());
    let action = error_policy(Arc::new(cluster.server.pipeline()), &error, cluster.ctx.clone());
    assert_eq!(action, Action::requeue(Duration::from_secs(300)), "only an edit can fix it: no fast retry loop");
}

#[tokio::test]
async fn deleting_a_pipeline_with_the_delete_policy_deletes_its_topics_then_releases_it() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka:9092", "deletionPolicy": "Delete"}
    })));
    let cluster = Cluster::with(&vp, FakeBroker::reachable());
    cluster.converge().await;
    cluster.server.mark_pipeline_deleted();

    cluster.try_reconcile().await.expect("cleanup");

    assert_eq!(cluster.broker.calls().last(), Some(&BrokerCall::Delete(TOPICS.map(String::from).to_vec())));
    assert!(cluster.broker.topic_names().is_empty());
    assert!(cluster.server.get(&fixtures::pipeline_path()).is_none(), "finalizer removed, pipeline gone");
    assert!(cluster.server.event_reasons().contains(&"TopicsDeleted".to_string()));
}

#[tokio::test]
async fn a_pipeline_whose_topics_cannot_be_deleted_keeps_its_finalizer() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka:9092", "deletionPolicy": "Delete"}
    })));
    let cluster = Cluster::with(&vp, FakeBroker::unreachable());
    cluster.server.mark_pipeline_deleted();

    let error = cluster.try_reconcile().await.expect_err("broker unreachable during cleanup");

    assert_eq!(error.metric_label(), "broker_unreachable");
    assert_eq!(cluster.server.pipeline().metadata.finalizers, Some(vec![FINALIZER.to_string()]));
}

#[tokio::test]
async fn deleting_a_pipeline_with_the_retain_policy_keeps_its_topics() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.converge().await;
    cluster.server.mark_pipeline_deleted();

    cluster.try_reconcile().await.expect("cleanup");

    assert!(!cluster.broker.calls().iter().any(|c| matches!(c, BrokerCall::Delete(_))));
    assert_eq!(cluster.broker.topic_names().len(), 3);
    assert!(cluster.server.get(&fixtures::pipeline_path()).is_none());
}

#[tokio::test]
async fn with_the_prometheus_operator_installed_monitoring_objects_are_applied() {
    let capabilities = Capabilities { monitoring: true, ..Capabilities::default() };
    let cluster = Cluster::serving(&finalized(fixtures::pipeline()), FakeBroker::reachable(), capabilities);

    cluster.try_reconcile().await.expect("reconcile");

    let server = &cluster.server;
    assert!(!server.paths("/apis/monitoring.coreos.com/v1/namespaces/testns/servicemonitors/").is_empty());
    assert_eq!(server.paths("/apis/monitoring.coreos.com/v1/namespaces/testns/prometheusrules/").len(), 1);
    assert_eq!(cluster.condition(ConditionType::MonitoringReady).0, "True");
}

#[tokio::test]
async fn with_strimzi_the_workloads_wait_for_the_kafka_topics_to_be_ready() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "my-cluster-kafka-bootstrap:9092", "topicManagement": "strimzi", "strimziCluster": "my-cluster"}
    })));
    let strimzi = Capabilities { strimzi: true, ..Capabilities::default() };
    let cluster = Cluster::serving(&vp, FakeBroker::reachable(), strimzi);
    let (server, broker) = (&cluster.server, &cluster.broker);

    cluster.try_reconcile().await.expect("first reconcile");

    let topics = server.paths("/kafkatopics/");
    assert_eq!(topics.len(), 3, "{topics:?}");
    assert!(server.paths("/deployments/").is_empty(), "no workload before the KafkaTopics are Ready");
    assert!(broker.calls().is_empty(), "Strimzi mode never talks to the brokers");
    let status = server.pipeline().status.unwrap();
    assert_eq!(find_condition(&status.conditions, ConditionType::TopicsReady).unwrap().reason, "KafkaTopicsNotReady");

    // Strimzi's topic operator reports the topics Ready.
    for path in &topics {
        let mut topic = server.get(path).unwrap();
        topic["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        server.insert(path, topic);
    }
    cluster.try_reconcile().await.expect("second reconcile");

    assert_eq!(server.paths("/deployments/").len(), 4);
}

#[tokio::test]
async fn kafka_topics_are_written_in_v1_where_strimzi_serves_it_else_in_v1beta2() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "my-cluster-kafka-bootstrap:9092", "topicManagement": "strimzi", "strimziCluster": "my-cluster"}
    })));
    for (served, expected) in [(&["v1beta2"][..], "v1beta2"), (&["v1beta2", "v1"][..], "v1")] {
        let (client, server) = ApiServer::start();
        for version in served {
            server.serve_api("kafka.strimzi.io", version, "KafkaTopic", "kafkatopics");
        }
        server.insert_pipeline(&vp);
        let capabilities = discovery::discover(&client).await.expect("discovery");
        assert!(capabilities.strimzi, "{served:?}");
        assert_eq!(capabilities.kafka_topic_version.as_str(), expected, "{served:?}");
        assert!(!capabilities.monitoring && !capabilities.keda, "not served");

        let ctx = Context::test(client, FakeBroker::reachable(), capabilities);
        reconcile(Arc::new(server.pipeline()), ctx).await.expect("reconcile");
        let topics = server.paths(&format!("/apis/kafka.strimzi.io/{expected}/namespaces/testns/kafkatopics/"));
        assert_eq!(topics.len(), 3, "{served:?}: {:?}", server.paths("/kafkatopics/"));
        for path in topics {
            assert_eq!(server.get(&path).unwrap()["apiVersion"], format!("kafka.strimzi.io/{expected}"));
        }
    }
}

#[tokio::test]
async fn deleting_a_strimzi_pipeline_with_the_retain_policy_releases_its_kafka_topics() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "my-cluster-kafka-bootstrap:9092", "topicManagement": "strimzi", "strimziCluster": "my-cluster"}
    })));
    let strimzi = Capabilities { strimzi: true, ..Capabilities::default() };
    let cluster = Cluster::serving(&vp, FakeBroker::reachable(), strimzi);
    let server = &cluster.server;
    cluster.try_reconcile().await.expect("apply");
    server.mark_pipeline_deleted();

    cluster.try_reconcile().await.expect("cleanup");

    let topics = server.paths("/kafkatopics/");
    assert_eq!(topics.len(), 3);
    for path in topics {
        let topic = server.get(&path).unwrap();
        assert_eq!(topic["metadata"]["annotations"]["strimzi.io/managed"], "false", "{path}");
    }
    assert!(server.get(&fixtures::pipeline_path()).is_none(), "finalizer removed");
}

#[tokio::test]
async fn trusting_a_ca_from_a_secret_without_ca_crt_is_an_invalid_spec() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {
            "bootstrapServers": "kafka:9093",
            "securityProtocol": "SSL",
            "caFromSecret": true,
            "authSecretRef": {"name": "kafka-tls"}
        }
    })));
    let cluster = Cluster::with(&vp, FakeBroker::reachable());
    cluster.server.insert(
        &fixtures::path("v1", "secrets", "kafka-tls"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-tls", "namespace": "testns"},
               "data": {"username": "dXNlcg==", "password": "cGFzcw=="}}),
    );

    let error = cluster.try_reconcile().await.expect_err("no CA to trust");

    assert_eq!(error.metric_label(), "invalid_spec");
    let status = cluster.server.pipeline().status.unwrap();
    let ready = find_condition(&status.conditions, ConditionType::Ready).unwrap();
    assert!(ready.message.contains("ca.crt"), "{}", ready.message);
    assert!(cluster.deployments().is_empty());
}

#[tokio::test]
async fn a_missing_secret_is_retried_with_backoff() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka:9093", "securityProtocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512",
                  "authSecretRef": {"name": "not-yet-created"}}
    })));
    let cluster = Cluster::with(&vp, FakeBroker::reachable());

    let error = cluster.try_reconcile().await.expect_err("Secret missing");

    assert_eq!(error.metric_label(), "missing_secret");
    assert_eq!(cluster.condition(ConditionType::TopicsReady), ("False".into(), "SecretNotFound".into()));
    let action = error_policy(Arc::new(cluster.server.pipeline()), &error, cluster.ctx.clone());
    assert_eq!(action, Action::requeue(Duration::from_secs(5)), "the Secret may appear any moment");
}

#[tokio::test]
async fn a_broker_outage_after_startup_leaves_running_workloads_alone_and_reports_them() {
    let cluster = Cluster::with(&finalized(fixtures::pipeline()), FakeBroker::reachable());
    cluster.converge().await;
    let outage = Context::test(cluster.ctx.client.clone(), FakeBroker::unreachable(), Capabilities::default());

    let error = reconcile(Arc::new(cluster.server.pipeline()), outage).await.expect_err("broker down");

    assert_eq!(error.metric_label(), "broker_unreachable");
    assert_eq!(cluster.deployments().len(), 4, "running workloads are not touched");
    assert!(cluster.server.writes().iter().all(|w| w.is_event() || w.path.ends_with("/status")));
    assert_eq!(cluster.condition(ConditionType::TopicsReady), ("False".into(), "BrokerUnreachable".into()));
    assert_eq!(cluster.condition(ConditionType::WorkloadsReady), ("True".into(), "DeploymentsReady".into()));
    assert_eq!(cluster.condition(ConditionType::Ready).0, "False");
}

#[tokio::test]
async fn a_replay_source_is_applied_as_a_looping_replay_ingestor_with_its_recording_mounted() {
    let vp = finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka:9092"},
        "source": {"type": "replay", "replay": {"speed": "max",
                   "recording": {"configMap": {"name": "btc-recording", "key": "btc.csv.gz"}}}},
    })));
    let cluster = Cluster::with(&vp, FakeBroker::reachable());
    cluster.try_reconcile().await.expect("reconcile");

    let ingestor = cluster.server.get(&fixtures::path("apps/v1", "deployments", "test-ingestor")).unwrap();
    let pod = &ingestor["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["args"],
        json!([
            "replay",
            "--loop",
            "--speed",
            "max",
            "--input",
            "/var/lib/spikewatch/recording/btc.csv.gz",
            "--config",
            "/etc/spikewatch/config.yaml"
        ])
    );
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["configMap"]["name"] == "btc-recording"), "{volumes:?}");
    assert_eq!(
        pod["containers"][0]["image"],
        format!("ghcr.io/spikewatch/spikewatch:{}", fixtures::WORKLOAD_IMAGE_TAG)
    );

    // Back to the live feed: the same Deployment runs `ingest` without the recording.
    let mut live = cluster.server.pipeline();
    live.spec.source = Default::default();
    cluster.server.insert_pipeline(&live);
    cluster.try_reconcile().await.expect("reconcile");
    let ingestor = cluster.server.get(&fixtures::path("apps/v1", "deployments", "test-ingestor")).unwrap();
    assert_eq!(ingestor["spec"]["template"]["spec"]["containers"][0]["args"][0], "ingest");
    let volumes = ingestor["spec"]["template"]["spec"]["volumes"].as_array().unwrap().clone();
    assert!(volumes.iter().all(|v| v["name"] != "recording"), "{volumes:?}");
}
