//! The chart grants the operator exactly the API verbs its code uses: every request the
//! operator makes, in every mode (admin and Strimzi topics, monitoring, KEDA, the autoscaler,
//! the rollback checks, deletion, leader election, the controller's watches), is recorded by the
//! mock API server and turned into `(API group, resource, verb)`; Helm renders the chart's Roles
//! and ClusterRole; the test fails when the chart misses a verb the code uses, or grants one it
//! never uses (apart from the few the API server itself demands, listed with their reason).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use spikewatch_operator::controller::{Context, FINALIZER, WatchScope, reconcile};
use spikewatch_operator::discovery::Capabilities;
use spikewatch_operator::fixtures::{self, ApiServer, FakeBroker, Recorded};
use spikewatch_operator::leader::{LeaderElector, LeaseConfig};

use common::processes::{repo_root, require_env};

/// `(API group, resource[/subresource], verb)`, as RBAC rules name them.
type Permission = (String, String, String);

/// Granted although no request of the code shows it: the API server asks for it on its own.
const DEMANDED_BY_THE_API_SERVER: &[(&str, &str, &str, &str)] = &[(
    "spikewatch.io",
    "volatilitypipelines/finalizers",
    "update",
    "children carry blockOwnerDeletion: true, which the OwnerReferencesPermissionEnforcement \
     admission plugin allows only to who may update the owner's finalizers",
)];

/// The permission a recorded request needs; none for discovery and `/version`.
fn permissions(request: &Recorded) -> Vec<Permission> {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return vec![],
    };
    let rest = match rest {
        ["namespaces", _namespace, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, named) = match rest {
        [] => return vec![],
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, subresource] => (format!("{resource}/{subresource}"), true),
        _ => return vec![],
    };
    let watch = request.query.contains("watch=true") || request.query.contains("watch=1");
    let verbs: &[&str] = match (request.method.as_str(), named) {
        ("GET", true) => &["get"],
        ("GET", false) if watch => &["watch"],
        ("GET", false) => &["list"],
        ("POST", _) => &["create"],
        ("PUT", _) => &["update"],
        // An apply that creates its object is authorized as a create too.
        ("PATCH", _) if request.status == 201 => &["patch", "create"],
        ("PATCH", _) => &["patch"],
        ("DELETE", true) => &["delete"],
        ("DELETE", false) => &["deletecollection"],
        _ => &[],
    };
    verbs.iter().map(|v| (group.to_string(), resource.clone(), v.to_string())).collect()
}

fn used(requests: &[Recorded]) -> BTreeSet<Permission> {
    requests.iter().flat_map(permissions).collect()
}

/// The chart's Roles and ClusterRole for `values`, rendered by Helm.
fn chart_roles(values: Value) -> Vec<Value> {
    let output = Command::new(require_env("SPIKEWATCH_PYTHON"))
        .arg(repo_root().join("charts/tests/render_rbac.py"))
        .arg(values.to_string())
        .output()
        .expect("run charts/tests/render_rbac.py");
    assert!(output.status.success(), "rendering the chart failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON roles")
}

fn granted(role: &Value) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    out.insert((
                        group.as_str().unwrap().to_string(),
                        resource.as_str().unwrap().to_string(),
                        verb.as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

fn is_lease(p: &Permission) -> bool {
    p.0 == "coordination.k8s.io"
}

fn finalized(mut vp: spikewatch_operator::crd::VolatilityPipeline) -> spikewatch_operator::crd::VolatilityPipeline {
    vp.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    vp
}

fn kafka_secret(server: &ApiServer) {
    server.insert(
        &fixtures::path("v1", "secrets", "kafka-user"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-user", "namespace": fixtures::NAMESPACE},
               "data": {"username": "dXNlcg==", "password": "cGFzcw=="}}),
    );
}

/// Reconciles the pipeline the server holds now.
async fn step(server: &ApiServer, ctx: &Arc<Context>) {
    let _ = reconcile(Arc::new(server.pipeline()), ctx.clone()).await;
}

/// A pipeline's whole life in admin mode with every optional API served: created, its topics
/// and children applied, rolled out, checked for rollback (pods listed), scaled on its lag by
/// the operator, then deleted with its topics.
async fn admin_lifecycle() -> Vec<Recorded> {
    let (client, server) = ApiServer::start();
    kafka_secret(&server);
    server.insert_pipeline(&fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka:9093", "securityProtocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512",
                  "authSecretRef": {"name": "kafka-user"}, "partitions": 4, "deletionPolicy": "Delete"},
        "autoscaling": {"enabled": true, "maxReplicas": 4, "pollingIntervalSeconds": 1},
        "rollback": {"intervalSeconds": 1, "windowSeconds": 10},
    })));
    let broker = FakeBroker::reachable();
    broker.set_lag(&[5000, 5000, 5000, 5000]);
    let ctx = Context::test_with_lag(client, broker.clone(), broker, Capabilities::all());
    step(&server, &ctx).await; // status and finalizer
    step(&server, &ctx).await; // topics, children, monitoring
    server.mark_deployments_ready();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the checks and the lag poll are due
    step(&server, &ctx).await; // scales up through the scale subresource
    step(&server, &ctx).await;
    let mut single_api = server.pipeline();
    single_api.spec.workloads.api.replicas = 1;
    server.insert_pipeline(&single_api);
    step(&server, &ctx).await; // the API's PodDisruptionBudget deleted
    server.mark_pipeline_deleted();
    step(&server, &ctx).await; // topics deleted, finalizer removed
    server.requests()
}

/// KEDA scales the predictor: a TriggerAuthentication and a ScaledObject.
async fn keda() -> Vec<Recorded> {
    let (client, server) = ApiServer::start();
    kafka_secret(&server);
    server.insert_pipeline(&finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka:9093", "securityProtocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512",
                  "authSecretRef": {"name": "kafka-user"}},
        "autoscaling": {"enabled": true, "engine": "keda"},
    }))));
    let ctx = Context::test(client, FakeBroker::reachable(), Capabilities::all());
    step(&server, &ctx).await;
    server.requests()
}

/// Strimzi topics, Ready, then the pipeline deleted with `Retain`: its KafkaTopics are released.
async fn strimzi() -> Vec<Recorded> {
    let (client, server) = ApiServer::start();
    server.insert_pipeline(&finalized(fixtures::pipeline_from(json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "c-kafka-bootstrap:9092", "topicManagement": "strimzi", "strimziCluster": "c"},
    }))));
    let ctx = Context::test(client, FakeBroker::reachable(), Capabilities::all());
    step(&server, &ctx).await;
    for path in server.paths("/kafkatopics/") {
        let mut topic = server.get(&path).unwrap();
        topic["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        server.insert(&path, topic);
    }
    step(&server, &ctx).await;
    server.mark_pipeline_deleted();
    step(&server, &ctx).await;
    server.requests()
}

/// An unreachable broker, twice: a Warning event, then the same event again (a series update).
async fn repeated_failures() -> Vec<Recorded> {
    let (client, server) = ApiServer::start();
    server.insert_pipeline(&finalized(fixtures::pipeline()));
    let ctx = Context::test(client, FakeBroker::unreachable(), Capabilities::default());
    step(&server, &ctx).await;
    step(&server, &ctx).await;
    server.requests()
}

/// Leader election: the Lease created, renewed, released.
async fn leader_election() -> Vec<Recorded> {
    let (client, server) = ApiServer::start();
    let elector = LeaderElector::new(client, LeaseConfig::new("spikewatch-operator", fixtures::NAMESPACE, "pod-a"));
    assert!(elector.try_acquire_or_renew().await.unwrap());
    assert!(elector.try_acquire_or_renew().await.unwrap());
    elector.release().await;
    server.requests()
}

/// The controller's lists and watches, until every watched kind has been watched.
async fn controller_watches(scope: WatchScope) -> Vec<Recorded> {
    let (client, server) = ApiServer::start();
    let ctx = Context::test(client, FakeBroker::reachable(), Capabilities::all());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(spikewatch_operator::controller::run(ctx, scope, async move {
        let _ = stopped.await;
    }));
    let watched = |server: &ApiServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.query.contains("watch=true"))
            .map(|r| r.path.clone())
            .collect::<BTreeSet<_>>()
    };
    // Seven kinds (pipelines and six owned kinds) per namespace watched.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while watched(&server).len() < 7 {
        assert!(tokio::time::Instant::now() < deadline, "watches: {:?}", watched(&server));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    controller.abort();
    server.requests()
}

async fn everything(scope: WatchScope) -> Vec<Recorded> {
    let mut requests = vec![];
    requests.extend(admin_lifecycle().await);
    requests.extend(keda().await);
    requests.extend(strimzi().await);
    requests.extend(repeated_failures().await);
    requests.extend(leader_election().await);
    requests.extend(controller_watches(scope).await);
    requests
}

/// `used` and `granted` are the same, but for what the API server demands (`demanded`).
fn assert_same(
    used: &BTreeSet<Permission>,
    granted: &BTreeSet<Permission>,
    what: &str,
    demanded: &[(&str, &str, &str, &str)],
) {
    let demanded: BTreeSet<Permission> =
        demanded.iter().map(|(g, r, v, _)| (g.to_string(), r.to_string(), v.to_string())).collect();
    let missing: Vec<_> = used.difference(granted).collect();
    let unused: Vec<_> = granted.difference(used).filter(|p| !demanded.contains(*p)).collect();
    assert!(missing.is_empty(), "{what} lacks permissions the operator uses: {missing:?}");
    assert!(unused.is_empty(), "{what} grants permissions the operator never uses: {unused:?}");
    for permission in &demanded {
        assert!(granted.contains(permission), "{what} lacks {permission:?}, which the API server demands");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_the_chart_grants_exactly_the_verbs_the_operator_uses() {
    let requests = everything(WatchScope::All).await;
    let used = used(&requests);
    for expected in [("apps", "deployments", "watch"), ("", "pods", "list"), ("apps", "deployments/scale", "patch")] {
        let expected = (expected.0.to_string(), expected.1.to_string(), expected.2.to_string());
        assert!(used.contains(&expected), "the scenarios must exercise {expected:?}: {used:?}");
    }
    let roles = chart_roles(json!({}));
    let cluster: Vec<&Value> = roles.iter().filter(|r| r["kind"] == "ClusterRole").collect();
    assert_eq!(cluster.len(), 1, "{roles:?}");
    let leader: Vec<&Value> = roles.iter().filter(|r| r["kind"] == "Role").collect();
    assert_eq!(leader.len(), 1, "only the leader-election Role: {roles:?}");

    let (leases, pipelines): (BTreeSet<Permission>, BTreeSet<Permission>) = used.into_iter().partition(is_lease);
    assert_same(&pipelines, &granted(cluster[0]), "the ClusterRole", DEMANDED_BY_THE_API_SERVER);
    assert_same(&leases, &granted(leader[0]), "the leader-election Role", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_namespaces_each_namespace_gets_a_role_with_exactly_those_verbs_and_nothing_cluster_wide() {
    let scope = WatchScope::Namespaces(vec![fixtures::NAMESPACE.to_string()]);
    let requests = everything(scope).await;
    let outside: Vec<&Recorded> = requests
        .iter()
        .filter(|r| !permissions(r).is_empty() && !r.path.contains(&format!("/namespaces/{}/", fixtures::NAMESPACE)))
        .collect();
    assert!(outside.is_empty(), "requests outside the watched namespace: {outside:#?}");
    let (_, used): (BTreeSet<Permission>, BTreeSet<Permission>) = used(&requests).into_iter().partition(is_lease);

    let roles = chart_roles(json!({"watchNamespaces": ["markets", "markets-staging"]}));
    assert!(roles.iter().all(|r| r["kind"] == "Role"), "no ClusterRole: {roles:?}");
    for namespace in ["markets", "markets-staging"] {
        let role: Vec<&Value> =
            roles.iter().filter(|r| r["namespace"] == namespace && !granted(r).iter().any(is_lease)).collect();
        assert_eq!(role.len(), 1, "one Role in {namespace}: {roles:?}");
        assert_same(&used, &granted(role[0]), &format!("the Role in {namespace}"), DEMANDED_BY_THE_API_SERVER);
    }
}
