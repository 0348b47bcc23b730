//! Nonsense configuration stops the process at start-up with the setting's name, before it
//! binds a port, loads a model or waits for a broker.

mod common;

use std::process::{Command, Output};

fn spikewatch(config_yaml: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spikewatch.yaml");
    std::fs::write(&config, config_yaml).unwrap();
    let mut command = Command::new(common::process::spikewatch_bin());
    command
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("SPIKEWATCH_LOG_FORMAT", "text")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("cannot run spikewatch")
}

fn assert_refused(output: &Output, setting: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started anyway:\n{stderr}");
    assert!(stderr.contains(&format!("invalid setting {setting}")), "the error does not name {setting}:\n{stderr}");
}

#[test]
fn an_empty_bootstrap_list_is_named_instead_of_waited_for() {
    for command in [&["predict", "--model", "/nonexistent"][..], &["featurize"], &["replay"], &["ingest"]] {
        let output = spikewatch("", &[("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS", "")], command);
        assert_refused(&output, "kafka.bootstrap_servers (SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS)");
        // The deprecated name still applies, with a warning naming the new one.
        let output = spikewatch("", &[("KAFKA_BOOTSTRAP_SERVERS", "")], command);
        assert_refused(&output, "kafka.bootstrap_servers (SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(
                "environment variable KAFKA_BOOTSTRAP_SERVERS is deprecated: set SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS"
            ),
            "{stderr}"
        );
    }
    let output = spikewatch("kafka:\n  bootstrap_servers: 'broker:port'\n", &[], &["featurize"]);
    assert_refused(&output, "kafka.bootstrap_servers (SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS)");
}

#[test]
fn zero_api_limits_are_refused_before_serving() {
    for (yaml, setting) in [
        ("api:\n  max_body_bytes: 0\n", "api.max_body_bytes"),
        ("api:\n  request_timeout_ms: 0\n", "api.request_timeout_ms"),
        ("api:\n  max_rows: 0\n", "api.max_rows"),
    ] {
        let output = spikewatch(yaml, &[], &["serve", "--bind", "127.0.0.1:0"]);
        assert_refused(&output, setting);
    }
}

#[test]
fn subcommands_without_kafka_do_not_need_brokers() {
    // `features` reads recordings and writes a table: no broker involved.
    let dir = tempfile::tempdir().unwrap();
    let output_path = dir.path().join("table.csv");
    let recording = common::recording(common::ADVANCED_TRADE_RECORDING);
    let output = spikewatch(
        "",
        &[("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS", "")],
        &[
            "features",
            "--every-tick",
            "--input",
            recording.to_str().unwrap(),
            "--output",
            output_path.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output_path.exists());
}
