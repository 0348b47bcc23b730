//! Which optional APIs the cluster serves: the Prometheus Operator's `monitoring.coreos.com`
//! (ServiceMonitor, PrometheusRule), Strimzi's `kafka.strimzi.io` (KafkaTopic, in `v1` from
//! Strimzi 0.49 on, else `v1beta2`) and KEDA's `keda.sh` (ScaledObject, TriggerAuthentication).
//! Looked up at start and refreshed periodically, so installing the CRDs later is picked up
//! without restarting the operator.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::discovery::ApiGroup;
use tokio::sync::RwLock;

use crate::desired::KafkaTopicVersion;

pub const MONITORING_GROUP: &str = "monitoring.coreos.com";
pub const STRIMZI_GROUP: &str = "kafka.strimzi.io";
pub const KEDA_GROUP: &str = "keda.sh";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// ServiceMonitor and PrometheusRule are served.
    pub monitoring: bool,
    /// KafkaTopic is served.
    pub strimzi: bool,
    /// The newest KafkaTopic version served (meaningful when `strimzi`).
    pub kafka_topic_version: KafkaTopicVersion,
    /// ScaledObject and TriggerAuthentication are served.
    pub keda: bool,
}

impl Capabilities {
    pub fn all() -> Self {
        Capabilities { monitoring: true, strimzi: true, kafka_topic_version: KafkaTopicVersion::V1Beta2, keda: true }
    }
}

pub type SharedCapabilities = Arc<RwLock<Capabilities>>;

fn serves(group: &ApiGroup, kinds: &[&str]) -> bool {
    kinds.iter().all(|kind| group.recommended_kind(kind).is_some())
}

/// The KafkaTopic version to write: `v1` when that version serves KafkaTopic, else `v1beta2`.
/// Decided on the versions themselves, not on the group's preferred version, which Strimzi keeps
/// at `v1beta2` for a while after `v1` is served.
fn kafka_topic_version(group: &ApiGroup) -> Option<KafkaTopicVersion> {
    let serves_in =
        |version: &str| group.versioned_resources(version).iter().any(|(resource, _)| resource.kind == "KafkaTopic");
    if serves_in("v1") {
        Some(KafkaTopicVersion::V1)
    } else if serves_in("v1beta2") {
        Some(KafkaTopicVersion::V1Beta2)
    } else {
        None
    }
}

/// One discovery round. A group the API server does not know is "not served"; other errors
/// (network) are returned so the caller keeps its last answer.
pub async fn discover(client: &Client) -> Result<Capabilities, kube::Error> {
    let monitoring = find_group(client, MONITORING_GROUP).await?;
    let strimzi = find_group(client, STRIMZI_GROUP).await?;
    let keda = find_group(client, KEDA_GROUP).await?;
    let kafka_topic_version = strimzi.as_ref().and_then(kafka_topic_version);
    Ok(Capabilities {
        monitoring: monitoring.is_some_and(|g| serves(&g, &["ServiceMonitor", "PrometheusRule"])),
        strimzi: kafka_topic_version.is_some(),
        kafka_topic_version: kafka_topic_version.unwrap_or_default(),
        keda: keda.is_some_and(|g| serves(&g, &["ScaledObject", "TriggerAuthentication"])),
    })
}

async fn find_group(client: &Client, group: &str) -> Result<Option<ApiGroup>, kube::Error> {
    match kube::discovery::group(client, group).await {
        Ok(group) => Ok(Some(group)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        // `group()` reports an unknown group as a missing-resource error rather than a 404.
        Err(kube::Error::Discovery(_)) => Ok(None),
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
                        kafka_topic_version = found.kafka_topic_version.as_str(),
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
