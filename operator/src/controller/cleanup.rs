//! What happens when a pipeline is deleted, before its finalizer is removed.
//!
//! Children are garbage-collected through their owner references; the topics are not Kubernetes
//! objects (Admin API mode) or must outlive the pipeline (`Retain` with Strimzi), so:
//!
//! | policy | admin | strimzi |
//! |---|---|---|
//! | `Retain` | nothing | orphan the KafkaTopics (drop owner references) so GC keeps them |
//! | `Delete` | delete the topics through the Admin API | let GC delete the KafkaTopics; Strimzi deletes the topics |

use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::error::Result;
use super::{Context, events, topics};
use crate::crd::{DeletionPolicy, TopicManagement, VolatilityPipeline};

pub async fn cleanup(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<Action> {
    let kafka = &vp.spec.kafka;
    match (kafka.deletion_policy, kafka.topic_management) {
        (DeletionPolicy::Retain, TopicManagement::Admin) => {
            events::normal(
                &ctx.recorder,
                vp,
                "TopicsRetained",
                "Cleanup",
                "deletionPolicy Retain: topics kept".into(),
            )
            .await;
        }
        (DeletionPolicy::Delete, TopicManagement::Admin) => {
            let connection = topics::connection(vp, ctx, namespace).await?;
            let names: Vec<String> = kafka.topics.names().iter().map(|n| n.to_string()).collect();
            if let Err(e) = ctx.topic_admin.delete(&connection, &names).await {
                events::warning(
                    &ctx.recorder,
                    vp,
                    e.reason(),
                    "Cleanup",
                    format!("cannot delete topics yet: {e}"),
                )
                .await;
                return Err(e.into());
            }
            events::normal(
                &ctx.recorder,
                vp,
                "TopicsDeleted",
                "Cleanup",
                format!("deleted topics {}", names.join(", ")),
            )
            .await;
        }
        (DeletionPolicy::Delete, TopicManagement::Strimzi) => {
            events::normal(
                &ctx.recorder,
                vp,
                "TopicsDeleted",
                "Cleanup",
                "deletionPolicy Delete: the KafkaTopics are garbage-collected with the pipeline"
                    .into(),
            )
            .await;
        }
        (DeletionPolicy::Retain, TopicManagement::Strimzi) => {
            orphan_kafka_topics(vp, ctx, namespace).await?;
            events::normal(
                &ctx.recorder,
                vp,
                "TopicsRetained",
                "Cleanup",
                "deletionPolicy Retain: KafkaTopics orphaned".into(),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

/// Removes the owner references of the pipeline's KafkaTopics so garbage collection keeps them.
async fn orphan_kafka_topics(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
) -> Result<()> {
    if !ctx.capabilities.read().await.strimzi {
        return Ok(());
    }
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "KafkaTopic"),
        "kafkatopics",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let uid = vp.uid().unwrap_or_default();
    for topic in api.list(&ListParams::default()).await? {
        if topic.owner_references().iter().any(|o| o.uid == uid) {
            let kept: Vec<_> = topic
                .owner_references()
                .iter()
                .filter(|o| o.uid != uid)
                .cloned()
                .collect();
            let patch = json!({ "metadata": { "ownerReferences": kept } });
            api.patch(
                &topic.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
    }
    Ok(())
}
