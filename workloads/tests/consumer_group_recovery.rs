//! A consumer group whose members were SIGKILLed during their first join, against the test
//! broker (tansu): how long until a new member of the same group consumes, next to the
//! consumer timeouts it was given. Prints a timeline of the group's state (DescribeGroups).

mod common;

use std::time::{Duration, Instant};

use spikewatch::config::Config;

/// librdkafka properties of one run.
type Properties = &'static [(&'static str, &'static str)];

/// Starts `featurize` processes in one group, kills them while their first join is under way,
/// starts one more and returns (seconds until it logged an assignment, the group timeline).
fn killed_during_first_join(
    properties: &[(&str, &str)],
    kill_after: Duration,
    killed: usize,
) -> (Option<f64>, Vec<String>) {
    let broker = common::Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { kafka: common::kafka_config(&broker), ..Config::default() };
    config.metrics.bind = "127.0.0.1:0".into();
    // The given consumer timeouts only (librdkafka's defaults for the others).
    config.kafka.properties.clear();
    for (key, value) in properties {
        config.kafka.properties.insert(key.to_string(), value.to_string());
    }
    let config_path = common::process::write_config(dir.path(), &config);
    let config_arg = config_path.to_str().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let group = config.kafka.featurizer_group_id.clone();
    let recording = common::recording(common::ADVANCED_TRADE_RECORDING);
    common::process::Spawned::start(
        dir.path(),
        "replay",
        &["--config", config_arg, "replay", "--speed", "max", "--input", recording.to_str().unwrap()],
    )
    .wait_success();

    let mut timeline = Vec::new();
    let started = Instant::now();
    let note = |timeline: &mut Vec<String>, what: String| {
        timeline.push(format!("{:6.1}s {what}", started.elapsed().as_secs_f64()));
    };
    let mut first: Vec<_> = (0..killed)
        .map(|i| {
            common::process::Spawned::start(dir.path(), &format!("first-{i}"), &["--config", config_arg, "featurize"])
        })
        .collect();
    // Kill both while their first join is under way: the stage loop has started (the consumer
    // subscribed and is joining) and no partition was assigned yet.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !first.iter().all(|p| p.stderr().contains("\"stage started\"")) {
        assert!(Instant::now() < deadline, "the stages never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(kill_after);
    let (state, members) = common::topics::group_members(&bootstrap, &group);
    let assigned_before = first.iter().any(|p| p.stderr().contains("\"partitions assigned\""));
    note(&mut timeline, format!("{state} with {} members, assigned: {assigned_before}: SIGKILL them", members.len()));
    for process in &mut first {
        process.kill_hard();
    }
    let mut last = common::process::Spawned::start(dir.path(), "restarted", &["--config", config_arg, "featurize"]);
    note(&mut timeline, "new member started".into());
    let mut assigned = None;
    let mut previous = String::new();
    let patience = Instant::now() + Duration::from_secs(400);
    while Instant::now() < patience {
        let (state, members) = common::topics::group_members(&bootstrap, &group);
        let now = format!("{state} with {} members", members.len());
        if now != previous {
            note(&mut timeline, now.clone());
            previous = now;
        }
        if last.stderr().contains("\"partitions assigned\"") {
            assigned = Some(started.elapsed().as_secs_f64());
            note(&mut timeline, "new member: partitions assigned".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = last.terminate();
    (assigned, timeline)
}

#[test]
#[ignore = "investigation of the test broker's group handling: minutes long; run with --ignored --nocapture"]
fn members_killed_during_their_first_join() {
    let short: Properties = &[("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")];
    let runs: [(Properties, u64, usize); 5] = [
        (short, 300, 2),
        (short, 1500, 2),
        (short, 1500, 1),
        (short, 1500, 3),
        // session.timeout.ms 45 s (librdkafka's default), max.poll.interval.ms 300 s.
        (&[("session.timeout.ms", "45000")], 1500, 2),
    ];
    let only = std::env::var("RUNS").ok();
    for (i, (properties, kill_after_ms, killed)) in runs.into_iter().enumerate() {
        if only.as_ref().is_some_and(|only| !only.split(',').any(|n| n == i.to_string())) {
            continue;
        }
        let kill_after = Duration::from_millis(kill_after_ms);
        let (assigned, timeline) = killed_during_first_join(properties, kill_after, killed);
        eprintln!(
            "{properties:?}, {killed} killed {kill_after:?} into the join: new member assigned after {assigned:?} s\n  {}",
            timeline.join("\n  ")
        );
        assert!(assigned.is_some(), "the group never resumed: {timeline:?}");
    }
}
