//! `topicManagement: strimzi`: the topics are `kafka.strimzi.io/v1beta2` `KafkaTopic` objects,
//! built from the spec like any other child and applied by the reconciler; Strimzi's topic
//! operator then talks to the brokers. This module reads their readiness back.

use kube::api::DynamicObject;

/// Whether a `KafkaTopic` reports `Ready=True` in its status conditions.
pub fn kafka_topic_ready(topic: &DynamicObject) -> bool {
    topic.data.pointer("/status/conditions").and_then(|c| c.as_array()).is_some_and(|conditions| {
        conditions.iter().any(|c| {
            c.get("type").and_then(|t| t.as_str()) == Some("Ready")
                && c.get("status").and_then(|s| s.as_str()) == Some("True")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;

    fn topic(status: serde_json::Value) -> DynamicObject {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "KafkaTopic"));
        DynamicObject::new("ticks.raw", &ar).data(serde_json::json!({ "status": status }))
    }

    #[test]
    fn ready_only_when_the_ready_condition_is_true() {
        assert!(kafka_topic_ready(&topic(serde_json::json!({"conditions": [{"type": "Ready", "status": "True"}]}))));
        assert!(!kafka_topic_ready(&topic(serde_json::json!({"conditions": [{"type": "Ready", "status": "False"}]}))));
        assert!(!kafka_topic_ready(&topic(serde_json::json!({}))));
    }
}
