//! Strimzi `KafkaTopic` objects, for `kafka.topicManagement: strimzi`.
//!
//! The object name must be a DNS subdomain while Kafka topic names may hold `_` and capitals,
//! so the topic name goes into `spec.topicName` and the object gets a sanitized name.

use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use super::DesiredError;
use super::config_map::config_hash;
use super::meta::child_meta;
use crate::crd::{TopicManagement, VolatilityPipeline};

/// Component label of the topics.
pub const TOPICS_COMPONENT: &str = "topics";

/// The version of Strimzi's `KafkaTopic` API the operator writes: `v1` where the cluster serves
/// it (Strimzi 0.49 and later; `v1beta2` is deprecated there), else `v1beta2`. The fields the
/// operator sets (`topicName`, `partitions`, `replicas`, `config`) are the same in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KafkaTopicVersion {
    #[default]
    V1Beta2,
    V1,
}

impl KafkaTopicVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaTopicVersion::V1Beta2 => "v1beta2",
            KafkaTopicVersion::V1 => "v1",
        }
    }
}

impl std::str::FromStr for KafkaTopicVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v1beta2" => Ok(KafkaTopicVersion::V1Beta2),
            "v1" => Ok(KafkaTopicVersion::V1),
            other => Err(format!("unknown KafkaTopic version {other:?} (expected v1 or v1beta2)")),
        }
    }
}

/// `kafka.strimzi.io/<version>` `KafkaTopic`.
pub fn kafka_topic_resource(version: KafkaTopicVersion) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kafka.strimzi.io", version.as_str(), "KafkaTopic"),
        "kafkatopics",
    )
}

/// Name of the `KafkaTopic` object of `topic`: `<pipeline>-<topic>` lowercased, characters
/// outside `[a-z0-9.-]` replaced by `-`; a short hash is appended when that changed the name,
/// so two topics differing only in such characters never collide.
pub fn kafka_topic_object_name(vp: &VolatilityPipeline, topic: &str) -> String {
    let sanitized: String = topic
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
        .collect();
    let sanitized = sanitized.trim_matches(|c| c == '-' || c == '.');
    if sanitized == topic {
        format!("{}-{sanitized}", vp.name_any())
    } else {
        format!("{}-{sanitized}-{}", vp.name_any(), &config_hash(topic)[..8])
    }
}

/// One `KafkaTopic` per topic when Strimzi manages topics; none otherwise.
pub fn desired_kafka_topics(
    vp: &VolatilityPipeline,
    version: KafkaTopicVersion,
) -> Result<Vec<DynamicObject>, DesiredError> {
    let kafka = &vp.spec.kafka;
    if kafka.topic_management != TopicManagement::Strimzi {
        return Ok(vec![]);
    }
    let cluster = kafka
        .strimzi_cluster
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(DesiredError::InvalidSpec("kafka.strimziCluster is required when topicManagement is strimzi"))?;
    let resource = kafka_topic_resource(version);
    kafka
        .topics
        .names()
        .into_iter()
        .map(|topic| {
            let mut metadata = child_meta(vp, kafka_topic_object_name(vp, topic), TOPICS_COMPONENT)?;
            metadata.labels.get_or_insert_default().insert("strimzi.io/cluster".into(), cluster.into());
            let mut object = DynamicObject::new("", &resource).data(json!({
                "spec": {
                    "topicName": topic,
                    "partitions": kafka.partitions,
                    "replicas": kafka.replication_factor,
                    "config": { "retention.ms": kafka.retention_ms },
                }
            }));
            object.metadata = metadata;
            Ok(object)
        })
        .collect()
}

/// Strimzi annotation: `"false"` makes the topic operator let go of a topic, and deleting the
/// `KafkaTopic` afterwards leaves the Kafka topic in place.
pub const STRIMZI_MANAGED_ANNOTATION: &str = "strimzi.io/managed";

/// Merge patch applied to each `KafkaTopic` before a pipeline with `deletionPolicy: Retain` is
/// deleted: garbage collection then removes the objects but the topics and their events stay.
pub fn kafka_topic_retain_patch() -> serde_json::Value {
    json!({ "metadata": { "annotations": { STRIMZI_MANAGED_ANNOTATION: "false" } } })
}
