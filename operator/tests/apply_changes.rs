//! What an apply of one child sends to the (mock) API server as the operator's builders change:
//! nothing while the object holds what they produce, one server-side apply when they add or
//! drop a field, and the dropped field is gone afterwards.

use kube::api::ApiResource;
use serde_json::{Value, json};
use spikewatch_operator::controller::apply::{APPLIED_HASH_ANNOTATION, ApplyOutcome, DesiredChild, apply_child};
use spikewatch_operator::fixtures::{self, ApiServer};

fn config_map(labels: Value, data: Value) -> DesiredChild {
    DesiredChild {
        resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        name: "settings".into(),
        object: json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": fixtures::NAMESPACE, "labels": labels},
            "data": data,
        }),
        create_only: vec![],
    }
}

fn path() -> String {
    format!("/api/v1/namespaces/{}/configmaps/settings", fixtures::NAMESPACE)
}

#[tokio::test]
async fn a_builder_that_drops_or_adds_a_field_writes_and_an_unchanged_one_does_not() {
    let (client, server) = ApiServer::start();
    let original = config_map(json!({"app": "spikewatch", "tier": "model"}), json!({"a": "1", "b": "2"}));

    let (outcome, _) = apply_child(&client, fixtures::NAMESPACE, &original).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::Created);
    server.forget_requests();

    let (outcome, _) = apply_child(&client, fixtures::NAMESPACE, &original).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::Unchanged);
    assert!(server.writes().is_empty(), "{:#?}", server.writes());

    // A new builder stops sending a label and a data key: the object still holds everything
    // desired (a subset test alone would send nothing), but it is no longer what was applied.
    let dropped = config_map(json!({"app": "spikewatch"}), json!({"a": "1"}));
    let (outcome, _) = apply_child(&client, fixtures::NAMESPACE, &dropped).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::Updated);
    assert_eq!(server.writes().len(), 1, "{:#?}", server.writes());
    let stored = server.get(&path()).unwrap();
    assert_eq!(stored["metadata"]["labels"], json!({"app": "spikewatch"}), "the dropped label is removed");
    assert_eq!(stored["data"], json!({"a": "1"}), "the dropped key is removed");
    assert_eq!(
        stored["metadata"]["annotations"][APPLIED_HASH_ANNOTATION],
        dropped.apply_object()["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    );
    server.forget_requests();

    let added = config_map(json!({"app": "spikewatch"}), json!({"a": "1", "c": "3"}));
    let (outcome, _) = apply_child(&client, fixtures::NAMESPACE, &added).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::Updated);
    assert_eq!(server.get(&path()).unwrap()["data"], json!({"a": "1", "c": "3"}));
    server.forget_requests();

    let (outcome, _) = apply_child(&client, fixtures::NAMESPACE, &added).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::Unchanged);
    assert!(server.writes().is_empty(), "converged again: {:#?}", server.writes());
}

#[tokio::test]
async fn fields_another_manager_set_survive_the_operators_applies() {
    let (client, server) = ApiServer::start();
    let child = config_map(json!({"app": "spikewatch"}), json!({"a": "1"}));
    apply_child(&client, fixtures::NAMESPACE, &child).await.unwrap();
    // Someone else adds a label with their own write; the operator's next (changed) apply keeps it.
    let mut edited = server.get(&path()).unwrap();
    edited["metadata"]["labels"]["owner"] = json!("platform-team");
    server.insert(&path(), edited);

    let changed = config_map(json!({"app": "spikewatch"}), json!({"a": "2"}));
    let (outcome, _) = apply_child(&client, fixtures::NAMESPACE, &changed).await.unwrap();
    assert_eq!(outcome, ApplyOutcome::Updated);
    let stored = server.get(&path()).unwrap();
    assert_eq!(stored["data"], json!({"a": "2"}));
    assert_eq!(stored["metadata"]["labels"]["owner"], "platform-team");
}
