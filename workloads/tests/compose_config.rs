//! The workloads' config file of the Docker Compose stack (`docker/spikewatch/config.yaml`) is a
//! valid spikewatch config (unknown keys are errors) for the stack's broker, and with the
//! stack's environment the API streams the predictions topic.

use spikewatch::config::Config;

#[test]
fn the_compose_stacks_config_is_valid_and_serve_streams_predictions() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/spikewatch/config.yaml");
    let mut config = Config::from_yaml_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.kafka.bootstrap_servers, "kafka:9092");
    assert_eq!(config.api.bind, "0.0.0.0:8000");
    assert_eq!(config.metrics.bind, "0.0.0.0:8001", "the health checks and Prometheus use port 8001");
    // docker/compose.yaml sets this on the serve service.
    config.apply_env(|var| (var == "PREDICTIONS_FROM_KAFKA").then(|| "true".to_string())).unwrap();
    assert!(config.api.predictions_from_kafka);
}
