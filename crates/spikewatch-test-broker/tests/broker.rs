//! The harness itself: tansu comes up on its own port, goes away on drop, and a persistent
//! broker keeps what it acknowledged across a SIGKILL and a restart.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use spikewatch_test_broker::{Broker, topics};

#[test]
fn broker_answers_metadata_and_advertises_its_own_port() {
    let broker = Broker::start();
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap_servers()).create().unwrap();
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(5)).unwrap();
    let ports: Vec<i32> = metadata.brokers().iter().map(|b| b.port()).collect();
    assert_eq!(ports, vec![i32::from(broker.port())], "broker log:\n{}", broker.log());
}

#[test]
fn broker_process_is_gone_after_drop() {
    let broker = Broker::start();
    let addr = broker.bootstrap_servers();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    drop(broker);
    assert!(std::net::TcpStream::connect(&addr).is_err(), "{addr} still accepts connections");
}

/// Produces `values` to `topic` (auto-created by tansu on first use) and waits for every ack.
fn produce(broker: &Broker, topic: &str, values: std::ops::Range<u32>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let payloads: Vec<String> = values.map(|v| v.to_string()).collect();
    let deliveries: Vec<_> = payloads
        .iter()
        .map(|payload| producer.send_result(FutureRecord::to(topic).key("k").payload(payload)).unwrap())
        .collect();
    for delivery in deliveries {
        let outcome = futures::executor::block_on(delivery).expect("delivery canceled");
        outcome.unwrap_or_else(|(e, _)| panic!("not acknowledged: {e}\nbroker log:\n{}", broker.log()));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn a_persistent_broker_keeps_acknowledged_records_across_a_kill_and_a_restart() {
    let mut broker = Broker::start_persistent();
    assert!(broker.is_persistent());
    let bootstrap = broker.bootstrap_servers();
    produce(&broker, "harness.persistent", 0..100);

    broker.kill();
    assert!(!broker.is_running());
    assert!(std::net::TcpStream::connect(&bootstrap).is_err(), "{bootstrap} still accepts connections");
    broker.restart();
    assert!(broker.is_running());
    assert_eq!(broker.bootstrap_servers(), bootstrap, "same port after the restart");

    // Written before the kill, and writable after it: offsets go on where they stopped.
    produce(&broker, "harness.persistent", 100..150);
    let records = topics::read_until::<u32>(&bootstrap, "harness.persistent", |r| r.len() >= 150);
    let values: Vec<u32> = records.iter().map(|r| r.value).collect();
    assert_eq!(values, (0..150).collect::<Vec<_>>(), "broker log:\n{}", broker.log());
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..150).collect::<Vec<_>>());
}

#[test]
fn an_in_memory_broker_restarts_empty() {
    let mut broker = Broker::start();
    produce(&broker, "harness.memory", 0..10);
    broker.kill();
    broker.restart();
    assert!(topics::partitions(&broker.bootstrap_servers(), "harness.memory").is_empty(), "the topic is gone");
}
