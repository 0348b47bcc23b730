//! KEDA objects for `autoscaling.engine: keda`: a `ScaledObject` scaling the predictor on the
//! lag of its consumer group (KEDA's Apache Kafka scaler, trigger type `kafka`), and, when the
//! brokers need credentials, a `TriggerAuthentication` reading them from the pipeline's auth
//! Secret. KEDA's HPA then owns the predictor's `replicas`.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use super::DesiredError;
use super::config_map::desired_config;
use super::meta::{child_meta, workload_name};
use crate::crd::{ScalingEngine, VolatilityPipeline, Workload};

/// `keda.sh/v1alpha1` `ScaledObject`.
pub fn scaled_object_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"), "scaledobjects")
}

/// `keda.sh/v1alpha1` `TriggerAuthentication`.
pub fn trigger_authentication_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "TriggerAuthentication"),
        "triggerauthentications",
    )
}

fn wants_keda(vp: &VolatilityPipeline) -> bool {
    vp.spec.autoscaling.enabled && vp.spec.autoscaling.engine == ScalingEngine::Keda
}

/// Name of the TriggerAuthentication.
pub fn trigger_authentication_name(vp: &VolatilityPipeline) -> String {
    format!("{}-kafka", workload_name(vp, Workload::Predictor))
}

/// KEDA's `sasl` value for the spec's mechanism.
fn keda_sasl(vp: &VolatilityPipeline) -> Option<&'static str> {
    if !vp.spec.kafka.security_protocol.uses_sasl() {
        return None;
    }
    Some(match vp.spec.kafka.sasl_mechanism.map(|m| m.as_str()) {
        Some("PLAIN") => "plaintext",
        Some("SCRAM-SHA-256") => "scram_sha256",
        _ => "scram_sha512",
    })
}

/// The ScaledObject, or `None` unless `autoscaling` is enabled with `engine: keda`.
pub fn desired_scaled_object(vp: &VolatilityPipeline) -> Result<Option<DynamicObject>, DesiredError> {
    if !wants_keda(vp) {
        return Ok(None);
    }
    let spec = &vp.spec.autoscaling;
    let predictor = workload_name(vp, Workload::Predictor);
    let config = desired_config(vp);
    let mut metadata = json!({
        // KEDA's operator runs in its own namespace too: the same qualified names.
        "bootstrapServers": config.kafka.bootstrap_servers,
        "consumerGroup": config.kafka.predictor_group_id,
        "topic": vp.spec.kafka.topics.features,
        "lagThreshold": spec.lag_per_replica.to_string(),
        // The predictor starts from the earliest offset when its group has committed nothing.
        "offsetResetPolicy": "earliest",
        "allowIdleConsumers": "false",
    });
    if let Some(sasl) = keda_sasl(vp) {
        metadata["sasl"] = json!(sasl);
    }
    if vp.spec.kafka.security_protocol.uses_tls() {
        metadata["tls"] = json!("enable");
    }
    let mut trigger = json!({ "type": "kafka", "metadata": metadata });
    if vp.spec.kafka.auth_secret_ref.is_some() {
        trigger["authenticationRef"] = json!({ "name": trigger_authentication_name(vp) });
    }
    let mut object = DynamicObject::new("", &scaled_object_resource()).data(json!({
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": predictor },
            "minReplicaCount": spec.min_replicas,
            "maxReplicaCount": spec.max_replicas,
            "pollingInterval": spec.polling_interval_seconds,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": { "stabilizationWindowSeconds": spec.stabilization_window_seconds },
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{ "type": "Pods", "value": spec.max_scale_up_step, "periodSeconds": spec.polling_interval_seconds }],
                        },
                    }
                }
            },
            "triggers": [trigger],
        }
    }));
    object.metadata = child_meta(vp, predictor, Workload::Predictor.component())?;
    Ok(Some(object))
}

/// The TriggerAuthentication, or `None` unless KEDA scales and the spec names an auth Secret.
pub fn desired_trigger_authentication(vp: &VolatilityPipeline) -> Result<Option<DynamicObject>, DesiredError> {
    let Some(secret) = vp.spec.kafka.auth_secret_ref.as_ref().filter(|_| wants_keda(vp)) else {
        return Ok(None);
    };
    let mut targets: Vec<Value> = vec![];
    if vp.spec.kafka.security_protocol.uses_sasl() {
        for key in ["username", "password"] {
            targets.push(json!({ "parameter": key, "name": secret.name, "key": key }));
        }
    }
    if vp.spec.kafka.ca_from_secret {
        targets.push(json!({ "parameter": "ca", "name": secret.name, "key": "ca.crt" }));
    }
    let mut object = DynamicObject::new("", &trigger_authentication_resource())
        .data(json!({ "spec": { "secretTargetRef": targets } }));
    object.metadata = child_meta(vp, trigger_authentication_name(vp), Workload::Predictor.component())?;
    Ok(Some(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pipeline_from;

    #[test]
    fn nothing_unless_keda_scales() {
        let vp = pipeline_from(json!({"products": ["BTC-USD"], "kafka": {"bootstrapServers": "k:9092"},
            "autoscaling": {"enabled": true}}));
        assert_eq!(desired_scaled_object(&vp).unwrap(), None);
    }

    #[test]
    fn the_kafka_trigger_reads_the_predictor_group() {
        let vp = pipeline_from(json!({
            "products": ["BTC-USD"],
            "kafka": {"bootstrapServers": "k:9093", "partitions": 6, "securityProtocol": "SASL_SSL",
                      "saslMechanism": "SCRAM-SHA-256", "authSecretRef": {"name": "creds"}, "caFromSecret": true},
            "autoscaling": {"enabled": true, "engine": "keda", "minReplicas": 2, "maxReplicas": 6, "lagPerReplica": 500}
        }));
        let object = desired_scaled_object(&vp).unwrap().unwrap();
        let spec = &object.data["spec"];
        assert_eq!(spec["scaleTargetRef"]["name"], "test-predictor");
        assert_eq!((spec["minReplicaCount"].as_i64(), spec["maxReplicaCount"].as_i64()), (Some(2), Some(6)));
        let trigger = &spec["triggers"][0];
        assert_eq!(trigger["type"], "kafka");
        assert_eq!(trigger["metadata"]["consumerGroup"], "spikewatch.testns.test.predictor");
        assert_eq!(trigger["metadata"]["lagThreshold"], "500");
        assert_eq!(trigger["metadata"]["sasl"], "scram_sha256");
        assert_eq!(trigger["metadata"]["tls"], "enable");
        assert_eq!(trigger["authenticationRef"]["name"], "test-predictor-kafka");
        let auth = desired_trigger_authentication(&vp).unwrap().unwrap();
        let params: Vec<&str> = auth.data["spec"]["secretTargetRef"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["parameter"].as_str().unwrap())
            .collect();
        assert_eq!(params, ["username", "password", "ca"]);
    }
}
