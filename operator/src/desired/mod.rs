//! Desired state: pure functions from a `VolatilityPipeline` to the objects that realize it.
//!
//! One module per child kind. Nothing here talks to the cluster; the reconciler applies what
//! these functions return (server-side apply, field manager [`MANAGER`]) and decides, from
//! discovery, whether the Strimzi and Prometheus Operator objects can be applied at all.

mod config_map;
mod dashboard;
mod deployment;
mod ingestor_source;
mod kafka_topic;
mod meta;
mod network_policy;
mod pod_disruption_budget;
mod prometheus_rule;
pub mod promql;
mod scaled_object;
mod service;
mod service_account;
mod service_monitor;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, DynamicObject};

pub use crate::crd::Workload;
pub use config_map::{
    KAFKA_CA_PATH, config_hash, desired_config, desired_config_map, desired_config_value, desired_config_yaml,
    workload_config_hash,
};
pub use dashboard::{GRAFANA_DASHBOARD_LABEL, dashboard_file, dashboard_json, desired_dashboard};
pub use deployment::{
    ADMIN_TOKEN_DIR, ADMIN_TOKEN_KEY, ADMIN_TOKEN_PATH, CREATE_ONLY_FIELDS, RUN_AS_USER, create_only_fields,
    desired_deployment, desired_replicas, has_admin_endpoint, workload_image,
};
pub use ingestor_source::{RECORDING_DIR, RECORDING_VOLUME, ingestor_args};
pub use kafka_topic::{
    KafkaTopicVersion, STRIMZI_MANAGED_ANNOTATION, TOPICS_COMPONENT, desired_kafka_topics, kafka_topic_object_name,
    kafka_topic_resource, kafka_topic_retain_patch,
};
pub use meta::{
    CONFIG_DIR, CONFIG_HASH_ANNOTATION, CONFIG_KEY, CONFIG_PATH, MANAGER, MONITORING_COMPONENT, PIPELINE_COMPONENT,
    admin_token_secret_name, child_meta, config_map_name, labels, owner_reference, pipeline_selector_labels,
    selector_labels, service_account_name, workload_name,
};
pub use network_policy::{admin_port_apart, desired_network_policy};
pub use pod_disruption_budget::{PDB_MIN_API_REPLICAS, desired_pod_disruption_budget};
pub use prometheus_rule::{
    CONSUMER_LAG_SLO_SECONDS, ERROR_RATE_SLO, P95_LATENCY_SLO_SECONDS, desired_prometheus_rule, prometheus_rule_file,
    prometheus_rule_groups, prometheus_rule_resource,
};
pub use promql::{api_error_ratio, api_latency_quantile, consumer_lag_by_service, series_selector};
pub use scaled_object::{
    desired_scaled_object, desired_trigger_authentication, scaled_object_resource, trigger_authentication_name,
    trigger_authentication_resource,
};
pub use service::desired_service;
pub use service_account::desired_service_account;
pub use service_monitor::{desired_service_monitor, desired_service_monitors, service_monitor_resource};

/// Why desired state could not be built. All of these are problems of the object, not of the
/// cluster: retrying without a change does not help.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DesiredError {
    /// The pipeline lacks metadata every child needs (objects read from the API always have it).
    #[error("pipeline has no {0}")]
    MissingMetadata(&'static str),
    /// The API server accepted the spec but it cannot be realized.
    #[error("invalid spec: {0}")]
    InvalidSpec(&'static str),
    #[error("cannot serialize desired object: {0}")]
    Serialize(String),
}

/// What the builders need besides the pipeline: what the cluster serves and how the operator
/// is configured. The running operator fills it from discovery and its flags; `render` from
/// its own flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Version of Strimzi's `KafkaTopic` API to write.
    pub kafka_topic_version: KafkaTopicVersion,
    /// Workload image tag of pipelines that do not set `spec.image.tag` (the operator's
    /// `--workload-image-tag`). `None`: such a pipeline cannot be rendered.
    pub default_image_tag: Option<String>,
    /// Namespace the operator runs in: the only peer of the admin port of a pipeline with
    /// `networkPolicy.adminFromOperatorOnly`. `None`: such a pipeline cannot be rendered.
    pub operator_namespace: Option<String>,
}

/// Which prerequisite a child needs in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildGroup {
    /// Built-in kinds: always applicable.
    Core,
    /// Strimzi `KafkaTopic`s: need the `kafka.strimzi.io` CRDs.
    Topics,
    /// ServiceMonitors, PrometheusRule, dashboard: need the `monitoring.coreos.com` CRDs
    /// (the dashboard ConfigMap is reported under monitoring too).
    Monitoring,
    /// KEDA `ScaledObject` and `TriggerAuthentication` (`autoscaling.engine: keda`): need the
    /// `keda.sh` CRDs.
    Keda,
}

/// Every child of a pipeline, typed.
#[derive(Clone, Debug)]
pub struct DesiredState {
    pub service_account: ServiceAccount,
    pub config_map: ConfigMap,
    /// In [`Workload::ALL`] order.
    pub deployments: Vec<Deployment>,
    /// In [`Workload::ALL`] order.
    pub services: Vec<Service>,
    /// Only for an API of [`PDB_MIN_API_REPLICAS`] or more pods.
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    pub network_policy: NetworkPolicy,
    /// Empty unless `kafka.topicManagement` is `strimzi`.
    pub kafka_topics: Vec<DynamicObject>,
    pub service_monitors: Vec<DynamicObject>,
    pub prometheus_rule: Option<DynamicObject>,
    pub dashboard: Option<ConfigMap>,
    /// Only with `autoscaling.engine: keda`.
    pub scaled_object: Option<DynamicObject>,
    /// Only with `autoscaling.engine: keda` and a Kafka auth Secret.
    pub trigger_authentication: Option<DynamicObject>,
    /// The `KafkaTopic` API version `kafka_topics` are written in.
    pub kafka_topic_version: KafkaTopicVersion,
}

/// One child, type-erased for a generic server-side apply through `Api<DynamicObject>`.
#[derive(Clone, Debug)]
pub struct DesiredObject {
    pub resource: ApiResource,
    pub object: DynamicObject,
    pub group: ChildGroup,
}

/// Builds every child of `vp`.
pub fn desired_state(
    vp: &crate::crd::VolatilityPipeline,
    options: &RenderOptions,
) -> Result<DesiredState, DesiredError> {
    Ok(DesiredState {
        service_account: desired_service_account(vp)?,
        config_map: desired_config_map(vp)?,
        deployments: Workload::ALL.iter().map(|w| desired_deployment(vp, *w, options)).collect::<Result<_, _>>()?,
        services: Workload::ALL.iter().map(|w| desired_service(vp, *w)).collect::<Result<_, _>>()?,
        pod_disruption_budget: desired_pod_disruption_budget(vp)?,
        network_policy: desired_network_policy(vp, options)?,
        kafka_topics: desired_kafka_topics(vp, options.kafka_topic_version)?,
        service_monitors: desired_service_monitors(vp)?,
        prometheus_rule: desired_prometheus_rule(vp)?,
        dashboard: desired_dashboard(vp)?,
        scaled_object: desired_scaled_object(vp)?,
        trigger_authentication: desired_trigger_authentication(vp)?,
        kafka_topic_version: options.kafka_topic_version,
    })
}

fn erase<K>(object: &K, group: ChildGroup) -> Result<DesiredObject, DesiredError>
where
    K: kube::Resource<DynamicType = ()> + serde::Serialize,
{
    let value = serde_json::to_value(object).map_err(|e| DesiredError::Serialize(e.to_string()))?;
    let object = serde_json::from_value(value).map_err(|e| DesiredError::Serialize(e.to_string()))?;
    Ok(DesiredObject { resource: ApiResource::erase::<K>(&()), object, group })
}

fn dynamic(object: &DynamicObject, resource: ApiResource, group: ChildGroup) -> DesiredObject {
    DesiredObject { resource, object: object.clone(), group }
}

impl DesiredState {
    /// Every child, in apply order: identity and config before the pods that use them, topics
    /// before the workloads that need them, monitoring last.
    pub fn objects(&self) -> Result<Vec<DesiredObject>, DesiredError> {
        let mut out = vec![erase(&self.service_account, ChildGroup::Core)?, erase(&self.config_map, ChildGroup::Core)?];
        out.extend(
            self.kafka_topics
                .iter()
                .map(|t| dynamic(t, kafka_topic_resource(self.kafka_topic_version), ChildGroup::Topics)),
        );
        for service in &self.services {
            out.push(erase(service, ChildGroup::Core)?);
        }
        for deployment in &self.deployments {
            out.push(erase(deployment, ChildGroup::Core)?);
        }
        if let Some(budget) = &self.pod_disruption_budget {
            out.push(erase(budget, ChildGroup::Core)?);
        }
        out.push(erase(&self.network_policy, ChildGroup::Core)?);
        out.extend(
            self.service_monitors.iter().map(|m| dynamic(m, service_monitor_resource(), ChildGroup::Monitoring)),
        );
        if let Some(rule) = &self.prometheus_rule {
            out.push(dynamic(rule, prometheus_rule_resource(), ChildGroup::Monitoring));
        }
        if let Some(dashboard) = &self.dashboard {
            out.push(erase(dashboard, ChildGroup::Monitoring)?);
        }
        if let Some(auth) = &self.trigger_authentication {
            out.push(dynamic(auth, trigger_authentication_resource(), ChildGroup::Keda));
        }
        if let Some(scaled) = &self.scaled_object {
            out.push(dynamic(scaled, scaled_object_resource(), ChildGroup::Keda));
        }
        Ok(out)
    }
}

/// Every child of `vp`, type-erased, in apply order.
pub fn desired_objects(
    vp: &crate::crd::VolatilityPipeline,
    options: &RenderOptions,
) -> Result<Vec<DesiredObject>, DesiredError> {
    desired_state(vp, options)?.objects()
}
