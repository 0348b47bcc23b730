//! Which optional APIs the cluster serves: the Prometheus Operator's `monitoring.coreos.com`
//! (ServiceMonitor, PodMonitor, PrometheusRule), Strimzi's `kafka.strimzi.io` (KafkaTopic) and
//! KEDA's `keda.sh` (ScaledObject, TriggerAuthentication).
//! Looked up at start and refreshed periodically, so installing the CRDs later is picked up
//! without restarting the operator.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::discovery::ApiGroup;
use tokio::sync::RwLock;

pub const MONITORING_GROUP: &str = "monitoring.coreos.com";
pub const STRIMZI_GROUP: &str = "kafka.strimzi.io";
pub const KEDA_GROUP: &str = "keda.sh";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// ServiceMonitor and PrometheusRule are served.
    pub monitoring: bool,
    /// KafkaTopic is served.
    pub strimzi: bool,
    /// ScaledObject and TriggerAuthentication are served.
    pub keda: bool,
}

impl Capabilities {
    pub fn all() -> Self {
        Capabilities {
            monitoring: true,
            strimzi: true,
            keda: true,
        }
    }
}

pub type SharedCapabilities = Arc<RwLock<Capabilities>>;

fn serves(group: &ApiGroup, kinds: &[&str]) -> bool {
    kinds
        .iter()
        .all(|kind| group.recommended_kind(kind).is_some())
}

/// One discovery round. A group the API server does not know is "not served"; other errors
/// (network) are returned so the caller keeps its last answer.
pub async fn discover(client: &Client) -> Result<Capabilities, kube::Error> {
    Ok(Capabilities {
        monitoring: group_serves(
            client,
            MONITORING_GROUP,
            &["ServiceMonitor", "PrometheusRule"],
        )
        .await?,
        strimzi: group_serves(client, STRIMZI_GROUP, &["KafkaTopic"]).await?,
        keda: group_serves(client, KEDA_GROUP, &["ScaledObject", "TriggerAuthentication"]).await?,
    })
}

async fn group_serves(client: &Client, group: &str, kinds: &[&str]) -> Result<bool, kube::Error> {
    match kube::discovery::group(client, group).await {
        Ok(group) => Ok(serves(&group, kinds)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        // `group()` reports an unknown group as a missing-resource error rather than a 404.
        Err(kube::Error::Discovery(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Refreshes `shared` every `period` until the task is dropped.
pub async fn refresh_periodically(client: Client, shared: SharedCapabilities, period: Duration) {
    loop {
        match discover(&client).await {
            Ok(found) => {
                let mut current = shared.write().await;
                if *current != found {
                    tracing::info!(
                        monitoring = found.monitoring,
                        strimzi = found.strimzi,
                        keda = found.keda,
                        "optional APIs changed"
                    );
                    *current = found;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "API discovery failed; keeping the previous answer")
            }
        }
        tokio::time::sleep(period).await;
    }
}
