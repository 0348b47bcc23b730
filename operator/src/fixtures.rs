//! Test support: builders of test pipelines, a mock Kubernetes API server, and a stand-in
//! broker. Compiled for this crate's tests and, through the `test-support` feature, for its
//! integration tests.
//!
//! The mock API server is a `tower-test` service behind a real `kube::Client` (the pattern of
//! kube-rs's controller-rs), answering like a small in-memory API server: it stores what is
//! applied, created, patched and deleted, answers GETs from that store, and records every
//! request so a test can assert on exactly what the reconciler sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

use crate::controller::Context;
use crate::crd::VolatilityPipeline;
use crate::discovery::Capabilities;
use crate::metrics::Metrics;
use crate::topics::{
    KafkaConnection, ObservedTopic, TopicAdmin, TopicError, TopicReport, TopicSpec, plan,
};

pub const NAMESPACE: &str = "testns";
pub const NAME: &str = "test";
pub const UID: &str = "7f4c3d2e-0000-4000-8000-00000000beef";

/// A pipeline as the API server would hand it to the controller: named, namespaced, with a
/// uid and generation 1; no finalizer, no status yet.
pub fn pipeline() -> VolatilityPipeline {
    pipeline_from(json!({
        "products": ["BTC-USD", "ETH-USD"],
        "kafka": { "bootstrapServers": "kafka-0.kafka:9092" }
    }))
}

/// A pipeline with the given spec (defaults fill the rest).
pub fn pipeline_from(spec: Value) -> VolatilityPipeline {
    serde_json::from_value(json!({
        "apiVersion": "spikewatch.io/v1alpha1",
        "kind": "VolatilityPipeline",
        "metadata": { "name": NAME, "namespace": NAMESPACE, "uid": UID, "generation": 1, "resourceVersion": "1" },
        "spec": spec,
    }))
    .expect("valid test pipeline")
}

/// URL path of the test pipeline.
pub fn pipeline_path() -> String {
    format!("/apis/spikewatch.io/v1alpha1/namespaces/{NAMESPACE}/volatilitypipelines/{NAME}")
}

/// URL path of a namespaced object of the test namespace, e.g. `path("apps/v1", "deployments", "x")`.
pub fn path(api_version: &str, plural: &str, name: &str) -> String {
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{prefix}/namespaces/{NAMESPACE}/{plural}/{name}")
}

/// One request the mock API server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

impl Recorded {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
    pub fn is_event(&self) -> bool {
        self.path.contains("/events")
    }
    /// `reason` of a published event.
    pub fn event_reason(&self) -> Option<&str> {
        self.is_event()
            .then(|| self.body.get("reason").and_then(Value::as_str))
            .flatten()
    }
}

#[derive(Default)]
struct Store {
    objects: BTreeMap<String, Value>,
    requests: Vec<Recorded>,
    resource_version: u64,
}

/// The mock API server. Dropping it stops its task.
pub struct ApiServer {
    store: Arc<Mutex<Store>>,
    task: JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    /// A client talking to a fresh, empty mock API server.
    pub fn start() -> (Client, ApiServer) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let store = Arc::new(Mutex::new(Store::default()));
        let served = store.clone();
        let task = tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let response = serve(&served, request).await;
                respond.send_response(response);
            }
        });
        (Client::new(service, NAMESPACE), ApiServer { store, task })
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores an object as if it existed in the cluster.
    pub fn insert(&self, path: &str, object: Value) {
        let mut store = self.lock();
        store.resource_version += 1;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
        store.objects.insert(path.to_string(), object);
    }

    pub fn insert_pipeline(&self, vp: &VolatilityPipeline) {
        self.insert(
            &pipeline_path(),
            serde_json::to_value(vp).expect("serializable pipeline"),
        );
    }

    /// The stored object at `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Deletes an object behind the controller's back.
    pub fn remove(&self, path: &str) -> Option<Value> {
        self.lock().objects.remove(path)
    }

    /// The pipeline as the API server holds it now (what the next watch event would carry).
    pub fn pipeline(&self) -> VolatilityPipeline {
        serde_json::from_value(self.get(&pipeline_path()).expect("pipeline stored"))
            .expect("stored pipeline parses")
    }

    /// Paths of the stored objects whose path contains `fragment`.
    pub fn paths(&self, fragment: &str) -> Vec<String> {
        self.lock()
            .objects
            .keys()
            .filter(|p| p.contains(fragment))
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(Recorded::is_write)
            .collect()
    }

    pub fn event_reasons(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| r.event_reason().map(String::from))
            .collect()
    }

    pub fn forget_requests(&self) {
        self.lock().requests.clear();
    }

    /// Plays the Deployment controller: every stored Deployment reports all replicas ready.
    pub fn mark_deployments_ready(&self) {
        let mut store = self.lock();
        for (path, object) in store.objects.iter_mut() {
            if path.contains("/deployments/") {
                let replicas = object
                    .pointer("/spec/replicas")
                    .cloned()
                    .unwrap_or(json!(1));
                object["status"] = json!({ "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas });
            }
        }
    }

    /// Plays the API server's deletion: sets `deletionTimestamp` on the pipeline (it has a
    /// finalizer, so it stays until the finalizer is removed).
    pub fn mark_pipeline_deleted(&self) {
        let mut store = self.lock();
        if let Some(object) = store.objects.get_mut(&pipeline_path()) {
            object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
    }
}

async fn serve(store: &Arc<Mutex<Store>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let bytes = body.collect_bytes().await.unwrap_or_default();
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body,
    };
    let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
    store.requests.push(recorded.clone());
    let (code, value) = handle(&mut store, &recorded);
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(&value).unwrap_or_default()))
        .expect("valid response")
}

fn status(code: StatusCode, reason: &str, message: String) -> (StatusCode, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn handle(store: &mut Store, request: &Recorded) -> (StatusCode, Value) {
    let path = request.path.clone();
    let (object_path, subresource) = match path.strip_suffix("/status") {
        Some(base) => (base.to_string(), Some("status")),
        None => (path.clone(), None),
    };
    match (request.method.as_str(), path.as_str()) {
        ("GET", "/version") => return (StatusCode::OK, version()),
        // Discovery: no optional API groups.
        ("GET", "/apis") => {
            return (
                StatusCode::OK,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            );
        }
        _ => {}
    }
    match request.method.as_str() {
        "GET" => match store.objects.get(&object_path) {
            Some(object) => (StatusCode::OK, object.clone()),
            None => {
                let prefix = format!("{object_path}/");
                let items: Vec<Value> = store
                    .objects
                    .iter()
                    .filter(|(p, _)| {
                        p.strip_prefix(&prefix)
                            .is_some_and(|rest| !rest.contains('/'))
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                if items.is_empty() && !is_collection(&object_path) {
                    status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("{object_path} not found"),
                    )
                } else {
                    (
                        StatusCode::OK,
                        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                    )
                }
            }
        },
        "POST" => {
            let name = request
                .body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("generated")
                .to_string();
            let target = format!("{object_path}/{name}");
            if store.objects.contains_key(&target) && !request.is_event() {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{target} already exists"),
                );
            }
            let stored = stamp(store, request.body.clone(), None);
            store.objects.insert(target, stored.clone());
            (StatusCode::CREATED, stored)
        }
        "PUT" => {
            let existing = store.objects.get(&object_path).cloned();
            let sent_version = request.body.pointer("/metadata/resourceVersion").cloned();
            if let (Some(existing), Some(sent)) = (&existing, &sent_version)
                && existing.pointer("/metadata/resourceVersion") != Some(sent)
            {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "the object has been modified".into(),
                );
            }
            let stored = stamp(store, request.body.clone(), existing.as_ref());
            store.objects.insert(object_path, stored.clone());
            (StatusCode::OK, stored)
        }
        "DELETE" => match store.objects.remove(&object_path) {
            Some(object) => (StatusCode::OK, object),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{object_path} not found"),
            ),
        },
        "PATCH" => patch(store, request, object_path, subresource),
        other => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{other} not supported"),
        ),
    }
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "34", "gitVersion": "v1.34.0", "gitCommit": "mock", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
    })
}

impl ApiServer {
    /// Also serves the mock over HTTP on a free 127.0.0.1 port, for a process (the operator
    /// binary) that connects through a kubeconfig. Watch requests are held open without events.
    pub async fn serve_http(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let store = self.store.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let store = store.clone();
            async move {
                if request
                    .uri()
                    .query()
                    .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"))
                {
                    futures::future::pending::<()>().await;
                }
                let (parts, body) = request.into_parts();
                let bytes = axum::body::to_bytes(body, 16 << 20)
                    .await
                    .unwrap_or_default();
                let request = Request::from_parts(parts, Body::from(bytes.to_vec()));
                let response = serve(&store, request).await;
                let (parts, body) = response.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    /// A kubeconfig pointing at [`ApiServer::serve_http`]'s address.
    pub fn kubeconfig(addr: std::net::SocketAddr) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: mock\n\
             clusters:\n- name: mock\n  cluster:\n    server: http://{addr}\n\
             contexts:\n- name: mock\n  context:\n    cluster: mock\n    user: mock\n    namespace: {NAMESPACE}\n\
             users:\n- name: mock\n  user:\n    token: mock\n"
        )
    }
}

fn is_collection(path: &str) -> bool {
    // /api/v1/<plural>, /api/v1/namespaces/<ns>/<plural>,
    // /apis/<group>/<version>/<plural>, /apis/<group>/<version>/namespaces/<ns>/<plural>
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.first() {
        Some(&"api") => segments.len() == 3 || (segments.len() == 5 && segments[2] == "namespaces"),
        Some(&"apis") => {
            segments.len() == 4 || (segments.len() == 6 && segments[3] == "namespaces")
        }
        _ => false,
    }
}

fn patch(
    store: &mut Store,
    request: &Recorded,
    object_path: String,
    subresource: Option<&str>,
) -> (StatusCode, Value) {
    let existing = store.objects.get(&object_path).cloned();
    let updated = match request.content_type.as_str() {
        "application/apply-patch+yaml" => match (subresource, existing.clone()) {
            (Some("status"), Some(mut object)) => {
                object["status"] = request.body.get("status").cloned().unwrap_or(Value::Null);
                object
            }
            (Some(_), None) => {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{object_path} not found"),
                );
            }
            (_, _) => {
                let mut object = request.body.clone();
                if let Some(old_status) = existing.as_ref().and_then(|e| e.get("status")) {
                    object["status"] = old_status.clone();
                }
                object
            }
        },
        "application/json-patch+json" => {
            let Some(mut object) = existing.clone() else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{object_path} not found"),
                );
            };
            let operations: json_patch::Patch = match serde_json::from_value(request.body.clone()) {
                Ok(p) => p,
                Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
            };
            // Like the API server's JSON patch, `test` for null passes on a missing path (the
            // finalizer helper relies on it for objects without finalizers).
            let operations: Vec<json_patch::PatchOperation> = operations
                .0
                .into_iter()
                .filter(|op| match op {
                    json_patch::PatchOperation::Test(t) => {
                        !(t.value.is_null() && object.pointer(t.path.as_str()).is_none())
                    }
                    _ => true,
                })
                .collect();
            if let Err(e) = json_patch::patch(&mut object, &operations) {
                return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string());
            }
            object
        }
        "application/merge-patch+json" => {
            let Some(mut object) = existing.clone() else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{object_path} not found"),
                );
            };
            json_patch::merge(&mut object, &request.body);
            object
        }
        other => {
            return status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                other.to_string(),
            );
        }
    };
    // A deleting object whose last finalizer is gone disappears, as in a real API server.
    let finalizers_empty = updated
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty());
    if updated.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty {
        store.objects.remove(&object_path);
        return (StatusCode::OK, updated);
    }
    let stored = stamp(store, updated, existing.as_ref());
    store.objects.insert(object_path, stored.clone());
    (StatusCode::OK, stored)
}

/// Server-owned metadata: uid and creation time kept from before, a fresh resourceVersion.
fn stamp(store: &mut Store, mut object: Value, existing: Option<&Value>) -> Value {
    store.resource_version += 1;
    let uid = existing
        .and_then(|e| e.pointer("/metadata/uid").cloned())
        .unwrap_or_else(|| json!(format!("uid-{}", store.resource_version)));
    if object.get("metadata").is_none_or(|m| !m.is_object()) {
        object["metadata"] = json!({});
    }
    if object.pointer("/metadata/uid").is_none() {
        object["metadata"]["uid"] = uid;
    }
    object["metadata"]["resourceVersion"] = json!(store.resource_version.to_string());
    object
}

/// What the stand-in broker was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerCall {
    Ensure(Vec<String>),
    Delete(Vec<String>),
}

/// A broker that keeps topics in memory (using the real plan), or one that cannot be reached.
#[derive(Default)]
pub struct FakeBroker {
    pub unreachable: bool,
    topics: Mutex<HashMap<String, ObservedTopic>>,
    calls: Mutex<Vec<BrokerCall>>,
}

impl FakeBroker {
    pub fn reachable() -> Arc<FakeBroker> {
        Arc::new(FakeBroker::default())
    }

    pub fn unreachable() -> Arc<FakeBroker> {
        Arc::new(FakeBroker {
            unreachable: true,
            ..FakeBroker::default()
        })
    }

    pub fn calls(&self) -> Vec<BrokerCall> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn topic_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn unreachable_error(connection: &KafkaConnection) -> TopicError {
        TopicError::Unreachable {
            bootstrap_servers: connection.bootstrap_servers.clone(),
            reason: "connection refused".into(),
        }
    }
}

impl TopicAdmin for FakeBroker {
    fn ensure<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        desired: &'a [TopicSpec],
    ) -> BoxFuture<'a, Result<TopicReport, TopicError>> {
        async move {
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(BrokerCall::Ensure(
                    desired.iter().map(|t| t.name.clone()).collect(),
                ));
            if self.unreachable {
                return Err(Self::unreachable_error(connection));
            }
            let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            let observed: Vec<ObservedTopic> = topics.values().cloned().collect();
            let plan = plan(desired, &observed);
            for change in &plan.changes {
                let spec = desired
                    .iter()
                    .find(|t| t.name == change.topic())
                    .expect("planned from desired");
                let entry = topics.entry(spec.name.clone()).or_insert(ObservedTopic {
                    name: spec.name.clone(),
                    partitions: spec.partitions,
                    retention_ms: spec.retention_ms,
                });
                entry.partitions = entry.partitions.max(spec.partitions);
                entry.retention_ms = spec.retention_ms;
            }
            Ok(TopicReport {
                applied: plan.changes,
                shrink_refused: plan.shrink_refused,
            })
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<(), TopicError>> {
        async move {
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(BrokerCall::Delete(names.to_vec()));
            if self.unreachable {
                return Err(Self::unreachable_error(connection));
            }
            let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            for name in names {
                topics.remove(name);
            }
            Ok(())
        }
        .boxed()
    }
}

impl Context {
    /// A context on `client` with fresh metrics, the given broker and optional APIs.
    pub fn test(
        client: Client,
        broker: Arc<dyn TopicAdmin>,
        capabilities: Capabilities,
    ) -> Arc<Context> {
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry).expect("metrics register");
        Arc::new(Context::new(
            client,
            metrics,
            "test",
            Arc::new(RwLock::new(capabilities)),
            broker,
        ))
    }
}
