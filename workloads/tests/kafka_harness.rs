//! The broker harness itself: tansu comes up on its own port and goes away on drop.

mod common;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[test]
fn broker_answers_metadata_and_advertises_its_own_port() {
    let broker = common::Broker::start();
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap_servers()).create().unwrap();
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(5)).unwrap();
    let ports: Vec<i32> = metadata.brokers().iter().map(|b| b.port()).collect();
    assert_eq!(ports, vec![i32::from(broker.port())], "broker log:\n{}", broker.log());
}

#[test]
fn broker_process_is_gone_after_drop() {
    let broker = common::Broker::start();
    let addr = broker.bootstrap_servers();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    drop(broker);
    assert!(std::net::TcpStream::connect(&addr).is_err(), "{addr} still accepts connections");
}
