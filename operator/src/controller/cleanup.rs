//! What happens when a pipeline is deleted, before its finalizer is removed.
//!
//! Children are garbage-collected through their owner references; the topics are not Kubernetes
//! objects (Admin API mode) or must outlive the pipeline (`Retain` with Strimzi), so:
//!
//! | policy | admin | strimzi |
//! |---|---|---|
//! | `Retain` | nothing | mark the KafkaTopics `strimzi.io/managed: "false"`; GC deletes the objects, the topics stay |
//! | `Delete` | delete the topics through the Admin API | let GC delete the KafkaTopics; Strimzi deletes the topics |

use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::error::Result;
use super::{Context, events, topics};
use crate::crd::{DeletionPolicy, TopicManagement, VolatilityPipeline};
use crate::desired;

pub async fn cleanup(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<Action> {
    ctx.forget(vp);
    let kafka = &vp.spec.kafka;
    match (kafka.deletion_policy, kafka.topic_management) {
        (DeletionPolicy::Retain, TopicManagement::Admin) => {
            events::normal(&ctx.recorder, vp, "TopicsRetained", "Cleanup", "deletionPolicy Retain: topics kept".into())
                .await;
        }
        (DeletionPolicy::Delete, TopicManagement::Admin) => {
            let connection = topics::connection(vp, ctx, namespace).await?;
            let names: Vec<String> = kafka.topics.names().iter().map(|n| n.to_string()).collect();
            if let Err(e) = ctx.topic_admin.delete(&connection, &names).await {
                events::warning(&ctx.recorder, vp, e.reason(), "Cleanup", format!("cannot delete topics yet: {e}"))
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
                "deletionPolicy Delete: the KafkaTopics are garbage-collected with the pipeline".into(),
            )
            .await;
        }
        (DeletionPolicy::Retain, TopicManagement::Strimzi) => {
            release_kafka_topics(vp, ctx, namespace).await?;
            events::normal(
                &ctx.recorder,
                vp,
                "TopicsRetained",
                "Cleanup",
                "deletionPolicy Retain: Strimzi released the topics (strimzi.io/managed=false)".into(),
            )
            .await;
        }
    }
    Ok(Action::await_change())
}

/// Tells Strimzi to let go of the pipeline's topics (`strimzi.io/managed: "false"`): garbage
/// collection then deletes the KafkaTopic objects, and the Kafka topics stay.
async fn release_kafka_topics(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<()> {
    let capabilities = ctx.capabilities.read().await.clone();
    if !capabilities.strimzi {
        return Ok(());
    }
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        namespace,
        &desired::kafka_topic_resource(capabilities.kafka_topic_version),
    );
    let uid = vp.uid().unwrap_or_default();
    let patch = desired::kafka_topic_retain_patch();
    for topic in api.list(&ListParams::default()).await? {
        let owned = topic.owner_references().iter().any(|o| o.uid == uid);
        let released =
            topic.annotations().get(desired::STRIMZI_MANAGED_ANNOTATION).map(String::as_str) == Some("false");
        if owned && !released {
            api.patch(&topic.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
    }
    Ok(())
}
