//! The Argo CD health check of `VolatilityPipeline`
//! (`charts/spikewatch-operator/argocd/volatilitypipeline-health.lua`), run by a real Lua 5.4
//! (Debian `lua5.4`, installed by `scripts/setup`) on pipelines whose status the reconciler
//! wrote against the mock API server: progressing, healthy, degraded.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use spikewatch_operator::controller::{Context, FINALIZER, reconcile};
use spikewatch_operator::discovery::Capabilities;
use spikewatch_operator::fixtures::{self, ApiServer, FakeBroker};

const HEALTH_CHECK: &str = include_str!("../../charts/spikewatch-operator/argocd/volatilitypipeline-health.lua");

/// A JSON value as a Lua table constructor, the way Argo CD hands objects to health checks.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for byte in s.bytes() {
                match byte {
                    b'"' => out.push_str("\\\""),
                    b'\\' => out.push_str("\\\\"),
                    b' '..=b'~' => out.push(byte as char),
                    other => out.push_str(&format!("\\{other:03}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua(&Value::String(k.clone())), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `(status, message)` of the health check on `object`.
fn health(object: &Value) -> (String, String) {
    let script = format!(
        "local obj = {}\nlocal hs = (function()\n{HEALTH_CHECK}\nend)()\nio.write(hs.status, '\\n', hs.message or '')\n",
        lua(object)
    );
    let mut child = Command::new("lua5.4")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lua5.4 not found: run `scripts/setup` (it installs Debian's lua5.4)");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "lua5.4 failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

struct Cluster {
    server: ApiServer,
    ctx: Arc<Context>,
}

impl Cluster {
    fn new(spec: Value, broker: Arc<FakeBroker>) -> Cluster {
        let (client, server) = ApiServer::start();
        server.insert_pipeline(&fixtures::pipeline_from(spec));
        Cluster { server, ctx: Context::test(client, broker, Capabilities::default()) }
    }

    async fn reconcile(&self) {
        let _ = reconcile(Arc::new(self.server.pipeline()), self.ctx.clone()).await;
    }

    fn object(&self) -> Value {
        self.server.get(&fixtures::pipeline_path()).unwrap()
    }
}

fn spec() -> Value {
    json!({"products": ["BTC-USD"], "kafka": {"bootstrapServers": "kafka:9092"}})
}

#[tokio::test]
async fn a_pipeline_progresses_until_every_rollout_is_complete_then_is_healthy() {
    let cluster = Cluster::new(spec(), FakeBroker::reachable());
    assert_eq!(health(&cluster.object()).0, "Progressing", "no status yet");

    cluster.reconcile().await; // status and finalizer
    let (status, message) = health(&cluster.object());
    assert_eq!(status, "Progressing");
    assert!(message.starts_with("Initializing"), "{message}");

    cluster.reconcile().await; // children applied, not rolled out
    let (status, message) = health(&cluster.object());
    assert_eq!(status, "Progressing");
    assert!(message.starts_with("RolloutInProgress"), "{message}");

    cluster.server.mark_deployments_ready();
    cluster.reconcile().await;
    let (status, message) = health(&cluster.object());
    assert_eq!(status, "Healthy", "{message}");
    assert!(message.starts_with("PipelineReady"), "{message}");

    // A new spec in Git the operator has not seen yet: Ready=True is about the old one.
    let mut object = cluster.object();
    object["metadata"]["generation"] = json!(2);
    let (status, message) = health(&object);
    assert_eq!(status, "Progressing");
    assert!(message.contains("generation 2"), "{message}");
}

#[tokio::test]
async fn an_unreachable_broker_is_progressing_an_unusable_secret_is_degraded() {
    let cluster = Cluster::new(spec(), FakeBroker::unreachable());
    cluster.reconcile().await;
    cluster.reconcile().await;
    let (status, message) = health(&cluster.object());
    assert_eq!(status, "Progressing", "retried: it may come back");
    assert!(message.starts_with("BrokerUnreachable"), "{message}");

    let cluster = Cluster::new(
        json!({"products": ["BTC-USD"], "kafka": {"bootstrapServers": "kafka:9093", "securityProtocol": "SASL_SSL",
               "saslMechanism": "PLAIN", "authSecretRef": {"name": "kafka-user"}}}),
        FakeBroker::reachable(),
    );
    cluster.server.insert(
        &fixtures::path("v1", "secrets", "kafka-user"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-user", "namespace": fixtures::NAMESPACE},
               "data": {"username": "dXNlcg=="}}),
    );
    cluster.reconcile().await;
    cluster.reconcile().await;
    let (status, message) = health(&cluster.object());
    assert_eq!(status, "Degraded", "stalled: only an edit helps");
    assert!(message.starts_with("InvalidSpec") && message.contains("password"), "{message}");
}

#[tokio::test]
async fn a_rolled_back_model_is_degraded_with_the_reason() {
    let cluster = Cluster::new(spec(), FakeBroker::reachable());
    cluster.reconcile().await;
    cluster.reconcile().await;
    cluster.server.mark_deployments_ready();
    cluster.reconcile().await;
    let mut object = cluster.object();
    assert_eq!(object["metadata"]["finalizers"][0], FINALIZER);
    object["status"]["conditions"].as_array_mut().unwrap().push(json!({
        "type": "RolledBack", "status": "True", "reason": "ErrorRateAboveThreshold",
        "message": "error rate 0.31 > 0.05", "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z"
    }));
    let (status, message) = health(&object);
    assert_eq!(status, "Degraded");
    assert!(message.contains("ErrorRateAboveThreshold: error rate 0.31 > 0.05"), "{message}");
}

#[test]
fn strings_reach_lua_intact() {
    let (status, message) = health(&json!({
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "True", "reason": "PipelineReady", "message": "quote \" backslash \\ newline\n ünïcode", "observedGeneration": 1}
        ]}
    }));
    assert_eq!(status, "Healthy");
    assert_eq!(message, "PipelineReady: quote \" backslash \\ newline\n ünïcode");
}
