//! The topics step: make the pipeline's three topics exist before any workload starts.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::Context;
use super::error::{Error, Result};
use super::status::Check;
use crate::crd::{KafkaSpec, VolatilityPipeline};
use crate::topics::{KafkaAuth, KafkaConnection, TopicReport, TopicSpec};

/// The topics the spec asks for, in data-flow order.
pub fn desired_topics(kafka: &KafkaSpec) -> Vec<TopicSpec> {
    kafka
        .topics
        .names()
        .iter()
        .map(|name| TopicSpec {
            name: name.to_string(),
            partitions: kafka.partitions,
            replication_factor: kafka.replication_factor,
            retention_ms: Some(kafka.retention_ms),
        })
        .collect()
}

/// Bootstrap servers and, when the spec references a Secret, the credentials in it.
pub async fn connection(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<KafkaConnection> {
    let kafka = &vp.spec.kafka;
    // The operator runs in its own namespace: a short Service name is the pipeline namespace's.
    let bootstrap_servers = kafka.bootstrap_servers_in(namespace);
    let Some(secret_ref) = &kafka.auth_secret_ref else {
        return Ok(KafkaConnection::plaintext(bootstrap_servers));
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = secrets.get_opt(&secret_ref.name).await?.ok_or_else(|| {
        Error::MissingSecret(format!(
            "Secret {namespace}/{} (spec.kafka.authSecretRef) does not exist",
            secret_ref.name
        ))
    })?;
    let mechanism = kafka.sasl_mechanism.map(|m| m.as_str());
    let mut auth = KafkaAuth::from_secret(&secret, mechanism).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let secret_name = &secret_ref.name;
    if kafka.ca_from_secret && auth.ca_pem.is_none() {
        return Err(Error::InvalidSpec(format!(
            "spec.kafka.caFromSecret is true but Secret {secret_name} has no ca.crt key"
        )));
    }
    if kafka.security_protocol.uses_sasl() && auth.username.is_none() {
        return Err(Error::InvalidSpec(format!(
            "spec.kafka.securityProtocol {} needs username and password keys in Secret {secret_name}",
            kafka.security_protocol.as_config_str().to_ascii_uppercase()
        )));
    }
    // The spec decides what is used: a Secret may hold a CA the spec does not ask to trust,
    // or SASL credentials for a PLAINTEXT listener.
    if !kafka.ca_from_secret {
        auth.ca_pem = None;
    }
    if !kafka.security_protocol.uses_sasl() {
        auth.username = None;
        auth.password = None;
    }
    auth.security_protocol = Some(kafka.security_protocol.as_config_str().to_ascii_uppercase());
    Ok(KafkaConnection { bootstrap_servers, auth: Some(auth) })
}

/// Describes a successful `ensure` for the TopicsReady condition.
pub fn topics_check(report: &TopicReport, desired: &[TopicSpec]) -> Check {
    let names: Vec<&str> = desired.iter().map(|t| t.name.as_str()).collect();
    if report.shrink_refused.is_empty() {
        Check::ok("TopicsReady", format!("topics {} exist", names.join(", ")))
    } else {
        let refused: Vec<String> = report.shrink_refused.iter().map(ToString::to_string).collect();
        // The topics work; the spec asks for something Kafka cannot do, which the message says.
        Check::ok("PartitionShrinkRefused", refused.join("; "))
    }
}
