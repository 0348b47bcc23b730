//! `replay`, `featurize` and `predict` against a broker that does not answer: each says
//! `broker unreachable` within seconds (not after librdkafka's long timeouts) and stops at once
//! on SIGTERM, well within a pod's termination grace period.

mod common;

use std::time::{Duration, Instant};

use spikewatch::config::Config;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn each_stage_reports_an_unreachable_broker_and_stops_promptly() {
    common::artifact::require_env("ORT_DYLIB_PATH");
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.kafka.bootstrap_servers = format!("127.0.0.1:{}", closed_port());
    config.metrics.bind = "127.0.0.1:0".into();
    let path = common::process::write_config(dir.path(), &config);
    for stage in ["replay", "featurize", "predict"] {
        let started = Instant::now();
        let mut process =
            common::process::Spawned::start(dir.path(), stage, &["--config", path.to_str().unwrap(), stage]);
        process.wait_for_stderr("broker unreachable");
        let said = started.elapsed();
        assert!(said < Duration::from_secs(10), "{stage}: said after {said:?}");
        let line = process.stderr().lines().find(|l| l.contains("\"broker unreachable\"")).unwrap().to_string();
        assert!(line.contains(&config.kafka.bootstrap_servers), "{stage}: names the servers: {line}");
        assert!(line.contains("\"WARN\""), "{stage}: {line}");

        let stopping = Instant::now();
        let status = process.terminate();
        let took = stopping.elapsed();
        assert!(status.success(), "{stage}: {status}\n{}", process.stderr());
        assert!(took < Duration::from_secs(5), "{stage}: took {took:?} to stop after SIGTERM");
    }
}
