//! The API and predictor pods: where to reach them, and whether they are Ready.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::automation::PodReadiness;
use crate::automation::time::elapsed_seconds;
use crate::crd::{VolatilityPipeline, Workload};
use crate::desired::selector_labels;

/// One running pod of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingPod {
    pub name: String,
    pub workload: Workload,
    /// `http://<pod IP>:<port>`; `None` before the pod has an IP.
    pub base_url: Option<String>,
    /// Where its admin endpoints answer: the port named `admin` when the pod declares one (the
    /// admin endpoints listen apart), else [`Self::base_url`].
    pub admin_url: Option<String>,
    pub ready: bool,
    /// Since when the pod has not been Ready (its Ready condition's last transition, or its
    /// creation); `None` when Ready.
    pub not_ready_since: Option<Timestamp>,
}

impl ServingPod {
    /// `None` for a pod being deleted: it is on its way out and judged by nothing.
    pub fn from_pod(pod: &Pod, workload: Workload) -> Option<ServingPod> {
        if pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let status = pod.status.as_ref();
        let ready_condition =
            status.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        let ready = ready_condition.is_some_and(|c| c.status == "True");
        let not_ready_since = (!ready).then(|| {
            ready_condition
                .and_then(|c| c.last_transition_time.as_ref())
                .or(pod.metadata.creation_timestamp.as_ref())
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        });
        let named_port = |name: &str| {
            pod.spec.as_ref().and_then(|s| {
                s.containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|p| p.name.as_deref() == Some(name))
                    .map(|p| p.container_port)
            })
        };
        let ip = status.and_then(|s| s.pod_ip.as_deref()).filter(|ip| !ip.is_empty());
        let url = |port: i32| {
            ip.map(|ip| if ip.contains(':') { format!("http://[{ip}]:{port}") } else { format!("http://{ip}:{port}") })
        };
        let base_url = url(named_port(workload.port_name()).unwrap_or(workload.port()));
        let admin_url = named_port(Workload::ADMIN_PORT_NAME).map_or_else(|| base_url.clone(), url);
        Some(ServingPod {
            name: pod.metadata.name.clone().unwrap_or_default(),
            workload,
            base_url,
            admin_url,
            ready,
            not_ready_since,
        })
    }
}

/// The pods of `workload` of `vp`, from the Kubernetes API.
pub async fn list(
    client: &Client,
    vp: &VolatilityPipeline,
    namespace: &str,
    workload: Workload,
) -> Result<Vec<ServingPod>, kube::Error> {
    let selector =
        selector_labels(vp, workload.component()).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    Ok(list.items.iter().filter_map(|p| ServingPod::from_pod(p, workload)).collect())
}

/// Readiness of `pods` at `now`; `expected` is how many the Deployments ask for.
pub fn readiness(pods: &[ServingPod], expected: i32, now: Timestamp) -> PodReadiness {
    if pods.is_empty() {
        return if expected > 0 {
            PodReadiness::Unknown("no API or predictor pod exists yet".into())
        } else {
            PodReadiness::AllReady
        };
    }
    let not_ready: Vec<(&ServingPod, f64)> =
        pods.iter().filter_map(|p| p.not_ready_since.map(|since| (p, elapsed_seconds(since, now)))).collect();
    if not_ready.is_empty() {
        return PodReadiness::AllReady;
    }
    let seconds = not_ready.iter().map(|(_, s)| *s).fold(0.0, f64::max);
    let pods = not_ready.iter().map(|(p, s)| format!("{} for {s:.0} s", p.name)).collect::<Vec<_>>().join(", ");
    PodReadiness::NotReady { seconds, pods }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_ready_pod_with_a_named_port() {
        let p = pod(json!({
            "metadata": {"name": "x-api-1", "creationTimestamp": "2023-11-14T22:13:20Z"},
            "spec": {"containers": [{"name": "api", "ports": [{"name": "http", "containerPort": 18000}]}]},
            "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]}
        }));
        let serving = ServingPod::from_pod(&p, Workload::Api).unwrap();
        assert_eq!(serving.base_url.as_deref(), Some("http://10.0.0.7:18000"));
        assert_eq!(serving.admin_url, serving.base_url, "the admin endpoints beside the API");
        assert!(serving.ready);
        assert_eq!(readiness(&[serving], 1, at(0)), PodReadiness::AllReady);
    }

    #[test]
    fn a_pod_with_an_admin_port_is_switched_there() {
        let p = pod(json!({
            "metadata": {"name": "x-predictor-1"},
            "spec": {"containers": [{"name": "predictor", "ports": [
                {"name": "metrics", "containerPort": 8001}, {"name": "admin", "containerPort": 8002}]}]},
            "status": {"podIP": "10.0.0.8", "conditions": [{"type": "Ready", "status": "True"}]}
        }));
        let serving = ServingPod::from_pod(&p, Workload::Predictor).unwrap();
        assert_eq!(serving.base_url.as_deref(), Some("http://10.0.0.8:8001"));
        assert_eq!(serving.admin_url.as_deref(), Some("http://10.0.0.8:8002"));
    }

    #[test]
    fn not_ready_since_the_last_transition() {
        let p = pod(json!({
            "metadata": {"name": "x-predictor-1", "creationTimestamp": "2023-11-14T22:00:00Z"},
            "spec": {"containers": [{"name": "predictor"}]},
            "status": {"podIP": "fd00::7", "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2023-11-14T22:13:20Z"}]}
        }));
        let serving = ServingPod::from_pod(&p, Workload::Predictor).unwrap();
        assert_eq!(serving.base_url.as_deref(), Some("http://[fd00::7]:8001"), "default port, IPv6");
        match readiness(&[serving], 1, at(90)) {
            PodReadiness::NotReady { seconds, pods } => {
                assert_eq!(seconds, 90.0);
                assert_eq!(pods, "x-predictor-1 for 90 s");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pending_pods_count_from_creation_and_terminating_pods_not_at_all() {
        let pending = pod(json!({
            "metadata": {"name": "p", "creationTimestamp": "2023-11-14T22:13:20Z"},
            "status": {"phase": "Pending"}
        }));
        let serving = ServingPod::from_pod(&pending, Workload::Api).unwrap();
        assert_eq!(serving.base_url, None);
        assert!(matches!(readiness(&[serving], 1, at(30)), PodReadiness::NotReady { seconds, .. } if seconds == 30.0));
        let terminating = pod(json!({"metadata": {"name": "t", "deletionTimestamp": "2023-11-14T22:13:20Z"}}));
        assert_eq!(ServingPod::from_pod(&terminating, Workload::Api), None);
        assert!(matches!(readiness(&[], 2, at(0)), PodReadiness::Unknown(_)));
        assert_eq!(readiness(&[], 0, at(0)), PodReadiness::AllReady);
    }
}
