//! Behaviour of the desired-state builders: what every child must carry, what each spec
//! setting changes, and validation of every built object against the Kubernetes schemas.

#[path = "common/pipelines.rs"]
mod pipelines;
#[path = "common/validate.rs"]
mod validate;

use k8s_openapi::api::apps::v1::Deployment;
use spikewatch_operator::crd::{VolatilityPipeline, Workload, qualify_bootstrap_servers};
use spikewatch_operator::desired::*;
use spikewatch_types::config::Config;

fn minimal() -> VolatilityPipeline {
    pipelines::parse(pipelines::MINIMAL)
}

fn external() -> VolatilityPipeline {
    pipelines::parse(&pipelines::example("pipeline.yaml"))
}

fn strimzi() -> VolatilityPipeline {
    pipelines::parse(&pipelines::example("pipeline-strimzi.yaml"))
}

#[test]
fn every_built_object_and_the_crd_validate_against_kubernetes_schemas() {
    let mut documents = vec![];
    for (fixture, vp) in pipelines::all() {
        for (i, desired) in desired_objects(&vp, &pipelines::options()).unwrap().into_iter().enumerate() {
            let name = format!("{fixture}-{i:02}-{}.yaml", desired.resource.kind.to_lowercase());
            documents.push((name, serde_yaml::to_string(&desired.object).unwrap()));
        }
    }
    documents.push(("crd.yaml".into(), spikewatch_operator::crdgen::crd_yaml()));
    for example in ["pipeline.yaml", "pipeline-strimzi.yaml"] {
        documents.push((format!("example-{example}"), pipelines::example(example)));
    }
    validate::assert_kubernetes_valid(
        &documents,
        &[
            "ServiceMonitor",
            "PrometheusRule",
            "KafkaTopic",
            "VolatilityPipeline",
            "ScaledObject",
            "TriggerAuthentication",
        ],
    );
}

#[test]
fn every_child_is_labelled_and_owned_by_the_pipeline() {
    for (fixture, vp) in pipelines::all() {
        for desired in desired_objects(&vp, &pipelines::options()).unwrap() {
            let meta = &desired.object.metadata;
            let what = format!("{fixture}: {} {:?}", desired.resource.kind, meta.name);
            assert_eq!(meta.namespace, vp.metadata.namespace, "{what}");
            let labels = meta.labels.as_ref().expect("labels");
            assert_eq!(labels["app.kubernetes.io/name"], "spikewatch", "{what}");
            assert_eq!(&labels["app.kubernetes.io/instance"], vp.metadata.name.as_ref().unwrap(), "{what}");
            assert_eq!(labels["app.kubernetes.io/managed-by"], "spikewatch-operator", "{what}");
            assert_eq!(labels["app.kubernetes.io/part-of"], "spikewatch", "{what}");
            assert!(labels.contains_key("app.kubernetes.io/component"), "{what}");
            let owners = meta.owner_references.as_ref().expect("owner references");
            assert_eq!(owners.len(), 1, "{what}");
            let owner = &owners[0];
            assert_eq!(owner.uid, pipelines::UID, "{what}");
            assert_eq!(owner.kind, "VolatilityPipeline");
            assert_eq!(owner.api_version, "spikewatch.io/v1alpha1");
            assert_eq!(owner.controller, Some(true), "{what}");
            assert_eq!(owner.block_owner_deletion, Some(true), "{what}");
        }
    }
}

#[test]
fn a_pipeline_without_uid_or_namespace_is_an_error_not_a_panic() {
    let mut vp = minimal();
    vp.metadata.uid = None;
    assert_eq!(desired_config_map(&vp).unwrap_err(), DesiredError::MissingMetadata("metadata.uid"));
    let mut vp = minimal();
    vp.metadata.namespace = None;
    assert_eq!(
        desired_state(&vp, &pipelines::options()).unwrap_err(),
        DesiredError::MissingMetadata("metadata.namespace")
    );
}

fn pod_spec(d: &Deployment) -> &k8s_openapi::api::core::v1::PodSpec {
    d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

#[test]
fn pods_meet_the_restricted_pod_security_standard() {
    for (fixture, vp) in pipelines::all() {
        for workload in Workload::ALL {
            let deployment = desired_deployment(&vp, workload, &pipelines::options()).unwrap();
            let pod = pod_spec(&deployment);
            let what = format!("{fixture}/{workload}");
            let psc = pod.security_context.as_ref().unwrap();
            assert_eq!(psc.run_as_non_root, Some(true), "{what}");
            assert_eq!(psc.run_as_user, Some(65532), "{what}");
            assert_eq!(psc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault", "{what}");
            assert_eq!(pod.automount_service_account_token, Some(false), "{what}");
            assert!(pod.host_network.is_none() && pod.host_pid.is_none() && pod.host_ipc.is_none(), "{what}");
            for c in &pod.containers {
                let sc = c.security_context.as_ref().unwrap();
                assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
                assert_eq!(sc.read_only_root_filesystem, Some(true), "{what}");
                assert_eq!(sc.privileged, None, "{what}");
                let caps = sc.capabilities.as_ref().unwrap();
                assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]), "{what}");
                assert!(caps.add.is_none(), "{what}");
                let tmp = c.volume_mounts.as_ref().unwrap().iter().find(|m| m.mount_path == "/tmp");
                assert!(tmp.is_some(), "{what}: a writable /tmp next to the read-only root");
            }
            for volume in pod.volumes.as_ref().unwrap() {
                assert!(volume.host_path.is_none(), "{what}: restricted forbids hostPath");
            }
        }
    }
}

#[test]
fn workloads_run_their_subcommand_with_the_mounted_config_and_probes_on_their_port() {
    let vp = external();
    for workload in Workload::ALL {
        let deployment = desired_deployment(&vp, workload, &pipelines::options()).unwrap();
        let pod = pod_spec(&deployment);
        let c = &pod.containers[0];
        assert_eq!(c.command.as_deref(), Some(&["spikewatch".to_string()][..]));
        assert_eq!(
            c.args.as_deref().unwrap(),
            [workload.subcommand(), "--config", "/etc/spikewatch/config.yaml"].map(String::from)
        );
        assert_eq!(
            c.image.as_deref(),
            Some(format!("ghcr.io/spikewatch/spikewatch:{}", pipelines::DEFAULT_IMAGE_TAG).as_str())
        );
        let port = c.ports.as_ref().unwrap()[0].container_port;
        assert_eq!(port, if workload == Workload::Api { 8000 } else { 8001 });
        // The ingestor is ready after its first tick, which may take a while; it is alive as
        // long as it serves its metrics.
        let live = if workload == Workload::Ingestor { "/metrics" } else { "/health" };
        for (probe, path) in
            [(c.liveness_probe.as_ref().unwrap(), live), (c.readiness_probe.as_ref().unwrap(), "/health")]
        {
            let get = probe.http_get.as_ref().unwrap();
            assert_eq!(get.path.as_deref(), Some(path));
            let named = c.ports.as_ref().unwrap()[0].name.clone().unwrap();
            assert_eq!(get.port, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(named));
        }
        let config_mount = c.volume_mounts.as_ref().unwrap().iter().find(|m| m.name == "config").unwrap();
        assert_eq!(config_mount.mount_path, "/etc/spikewatch");
        assert_eq!(c.resources, vp.spec.workloads.get(workload).resources);
    }
}

fn ingestor(vp: &VolatilityPipeline) -> k8s_openapi::api::core::v1::PodSpec {
    pod_spec(&desired_deployment(vp, Workload::Ingestor, &pipelines::options()).unwrap()).clone()
}

fn with_source(source: serde_json::Value) -> VolatilityPipeline {
    let mut vp = minimal();
    vp.spec.source = serde_json::from_value(source).expect("source parses");
    vp
}

#[test]
fn a_replay_source_runs_the_ingestor_as_a_looping_replay_of_its_recording() {
    let config = "/etc/spikewatch/config.yaml";
    // A ConfigMap key, mounted read-only.
    let pod = ingestor(&pipelines::parse(pipelines::REPLAY));
    let c = &pod.containers[0];
    assert_eq!(
        c.args.as_deref().unwrap(),
        [
            "replay",
            "--loop",
            "--speed",
            "10",
            "--input",
            "/var/lib/spikewatch/recording/btc-usd-2026-04-06.csv.gz",
            "--config",
            config
        ]
    );
    let volume = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == RECORDING_VOLUME).unwrap();
    let config_map = volume.config_map.as_ref().unwrap();
    assert_eq!(config_map.name, "btc-recording");
    assert_eq!(config_map.items.as_ref().unwrap()[0].key, "btc-usd-2026-04-06.csv.gz");
    let mount = c.volume_mounts.as_ref().unwrap().iter().find(|m| m.name == RECORDING_VOLUME).unwrap();
    assert_eq!((mount.mount_path.as_str(), mount.read_only), (RECORDING_DIR, Some(true)));
    assert_eq!(c.image.as_deref(), Some("ghcr.io/spikewatch/spikewatch:2026.04.1"), "the spec's tag wins");

    // A file on a PersistentVolumeClaim, read-only.
    let pod = ingestor(&with_source(serde_json::json!({"type": "replay", "replay": {"speed": "max",
        "recording": {"persistentVolumeClaim": {"claimName": "recordings", "path": "btc/2026-04-06.csv.gz"}}}})));
    let args = pod.containers[0].args.clone().unwrap();
    assert_eq!(
        args[..6],
        ["replay", "--loop", "--speed", "max", "--input", "/var/lib/spikewatch/recording/btc/2026-04-06.csv.gz"]
    );
    let claim = pod.volumes.as_ref().unwrap().iter().find_map(|v| v.persistent_volume_claim.clone()).unwrap();
    assert_eq!((claim.claim_name.as_str(), claim.read_only), ("recordings", Some(true)));

    // A URL: no volume, downloaded into a larger scratch volume.
    let url = "https://recordings.example.com/btc-usd.ndjson.gz";
    let pod = ingestor(&with_source(serde_json::json!({"type": "replay", "replay": {"recording": {"url": url}}})));
    assert_eq!(pod.containers[0].args.clone().unwrap()[..6], ["replay", "--loop", "--speed", "1", "--input", url]);
    assert!(pod.volumes.as_ref().unwrap().iter().all(|v| v.name != RECORDING_VOLUME));
    let tmp = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "tmp").unwrap();
    assert_eq!(tmp.empty_dir.as_ref().unwrap().size_limit.as_ref().unwrap().0, "256Mi");

    // No recording: the one bundled in the image.
    let pod = ingestor(&with_source(serde_json::json!({"type": "replay"})));
    assert_eq!(pod.containers[0].args.clone().unwrap(), ["replay", "--loop", "--speed", "1", "--config", config]);

    // The live feed, and the other workloads whatever the source.
    assert_eq!(ingestor(&minimal()).containers[0].args.clone().unwrap(), ["ingest", "--config", config]);
    let replay = pipelines::parse(pipelines::REPLAY);
    for workload in [Workload::Featurizer, Workload::Predictor, Workload::Api] {
        let d = desired_deployment(&replay, workload, &pipelines::options()).unwrap();
        assert_eq!(pod_spec(&d).containers[0].args.clone().unwrap()[0], workload.subcommand());
    }
}

#[test]
fn the_workload_image_tag_is_the_specs_or_the_operators_configured_one_never_its_version() {
    let mut vp = minimal();
    let configured = RenderOptions { default_image_tag: Some("2026.01".into()), ..RenderOptions::default() };
    assert_eq!(workload_image(&vp, &configured).unwrap(), "ghcr.io/spikewatch/spikewatch:2026.01");
    vp.spec.image.tag = Some("pinned-7".into());
    assert_eq!(workload_image(&vp, &configured).unwrap(), "ghcr.io/spikewatch/spikewatch:pinned-7");
    let unconfigured = RenderOptions::default();
    assert_eq!(workload_image(&vp, &unconfigured).unwrap(), "ghcr.io/spikewatch/spikewatch:pinned-7");
    vp.spec.image.tag = None;
    let error = desired_state(&vp, &unconfigured).unwrap_err();
    assert!(error.to_string().contains("image.tag"), "{error}");
}

#[test]
fn kafka_topics_are_written_in_the_version_the_cluster_serves() {
    let vp = strimzi();
    for (version, api_version) in
        [(KafkaTopicVersion::V1, "kafka.strimzi.io/v1"), (KafkaTopicVersion::V1Beta2, "kafka.strimzi.io/v1beta2")]
    {
        let options = RenderOptions { kafka_topic_version: version, ..pipelines::options() };
        let objects = desired_objects(&vp, &options).unwrap();
        let topics: Vec<_> = objects.iter().filter(|o| o.resource.kind == "KafkaTopic").collect();
        assert_eq!(topics.len(), 3);
        for topic in topics {
            assert_eq!(topic.resource.api_version, api_version);
            assert_eq!(topic.object.types.as_ref().unwrap().api_version, api_version);
            assert_eq!(topic.object.data["spec"]["partitions"], 3, "the same fields in both versions");
        }
    }
}

#[test]
fn the_ingestor_runs_alone_and_is_recreated_not_rolled() {
    let mut vp = minimal();
    vp.spec.workloads.ingestor.replicas = 5; // bypassing the CRD's CEL rule
    let deployment = desired_deployment(&vp, Workload::Ingestor, &pipelines::options()).unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
    vp.spec.workloads.ingestor.replicas = 0;
    assert_eq!(
        desired_deployment(&vp, Workload::Ingestor, &pipelines::options()).unwrap().spec.unwrap().replicas,
        Some(0),
        "0 pauses ingestion"
    );
}

/// Each workload's pods carry the hash of the config sections that workload reads.
fn config_hashes(vp: &VolatilityPipeline) -> Vec<String> {
    Workload::ALL
        .iter()
        .map(|w| {
            let d = desired_deployment(vp, *w, &pipelines::options()).unwrap();
            d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()[CONFIG_HASH_ANNOTATION].clone()
        })
        .collect()
}

/// Which workloads (in `Workload::ALL` order: ingestor, featurizer, predictor, api) a change rolls.
fn rolled(before: &[String], after: &[String]) -> Vec<&'static str> {
    Workload::ALL
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| b != a)
        .map(|(w, _)| w.component())
        .collect()
}

#[test]
fn a_config_change_rolls_the_workloads_that_read_it_and_nothing_else_rolls_any() {
    let vp = minimal();
    let before = config_hashes(&vp);
    assert!(before.iter().all(|h| h.len() == 64), "{before:?}");

    let mut replicas_changed = vp.clone();
    replicas_changed.spec.workloads.featurizer.replicas = 2;
    assert_eq!(rolled(&before, &config_hashes(&replicas_changed)), Vec::<&str>::new(), "replicas are not config");

    let mut model_changed = vp.clone();
    model_changed.spec.model.source_uri = "https://models.example.com/spikewatch-gbdt/2/".into();
    assert_eq!(rolled(&before, &config_hashes(&model_changed)), ["predictor", "api"], "a new model");
    let mut threshold_changed = vp.clone();
    threshold_changed.spec.model.threshold = Some(0.4);
    assert_eq!(rolled(&before, &config_hashes(&threshold_changed)), ["predictor", "api"]);

    let mut products_changed = vp.clone();
    products_changed.spec.products.push("ETH-USD".into());
    assert_eq!(rolled(&before, &config_hashes(&products_changed)), ["ingestor"], "what the ingestor subscribes to");

    let mut broker_changed = vp.clone();
    broker_changed.spec.kafka.bootstrap_servers = "kafka-2.kafka:9092".into();
    assert_eq!(rolled(&before, &config_hashes(&broker_changed)), ["ingestor", "featurizer", "predictor", "api"]);
}

#[test]
fn the_config_map_holds_what_the_spec_sets_and_what_the_operator_must_add_and_no_default() {
    let text = desired_config_map(&minimal()).unwrap().data.unwrap()["config.yaml"].clone();
    let file: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value.as_object() {
            Some(map) => map.iter().for_each(|(k, v)| leaves(&format!("{prefix}{k}."), v, out)),
            None => out.push(prefix.trim_end_matches('.').to_string()),
        }
    }
    let mut keys = vec![];
    leaves("", &file, &mut keys);
    assert_eq!(
        keys,
        [
            "api.admin_token_file",
            "api.bind",
            "feed.kind",
            "feed.products",
            "kafka.bootstrap_servers",
            "kafka.create_topics",
            "kafka.featurizer_group_id",
            "kafka.predictor_group_id",
            "kafka.security.protocol",
            "kafka.topics.features",
            "kafka.topics.predictions",
            "kafka.topics.raw",
            "metrics.bind",
            "model.source",
            "model.variant",
        ],
        "{text}"
    );
    let (config, unknown) = Config::from_yaml_reporting_unknown(&text).unwrap();
    assert_eq!(unknown, Vec::<String>::new(), "every key is one the workloads know");
    assert_eq!(config.features, Config::default().features, "the workloads' own defaults apply");
}

#[test]
fn the_config_map_is_the_workloads_own_config_format() {
    let vp = external();
    let cm = desired_config_map(&vp).unwrap();
    let config = Config::from_yaml(&cm.data.unwrap()["config.yaml"]).expect("the workloads accept the file");
    assert_eq!(config, desired_config(&vp));
    assert_eq!(config.feed.products, ["BTC-USD", "ETH-USD"]);
    assert_eq!(
        config.kafka.bootstrap_servers,
        qualify_bootstrap_servers(&vp.spec.kafka.bootstrap_servers, "spikewatch"),
        "the name the operator connects to"
    );
    assert!(!config.kafka.create_topics, "the operator owns the topics");
    assert_eq!(config.kafka.partitions, Config::default().kafka.partitions, "only used to create topics");
    assert_eq!(config.kafka.security.protocol.as_deref(), Some("sasl_ssl"));
    assert_eq!(config.kafka.security.sasl_mechanism.as_deref(), Some("SCRAM-SHA-512"));
    assert_eq!(config.kafka.security.ssl_ca_location.as_deref(), Some(KAFKA_CA_PATH));
    assert_eq!(config.kafka.security.sasl_username, None, "credentials never go into a ConfigMap");
    assert_eq!(config.kafka.security.sasl_password, None);
    assert_eq!(config.model.source, "models:/spikewatch-gbdt@champion");
    assert_eq!(config.model.threshold, Some(0.7));
    assert_eq!(config.kafka.predictor_group_id, "spikewatch.spikewatch.btc-eth.predictor");
}

#[test]
fn a_short_broker_name_is_qualified_with_the_pipelines_namespace_in_the_config() {
    let vp = minimal();
    assert_eq!(vp.spec.kafka.bootstrap_servers, "kafka:9092");
    assert_eq!(desired_config(&vp).kafka.bootstrap_servers, "kafka.default.svc:9092");
}

#[test]
fn kafka_credentials_come_from_the_auth_secret() {
    let vp = external();
    for workload in Workload::ALL {
        let deployment = desired_deployment(&vp, workload, &pipelines::options()).unwrap();
        let pod = pod_spec(&deployment);
        let env = pod.containers[0].env.clone().unwrap_or_default();
        let secret_keys: Vec<(String, String, String)> = env
            .iter()
            .filter_map(|e| {
                let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some((e.name.clone(), r.name.clone(), r.key.clone()))
            })
            .collect();
        let ca_volume = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "kafka-ca");
        if workload == Workload::Api {
            assert!(secret_keys.is_empty(), "the API does not talk to Kafka");
            assert!(ca_volume.is_none());
        } else {
            assert_eq!(
                secret_keys,
                [
                    ("SPIKEWATCH_KAFKA_SASL_USERNAME".into(), "kafka-credentials".into(), "username".into()),
                    ("KAFKA_SASL_USERNAME".into(), "kafka-credentials".into(), "username".into()),
                    ("SPIKEWATCH_KAFKA_SASL_PASSWORD".into(), "kafka-credentials".into(), "password".into()),
                    ("KAFKA_SASL_PASSWORD".into(), "kafka-credentials".into(), "password".into())
                ],
                "each under its SPIKEWATCH_ name and the name images before the prefix read"
            );
            let secret = ca_volume.unwrap().secret.as_ref().unwrap();
            assert_eq!(secret.secret_name.as_deref(), Some("kafka-credentials"));
            assert_eq!(secret.items.as_ref().unwrap()[0].key, "ca.crt");
        }
        let uses_model = matches!(workload, Workload::Predictor | Workload::Api);
        for name in ["SPIKEWATCH_MODEL_VARIANT", "MODEL_VARIANT"] {
            let variant = env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
            assert_eq!(variant.as_deref(), uses_model.then_some("ml"), "{workload} {name}");
        }
    }
    // Plaintext Kafka: no secret references at all.
    for workload in Workload::ALL {
        let d = desired_deployment(&minimal(), workload, &pipelines::options()).unwrap();
        let env = pod_spec(&d).containers[0].env.clone().unwrap_or_default();
        assert!(env.iter().all(|e| e.value_from.is_none()), "{workload}");
    }
}

#[test]
fn the_predictor_is_created_with_the_autoscalers_count_within_its_bounds() {
    let mut vp = external(); // autoscaling 2..=6, predictor.replicas 2
    assert_eq!(desired_replicas(&vp, Workload::Predictor), 2, "minReplicas until the autoscaler decided");
    let status = vp.status.get_or_insert_default();
    status.consumer = Some(spikewatch_operator::crd::ConsumerStatus { desired_replicas: 5, ..Default::default() });
    assert_eq!(desired_replicas(&vp, Workload::Predictor), 5);
    vp.status.as_mut().unwrap().consumer.as_mut().unwrap().desired_replicas = 40;
    assert_eq!(desired_replicas(&vp, Workload::Predictor), 6, "clamped to maxReplicas");
    vp.spec.autoscaling.enabled = false;
    assert_eq!(desired_replicas(&vp, Workload::Predictor), 2, "spec replicas when autoscaling is off");
    assert_eq!(desired_replicas(&vp, Workload::Api), 3);
}

#[test]
fn services_expose_the_api_and_metrics_ports_and_select_one_workload() {
    let vp = minimal();
    for workload in Workload::ALL {
        let service = desired_service(&vp, workload).unwrap();
        let spec = service.spec.unwrap();
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, workload.port());
        assert_eq!(spec.selector.unwrap()["app.kubernetes.io/component"], workload.component());
        let deployment = desired_deployment(&vp, workload, &pipelines::options()).unwrap();
        let template_labels = deployment.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        for (k, v) in selector_labels(&vp, workload.component()) {
            assert_eq!(template_labels[&k], v, "the Service selects the Deployment's pods");
        }
    }
}

#[test]
fn the_network_policy_admits_only_the_api_and_metrics_ports() {
    let policy = desired_network_policy(&minimal(), &pipelines::options()).unwrap().spec.unwrap();
    assert_eq!(policy.policy_types.as_deref(), Some(&["Ingress".to_string()][..]));
    let rules = policy.ingress.unwrap();
    assert_eq!(rules.len(), 1);
    let ports: Vec<_> = rules[0].ports.as_ref().unwrap().iter().map(|p| p.port.clone().unwrap()).collect();
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int;
    assert_eq!(ports, [Int(8000), Int(8001)]);
    assert_eq!(policy.pod_selector.unwrap().match_labels.unwrap(), pipeline_selector_labels(&minimal()));
}

#[test]
fn an_api_of_two_or_more_pods_gets_a_disruption_budget_that_never_blocks_a_drain() {
    let vp = minimal();
    assert_eq!(vp.spec.workloads.api.replicas, 2, "the default");
    let pdb = desired_pod_disruption_budget(&vp).unwrap().expect("two API pods").spec.unwrap();
    assert_eq!(pdb.max_unavailable, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)));
    assert_eq!(pdb.selector.unwrap().match_labels.unwrap()["app.kubernetes.io/component"], "api");
    for replicas in [0, 1] {
        let mut single = minimal();
        single.spec.workloads.api.replicas = replicas;
        assert_eq!(desired_pod_disruption_budget(&single).unwrap(), None, "{replicas} API pods");
    }
}

#[test]
fn the_admin_endpoints_can_listen_apart_and_be_admitted_from_the_operators_namespace_only() {
    let mut vp = minimal();
    vp.spec.network_policy.admin_from_operator_only = true;
    let options = RenderOptions { operator_namespace: Some("ops".into()), ..pipelines::options() };
    let policy = desired_network_policy(&vp, &options).unwrap().spec.unwrap();
    let rules = policy.ingress.unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules[0].from.is_none(), "the API and metrics ports stay open");
    let peers = rules[1].from.as_ref().unwrap();
    assert_eq!(peers.len(), 1);
    let selector = peers[0].namespace_selector.as_ref().unwrap().match_labels.as_ref().unwrap();
    assert_eq!(selector["kubernetes.io/metadata.name"], "ops");
    assert!(peers[0].pod_selector.is_none(), "every pod of that namespace: the operator's");
    let ports: Vec<_> = rules[1].ports.as_ref().unwrap().iter().map(|p| p.port.clone().unwrap()).collect();
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int;
    assert_eq!(ports, [Int(Workload::ADMIN_PORT)]);

    for workload in Workload::ALL {
        let deployment = desired_deployment(&vp, workload, &options).unwrap();
        let container = deployment.spec.unwrap().template.spec.unwrap().containers.remove(0);
        let ports: Vec<_> =
            container.ports.unwrap().iter().map(|p| (p.name.clone().unwrap(), p.container_port)).collect();
        let env = container.env.unwrap_or_default();
        let bind = env.iter().find(|e| e.name == "SPIKEWATCH_ADMIN_BIND").and_then(|e| e.value.clone());
        let legacy = env.iter().find(|e| e.name == "ADMIN_BIND").and_then(|e| e.value.clone());
        assert_eq!(bind, legacy, "{workload}: the name images before the prefix read, too");
        if has_admin_endpoint(workload) {
            assert_eq!(ports[1], ("admin".to_string(), 8002), "{workload}");
            assert_eq!(bind.as_deref(), Some("0.0.0.0:8002"), "{workload}: an environment variable, not a config key");
        } else {
            assert_eq!(ports.len(), 1, "{workload}");
            assert_eq!(bind, None, "{workload}");
        }
    }
    let config = desired_config_map(&vp).unwrap().data.unwrap()["config.yaml"].clone();
    assert!(!config.contains("admin_bind"), "older images would refuse the key:\n{config}");

    let unknown = RenderOptions { operator_namespace: None, ..pipelines::options() };
    assert!(matches!(desired_network_policy(&vp, &unknown), Err(DesiredError::InvalidSpec(_))));
    // Off (the default): one rule, no admin port, no ADMIN_BIND.
    let policy = desired_network_policy(&minimal(), &unknown).unwrap().spec.unwrap();
    assert_eq!(policy.ingress.unwrap().len(), 1);
}

#[test]
fn pods_get_no_service_links() {
    for workload in Workload::ALL {
        let deployment = desired_deployment(&minimal(), workload, &pipelines::options()).unwrap();
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.enable_service_links, Some(false), "{workload}: a Service named kafka would inject KAFKA_*");
    }
}

#[test]
fn strimzi_pipelines_get_kafka_topics_and_admin_pipelines_none() {
    assert!(desired_kafka_topics(&external(), KafkaTopicVersion::V1Beta2).unwrap().is_empty());
    let vp = strimzi();
    let topics = desired_kafka_topics(&vp, KafkaTopicVersion::V1Beta2).unwrap();
    assert_eq!(topics.len(), 3);
    let names: Vec<_> = topics.iter().map(|t| t.data["spec"]["topicName"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["sol.ticks.raw", "sol.ticks.features", "sol.ticks.predictions"]);
    for topic in &topics {
        assert_eq!(topic.types.as_ref().unwrap().api_version, "kafka.strimzi.io/v1beta2");
        assert_eq!(topic.metadata.labels.as_ref().unwrap()["strimzi.io/cluster"], "spikewatch");
        assert_eq!(topic.data["spec"]["partitions"], 3);
        assert_eq!(topic.data["spec"]["replicas"], 3);
    }
    // Names that are not DNS subdomains are sanitized, and stay distinct.
    let a = kafka_topic_object_name(&vp, "Ticks_Raw");
    let b = kafka_topic_object_name(&vp, "ticks-raw");
    assert!(a.starts_with("sol-ticks-raw-"), "{a}");
    assert_eq!(b, "sol-ticks-raw");
    assert_ne!(a, b);
    let mut no_cluster = vp.clone();
    no_cluster.spec.kafka.strimzi_cluster = None;
    assert!(matches!(desired_kafka_topics(&no_cluster, KafkaTopicVersion::V1Beta2), Err(DesiredError::InvalidSpec(_))));
}

#[test]
fn monitoring_objects_follow_the_monitoring_switches() {
    let vp = external();
    let monitors = desired_service_monitors(&vp).unwrap();
    assert_eq!(monitors.len(), 4);
    for (monitor, workload) in monitors.iter().zip(Workload::ALL) {
        assert_eq!(monitor.metadata.labels.as_ref().unwrap()["release"], "kube-prometheus-stack");
        assert_eq!(monitor.data["spec"]["endpoints"][0]["port"], workload.port_name());
    }
    let dashboard = desired_dashboard(&vp).unwrap().unwrap();
    assert_eq!(dashboard.metadata.labels.as_ref().unwrap()["grafana_dashboard"], "1");
    let json: serde_json::Value = serde_json::from_str(dashboard.data.unwrap().values().next().unwrap()).unwrap();
    let titles: Vec<_> = json["panels"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "API latency P50 / P95",
            "API error rate",
            "Consumer lag",
            "Predictions per second",
            "Model variant",
            "Alert precision / recall, last hour",
            "Feature drift (PSI against the training rows)"
        ]
    );
    assert!(desired_prometheus_rule(&vp).unwrap().is_some());

    let mut off = vp.clone();
    off.spec.monitoring.service_monitor = false;
    off.spec.monitoring.prometheus_rule = false;
    off.spec.monitoring.dashboard = false;
    let groups: Vec<_> = desired_objects(&off, &pipelines::options()).unwrap().into_iter().map(|o| o.group).collect();
    assert!(!groups.contains(&ChildGroup::Monitoring));
    assert_eq!(groups.iter().filter(|g| **g == ChildGroup::Core).count(), 2 + 4 + 4 + 2);
}

#[test]
fn retained_strimzi_topics_are_released_before_deletion() {
    let patch = kafka_topic_retain_patch();
    assert_eq!(patch["metadata"]["annotations"][STRIMZI_MANAGED_ANNOTATION], "false");
}
