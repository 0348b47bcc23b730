//! One Deployment per workload, running `spikewatch <subcommand> --config /etc/spikewatch/config.yaml`
//! in a pod hardened to the restricted Pod Security Standard.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretKeySelector,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config_map::workload_config_hash;
use super::ingestor_source::{downloads_recording, ingestor_args, recording_volume};
use super::meta::{
    CONFIG_DIR, CONFIG_HASH_ANNOTATION, CONFIG_PATH, admin_token_secret_name, child_meta, config_map_name, labels,
    selector_labels, service_account_name, workload_name,
};
use super::network_policy::admin_port_apart;
use super::{DesiredError, RenderOptions};
use crate::automation::effective_variant;
use crate::crd::{ScalingEngine, VolatilityPipeline, Workload};

/// UID and GID the workloads run as (the images' `USER 65532:65532`, by number: no such user exists in them).
pub const RUN_AS_USER: i64 = 65532;

/// Replicas of a workload's Deployment.
///
/// The ingestor never runs more than one pod. For the predictor this is only the count it is
/// created with (see [`CREATE_ONLY_FIELDS`]): with autoscaling on, the count the operator's
/// autoscaler recorded in `status.consumer.desiredReplicas` (KEDA: `minReplicas`), clamped to
/// `[minReplicas, maxReplicas]`; with it off, `workloads.predictor.replicas`.
pub fn desired_replicas(vp: &VolatilityPipeline, workload: Workload) -> i32 {
    let spec = &vp.spec;
    let configured = spec.workloads.get(workload).replicas;
    match workload {
        Workload::Ingestor => configured.min(1),
        Workload::Predictor if spec.autoscaling.enabled => {
            let (min, max) =
                (spec.autoscaling.min_replicas, spec.autoscaling.max_replicas.max(spec.autoscaling.min_replicas));
            let decided = match spec.autoscaling.engine {
                ScalingEngine::Operator => {
                    vp.status.as_ref().and_then(|s| s.consumer.as_ref()).map(|c| c.desired_replicas)
                }
                ScalingEngine::Keda => None,
            };
            decided.unwrap_or(min).clamp(min, max)
        }
        _ => configured,
    }
}

/// Fields of a workload's Deployment sent only when the operator creates it, never in later
/// applies, so that their owner is whoever changes them next. The predictor's `replicas` belong
/// to its scaler: the operator's autoscaler (through the scale subresource, under its own field
/// manager), KEDA's HPA, or a person with `kubectl scale`; an apply that carried them would
/// fight that owner.
pub fn create_only_fields(workload: Workload) -> &'static [&'static str] {
    match workload {
        Workload::Predictor => CREATE_ONLY_FIELDS,
        _ => &[],
    }
}

/// JSON pointers of the predictor Deployment's create-only fields.
pub const CREATE_ONLY_FIELDS: &[&str] = &["/spec/replicas"];

/// Where the admin token Secret is mounted in the API and predictor pods.
pub const ADMIN_TOKEN_DIR: &str = "/etc/spikewatch-admin";
/// The token file the workloads read (`api.admin_token_file`).
pub const ADMIN_TOKEN_PATH: &str = "/etc/spikewatch-admin/token";
/// Key of the token in the admin token Secret.
pub const ADMIN_TOKEN_KEY: &str = "token";

/// Whether a workload serves `POST /admin/variant` (the rollback lever).
pub fn has_admin_endpoint(workload: Workload) -> bool {
    matches!(workload, Workload::Predictor | Workload::Api)
}

/// The workload image `repository:tag`: the spec's tag, else the operator's configured default.
/// Never the operator's own version: upgrading the operator must not restart the pipelines.
pub fn workload_image(vp: &VolatilityPipeline, options: &RenderOptions) -> Result<String, DesiredError> {
    let image = &vp.spec.image;
    let tag = image.tag.as_deref().or(options.default_image_tag.as_deref()).ok_or(DesiredError::InvalidSpec(
        "image.tag is unset and the operator has no default workload image tag \
             (set spec.image.tag, or the operator's --workload-image-tag: the chart value workloadImage.tag)",
    ))?;
    Ok(format!("{}:{tag}", image.repository))
}

/// The Deployment of `workload`.
pub fn desired_deployment(
    vp: &VolatilityPipeline,
    workload: Workload,
    options: &RenderOptions,
) -> Result<Deployment, DesiredError> {
    let component = workload.component();
    let image = workload_image(vp, options)?;
    let hash = workload_config_hash(vp, workload)?;
    let strategy = match workload {
        // Two ingestors would publish every tick twice: stop the old pod before starting the new one.
        Workload::Ingestor => DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None },
        // Keep serving while rolling: bring a new API pod up before taking an old one down.
        Workload::Api => DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        },
        _ => DeploymentStrategy { type_: Some("RollingUpdate".into()), rolling_update: None },
    };
    Ok(Deployment {
        metadata: child_meta(vp, workload_name(vp, workload), component)?,
        spec: Some(DeploymentSpec {
            replicas: Some(desired_replicas(vp, workload)),
            revision_history_limit: Some(3),
            selector: LabelSelector { match_labels: Some(selector_labels(vp, component)), match_expressions: None },
            strategy: Some(strategy),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(vp, component)),
                    annotations: Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_string(), hash)])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(vp, workload, image)),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

fn pod_spec(vp: &VolatilityPipeline, workload: Workload, image: String) -> PodSpec {
    let spec = vp.spec.workloads.get(workload);
    // A downloaded recording lands in /tmp; the downloader refuses anything larger than 200 MiB.
    let tmp_size = if workload == Workload::Ingestor && downloads_recording(vp) { "256Mi" } else { "64Mi" };
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource { name: config_map_name(vp), ..Default::default() }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource { size_limit: Some(Quantity(tmp_size.into())), medium: None }),
            ..Volume::default()
        },
    ];
    if has_admin_endpoint(workload) {
        volumes.push(Volume {
            name: "admin-token".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(admin_token_secret_name(vp)),
                items: Some(vec![KeyToPath { key: ADMIN_TOKEN_KEY.into(), path: "token".into(), mode: None }]),
                default_mode: Some(0o440),
                optional: None,
            }),
            ..Volume::default()
        });
    }
    if workload == Workload::Ingestor
        && let Some((volume, _)) = recording_volume(vp)
    {
        volumes.push(volume);
    }
    if let Some(secret) = kafka_ca_secret(vp, workload) {
        volumes.push(Volume {
            name: "kafka-ca".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.to_string()),
                items: Some(vec![KeyToPath { key: "ca.crt".into(), path: "ca.crt".into(), mode: None }]),
                default_mode: Some(0o444),
                optional: None,
            }),
            ..Volume::default()
        });
    }
    PodSpec {
        service_account_name: Some(service_account_name(vp)),
        // The workloads never talk to the Kubernetes API.
        automount_service_account_token: Some(false),
        // No `<SERVICE>_HOST`/`_PORT` variables of the namespace's Services: a Service named
        // `kafka` would inject KAFKA_* variables, the prefix of the workloads' own overrides.
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_USER),
            fs_group: Some(RUN_AS_USER),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        node_selector: spec.node_selector.clone(),
        tolerations: spec.tolerations.clone(),
        termination_grace_period_seconds: Some(30),
        containers: vec![container(vp, workload, image)],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

fn container(vp: &VolatilityPipeline, workload: Workload, image: String) -> Container {
    let spec = vp.spec.workloads.get(workload);
    let mut mounts = vec![
        VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        },
        VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() },
    ];
    if has_admin_endpoint(workload) {
        mounts.push(VolumeMount {
            name: "admin-token".into(),
            mount_path: ADMIN_TOKEN_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    if workload == Workload::Ingestor
        && let Some((_, mount)) = recording_volume(vp)
    {
        mounts.push(mount);
    }
    if kafka_ca_secret(vp, workload).is_some() {
        mounts.push(VolumeMount {
            name: "kafka-ca".into(),
            // Beside, not inside, the ConfigMap volume: a mount point cannot be created in a read-only volume.
            mount_path: "/etc/spikewatch-kafka".into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    let env = env(vp, workload);
    Container {
        name: workload.component().into(),
        image: Some(image),
        image_pull_policy: Some(vp.spec.image.pull_policy.as_str().into()),
        command: Some(vec!["spikewatch".into()]),
        args: Some(match workload {
            Workload::Ingestor => ingestor_args(vp),
            _ => vec![workload.subcommand().into(), "--config".into(), CONFIG_PATH.into()],
        }),
        env: (!env.is_empty()).then_some(env),
        ports: Some(ports(vp, workload)),
        liveness_probe: Some(liveness_probe(workload)),
        readiness_probe: Some(http_probe(workload, "/health", 3)),
        resources: spec.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// The workload's port, and the admin port when the admin endpoints listen apart.
fn ports(vp: &VolatilityPipeline, workload: Workload) -> Vec<ContainerPort> {
    let port = |name: &str, number: i32| ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    };
    let mut ports = vec![port(workload.port_name(), workload.port())];
    if has_admin_endpoint(workload) && admin_port_apart(vp) {
        ports.push(port(Workload::ADMIN_PORT_NAME, Workload::ADMIN_PORT));
    }
    ports
}

/// Environment of a workload: the model variant for the model users (the effective one: a
/// rolled-back pipeline starts new pods on the baseline), the SASL credentials (from the auth
/// Secret, never from the ConfigMap) for the Kafka clients.
///
/// Each variable is set under its `SPIKEWATCH_` name and under the name images before the prefix
/// read ([`LEGACY_ENV_NAMES`]): a pipeline may pin such an image, and a workload that finds the
/// prefixed name ignores the other one without a warning.
fn env(vp: &VolatilityPipeline, workload: Workload) -> Vec<EnvVar> {
    let mut env = vec![];
    if matches!(workload, Workload::Predictor | Workload::Api) {
        push_env(&mut env, "SPIKEWATCH_MODEL_VARIANT", Some(effective_variant(vp).as_str().into()), None);
    }
    if has_admin_endpoint(workload) && admin_port_apart(vp) {
        // An environment variable, not a config key: an image that does not know it still starts.
        push_env(&mut env, "SPIKEWATCH_ADMIN_BIND", Some(format!("0.0.0.0:{}", Workload::ADMIN_PORT)), None);
    }
    let kafka = &vp.spec.kafka;
    if let (true, Some(secret)) = (uses_kafka(workload) && kafka.security_protocol.uses_sasl(), &kafka.auth_secret_ref)
    {
        for (var, key) in
            [("SPIKEWATCH_KAFKA_SASL_USERNAME", "username"), ("SPIKEWATCH_KAFKA_SASL_PASSWORD", "password")]
        {
            let source = EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.name.clone(),
                    key: key.into(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            };
            push_env(&mut env, var, None, Some(source));
        }
    }
    env
}

/// The names the workloads read before the `SPIKEWATCH_` prefix, set too for images that
/// predate it. Drop them once no supported image needs them.
pub const LEGACY_ENV_NAMES: [(&str, &str); 4] = [
    ("SPIKEWATCH_MODEL_VARIANT", "MODEL_VARIANT"),
    ("SPIKEWATCH_ADMIN_BIND", "ADMIN_BIND"),
    ("SPIKEWATCH_KAFKA_SASL_USERNAME", "KAFKA_SASL_USERNAME"),
    ("SPIKEWATCH_KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD"),
];

fn push_env(env: &mut Vec<EnvVar>, name: &str, value: Option<String>, value_from: Option<EnvVarSource>) {
    env.push(EnvVar { name: name.into(), value: value.clone(), value_from: value_from.clone() });
    if let Some((_, legacy)) = LEGACY_ENV_NAMES.iter().find(|(new, _)| *new == name) {
        env.push(EnvVar { name: (*legacy).into(), value, value_from });
    }
}

/// The API answers HTTP requests and does not consume or produce Kafka events.
fn uses_kafka(workload: Workload) -> bool {
    workload != Workload::Api
}

fn kafka_ca_secret(vp: &VolatilityPipeline, workload: Workload) -> Option<&str> {
    let kafka = &vp.spec.kafka;
    match (&kafka.auth_secret_ref, kafka.ca_from_secret && uses_kafka(workload)) {
        (Some(secret), true) => Some(&secret.name),
        _ => None,
    }
}

/// The ingestor is ready only once its first tick is out (`/health`), which can take a while on
/// a quiet market or an unreachable feed; restarting it then would not help, so its liveness is
/// the metrics endpoint answering. The other workloads are live while healthy.
fn liveness_probe(workload: Workload) -> Probe {
    match workload {
        Workload::Ingestor => http_probe(workload, "/metrics", 6),
        _ => http_probe(workload, "/health", 6),
    }
}

fn http_probe(workload: Workload, path: &str, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(workload.port_name().into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(5),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }
}
