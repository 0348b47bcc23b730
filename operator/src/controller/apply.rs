//! Server-side apply of one child, skipped when the child already holds what we would send.
//!
//! "Holds what we would send" is a semantic subset test: every field of the desired object is
//! present in the observed one with an equal value. Fields the API server or other controllers
//! add (defaults, status, annotations of their own) do not count; a field someone edited does,
//! and the next reconcile puts it back. Quantities compare by value (`1000m` = `1`), because the
//! API server rewrites them to canonical form.
//!
//! Some fields are the operator's only at creation ([`DesiredChild::create_only`], such as the
//! predictor's `replicas`): a missing object is created with them (a create, whose managed
//! fields are recorded under an `Update` operation), and later applies leave them out, so the
//! apply never owns them and never resets what their real owner set.
//!
//! A subset test alone cannot see a field the operator *stops* sending (a new operator version
//! whose builder drops a label, a limit or an annotation): the old value is still there, so the
//! observed object still holds everything desired. Every applied object therefore carries
//! [`APPLIED_HASH_ANNOTATION`], a digest of exactly what was sent; when the builders send
//! something else, the digest differs, the object is applied, and server-side apply removes the
//! fields the operator's field manager owned and no longer sends.

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::{Error, Result};

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "spikewatch-operator";

/// Annotation on every applied child: SHA-256 of the object the operator sent, without this
/// annotation (create-only fields excluded, so a later apply has the same digest as the create).
pub const APPLIED_HASH_ANNOTATION: &str = "spikewatch.io/applied-hash";

/// A desired child in untyped form, so one code path applies Deployments, ConfigMaps and
/// CRD-backed kinds (ServiceMonitor, KafkaTopic) alike.
#[derive(Debug, Clone)]
pub struct DesiredChild {
    pub resource: ApiResource,
    pub name: String,
    /// The whole object as JSON, with `apiVersion`, `kind` and `metadata`.
    pub object: Value,
    /// JSON pointers of fields sent only when the object is created.
    pub create_only: Vec<String>,
}

impl DesiredChild {
    pub fn from_typed<K>(object: &K) -> Result<DesiredChild>
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let mut value = serde_json::to_value(object).map_err(|source| Error::Serialization {
            kind: kind_of::<K>(),
            name: name.clone(),
            source,
        })?;
        // k8s-openapi types serialize without apiVersion/kind unless set; apply needs them.
        value["apiVersion"] = Value::String(K::api_version(&()).into_owned());
        value["kind"] = Value::String(K::kind(&()).into_owned());
        Ok(DesiredChild { resource: ApiResource::erase::<K>(&()), name, object: value, create_only: vec![] })
    }

    /// For kinds without Rust types (ServiceMonitor, PrometheusRule, KafkaTopic).
    pub fn from_dynamic_object(object: &DynamicObject, resource: ApiResource) -> Result<DesiredChild> {
        let name = object.metadata.name.clone().unwrap_or_default();
        let mut value = serde_json::to_value(object).map_err(|source| Error::Serialization {
            kind: "custom resource",
            name: name.clone(),
            source,
        })?;
        value["apiVersion"] = Value::String(resource.api_version.clone());
        value["kind"] = Value::String(resource.kind.clone());
        Ok(DesiredChild { resource, name, object: value, create_only: vec![] })
    }

    /// Marks fields (JSON pointers) as sent only at creation.
    pub fn with_create_only(mut self, pointers: &[&str]) -> DesiredChild {
        self.create_only = pointers.iter().map(|p| p.to_string()).collect();
        self
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    /// What later applies send: the object without its create-only fields, annotated with the
    /// digest of itself.
    pub fn apply_object(&self) -> Value {
        let mut object = self.sent_without_digest();
        let digest = applied_hash(&object);
        annotate(&mut object, digest);
        object
    }

    /// What a create sends: the whole object, with the digest later applies carry.
    fn create_object(&self) -> Value {
        let mut object = self.object.clone();
        annotate(&mut object, applied_hash(&self.sent_without_digest()));
        object
    }

    fn sent_without_digest(&self) -> Value {
        let mut object = self.object.clone();
        for pointer in &self.create_only {
            remove_pointer(&mut object, pointer);
        }
        object
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    // Only used in error messages; leaking a handful of kind names once is fine.
    Box::leak(K::kind(&()).into_owned().into_boxed_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Observed already matched: no request was sent.
    Unchanged,
    Created,
    Updated,
}

/// Applies `child` in `namespace` unless the observed object already matches.
/// Returns the outcome and the object as it is now (observed or as returned by the apply).
pub async fn apply_child(
    client: &Client,
    namespace: &str,
    child: &DesiredChild,
) -> Result<(ApplyOutcome, DynamicObject)> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &child.resource);
    let observed = api.get_opt(&child.name).await?;
    let object = child.apply_object();
    if let Some(observed) = &observed {
        let observed_json = serde_json::to_value(observed).map_err(|source| Error::Serialization {
            kind: "observed object",
            name: child.name.clone(),
            source,
        })?;
        if is_semantic_subset(&object, &observed_json) {
            return Ok((ApplyOutcome::Unchanged, observed.clone()));
        }
    } else if !child.create_only.is_empty() {
        let whole: DynamicObject = serde_json::from_value(child.create_object())
            .map_err(|source| Error::Serialization { kind: "desired object", name: child.name.clone(), source })?;
        let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        match api.create(&params, &whole).await {
            Ok(created) => return Ok((ApplyOutcome::Created, created)),
            // Created meanwhile (a concurrent reconcile): apply as to any existing object.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&child.name, &params, &Patch::Apply(&object)).await?;
    let outcome = if observed.is_some() { ApplyOutcome::Updated } else { ApplyOutcome::Created };
    Ok((outcome, applied))
}

/// SHA-256 (hex) of `object`. `serde_json` maps are ordered by key, so equal objects serialize
/// to equal bytes.
pub fn applied_hash(object: &Value) -> String {
    let bytes = serde_json::to_vec(object).unwrap_or_default();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn annotate(object: &mut Value, digest: String) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let annotations = metadata.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
    if !annotations.is_object() {
        *annotations = Value::Object(Default::default());
    }
    annotations[APPLIED_HASH_ANNOTATION] = Value::String(digest);
}

/// Removes the field at a JSON pointer, if present.
fn remove_pointer(object: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(map)) = object.pointer_mut(parent) {
        map.remove(last);
    }
}

/// Whether every field set in `desired` has an equal value in `observed`.
pub fn is_semantic_subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, value)| match have.get(key) {
            Some(seen) => is_semantic_subset(value, seen),
            None => is_empty(value),
        }),
        (Value::Object(_), Value::Null) | (Value::Array(_), Value::Null) => is_empty(desired),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| is_semantic_subset(w, h))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => a == b || quantities_equal(a, b),
        (Value::Null, _) => true,
        (a, b) => a == b,
    }
}

/// Empty lists, maps and nulls are dropped by the API server, so their absence matches.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.values().all(is_empty),
        _ => false,
    }
}

/// Compares two strings as Kubernetes quantities (`500m`, `0.5`, `1Gi`, `1024Mi`); false when
/// either is not a quantity.
fn quantities_equal(a: &str, b: &str) -> bool {
    match (parse_quantity(a), parse_quantity(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

fn parse_quantity(s: &str) -> Option<f64> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_added_fields_do_not_count_as_drift() {
        let desired = json!({"metadata": {"name": "a", "labels": {"app": "x"}}, "spec": {"replicas": 1}});
        let observed = json!({
            "metadata": {"name": "a", "labels": {"app": "x", "extra": "y"}, "uid": "1", "resourceVersion": "7"},
            "spec": {"replicas": 1, "revisionHistoryLimit": 10},
            "status": {"readyReplicas": 1}
        });
        assert!(is_semantic_subset(&desired, &observed));
    }

    #[test]
    fn an_edited_or_missing_field_is_drift() {
        let desired =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        let edited =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i:2"}]}}}});
        let missing = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        assert!(!is_semantic_subset(&desired, &edited));
        assert!(!is_semantic_subset(&desired, &missing));
    }

    #[test]
    fn canonicalized_quantities_and_dropped_empties_match() {
        let desired = json!({"cpu": "1000m", "memory": "1Gi", "args": [], "annotations": {}});
        let observed = json!({"cpu": "1", "memory": "1024Mi"});
        assert!(is_semantic_subset(&desired, &observed));
        assert!(!is_semantic_subset(&json!({"cpu": "500m"}), &json!({"cpu": "1"})));
        assert!(!is_semantic_subset(&json!({"image": "a"}), &json!({"image": "b"})));
    }

    #[test]
    fn create_only_fields_are_left_out_of_applies() {
        let child = DesiredChild {
            resource: ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            name: "p".into(),
            object: json!({"spec": {"replicas": 3, "template": {}}}),
            create_only: vec![],
        }
        .with_create_only(&["/spec/replicas", "/spec/absent"]);
        let applied = child.apply_object();
        assert_eq!(applied["spec"], json!({"template": {}}));
        assert_eq!(child.object["spec"]["replicas"], 3, "kept for the create");
        assert_eq!(child.create_object()["spec"]["replicas"], 3);
        assert_eq!(
            child.create_object()["metadata"]["annotations"][APPLIED_HASH_ANNOTATION],
            applied["metadata"]["annotations"][APPLIED_HASH_ANNOTATION],
            "a create carries the digest of what later applies send"
        );
    }

    fn config_map(data: Value) -> DesiredChild {
        DesiredChild {
            resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            name: "c".into(),
            object: json!({"metadata": {"name": "c", "annotations": {"team": "x"}}, "data": data}),
            create_only: vec![],
        }
    }

    #[test]
    fn the_digest_changes_when_a_field_is_dropped_or_added_and_only_then() {
        let digest =
            |child: &DesiredChild| child.apply_object()["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].clone();
        let base = config_map(json!({"a": "1", "b": "2"}));
        assert_eq!(digest(&base), digest(&config_map(json!({"b": "2", "a": "1"}))), "key order does not matter");
        assert_ne!(digest(&base), digest(&config_map(json!({"a": "1"}))), "a dropped field");
        assert_ne!(digest(&base), digest(&config_map(json!({"a": "1", "b": "2", "c": "3"}))), "an added field");
        assert_eq!(base.apply_object()["metadata"]["annotations"]["team"], "x", "other annotations are kept");
        // The object the digest describes is the one sent, without the digest itself.
        let mut sent = base.apply_object();
        sent["metadata"]["annotations"].as_object_mut().unwrap().remove(APPLIED_HASH_ANNOTATION);
        assert_eq!(digest(&base), json!(applied_hash(&sent)));
    }

    #[test]
    fn list_length_changes_are_drift() {
        assert!(!is_semantic_subset(&json!({"ports": [{"port": 1}]}), &json!({"ports": [{"port": 1}, {"port": 2}]})));
    }
}
