//! `KafkaConfig` → rdkafka `ClientConfig`, for every client spikewatch creates.

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// Settings shared by producers, consumers and admin clients: bootstrap servers, security
/// (protocol, SASL mechanism and credentials, CA file) and finally `kafka.properties`, so an
/// operator can override anything spikewatch sets.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.bootstrap_servers).set("client.id", "spikewatch");
    let security = &kafka.security;
    if let Some(protocol) = &security.protocol {
        config.set("security.protocol", protocol);
    }
    if let Some(mechanism) = &security.sasl_mechanism {
        config.set("sasl.mechanism", mechanism);
    }
    if let Some(username) = &security.sasl_username {
        config.set("sasl.username", username);
    }
    if let Some(password) = &security.sasl_password {
        config.set("sasl.password", password);
    }
    if let Some(ca) = &security.ssl_ca_location {
        config.set("ssl.ca.location", ca);
    }
    config
}

/// Producer: idempotent with `acks=all`, so retries never duplicate or reorder within a
/// partition, and a record counts as delivered only once every in-sync replica has it.
pub fn producer_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = client_config(kafka);
    config.set("enable.idempotence", "true").set("acks", "all");
    apply_properties(&mut config, kafka);
    config
}

/// Group consumer: offsets are stored and committed by the stage loop only after the outputs of
/// the consumed records were acknowledged (at-least-once), and subscribing never creates a topic.
///
/// `fetch.wait.max.ms` stays at librdkafka's 500 ms, set explicitly (see [`FETCH_WAIT_MAX_MS`]).
///
/// Group membership is dynamic (no `group.instance.id`), so a member that dies is evicted by the
/// coordinator once it has sent no heartbeat for [`SESSION_TIMEOUT_MS`], also in the middle of a
/// rebalance, and the group's remaining and new members are assigned its partitions. Heartbeats
/// come from librdkafka's own thread, so a long cycle of the stage (a window rebuild) does not
/// delay them; the cycle is bounded by [`MAX_POLL_INTERVAL_MS`], which is also the rebalance
/// timeout: how long the coordinator waits for live members to rejoin.
pub fn consumer_config(kafka: &KafkaConfig, group_id: &str) -> ClientConfig {
    let mut config = client_config(kafka);
    config
        .set("group.id", group_id)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS)
        .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS)
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false");
    apply_properties(&mut config, kafka);
    config
}

/// A stage's partitions go to the other members this long after it died (librdkafka's default
/// is 45 s; brokers accept 6 s to 30 min by default). Short enough that a killed featurizer or
/// predictor stalls its partitions for seconds, long enough for a loaded broker's hiccups.
pub const SESSION_TIMEOUT_MS: &str = "10000";

/// A third of the session timeout, as Kafka recommends.
pub const HEARTBEAT_INTERVAL_MS: &str = "3000";

/// librdkafka's default, set explicitly: the longest a stage may spend between two polls,
/// including rebuilding a partition's feature windows (seconds for an hour of ticks), and the
/// rebalance timeout.
pub const MAX_POLL_INTERVAL_MS: &str = "300000";

/// `fetch.wait.max.ms` of the stage consumers: librdkafka's default. A broker that holds an
/// empty fetch for the whole wait instead of answering when records arrive (tansu does) adds up
/// to this much to each hop of the tick → prediction latency, and 10 ms cut that latency five
/// times over in a benchmark (docs/benchmarks.md); but with tansu on S3 storage, consumers with a
/// 10 ms wait never received a record (and 2 ms stalled them on memory storage). So the short wait is an opt-in for brokers that
/// handle it (`kafka.properties: {fetch.wait.max.ms: "10"}`), not the default.
pub const FETCH_WAIT_MAX_MS: &str = "500";

/// Reader outside the stages' consumer groups (partitions assigned by hand): never joins a
/// group, never commits, never creates a topic. For watching a topic without touching the
/// stages' offsets.
///
/// librdkafka only assigns partitions incrementally when the client has a `group.id`, so the
/// reader gets a unique one (`spikewatch-reader-<random>`); without a subscription and without
/// commits the group is never joined, and brokers never list it.
pub fn reader_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = client_config(kafka);
    config
        .set("group.id", format!("spikewatch-reader-{:016x}", rand::random::<u64>()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false");
    apply_properties(&mut config, kafka);
    config
}

/// Admin client: the shared settings plus the extra properties.
pub(super) fn admin_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = client_config(kafka);
    apply_properties(&mut config, kafka);
    config
}

fn apply_properties(config: &mut ClientConfig, kafka: &KafkaConfig) {
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaSecurity;

    fn sasl_ssl() -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: "kafka-0:9093,kafka-1:9093".into(),
            security: KafkaSecurity {
                protocol: Some("sasl_ssl".into()),
                sasl_mechanism: Some("SCRAM-SHA-512".into()),
                sasl_username: Some("spikewatch".into()),
                sasl_password: Some("s3cret".into()),
                ssl_ca_location: Some("/etc/kafka/ca.pem".into()),
            },
            ..KafkaConfig::default()
        }
    }

    #[test]
    fn security_settings_map_to_librdkafka_properties() {
        let config = client_config(&sasl_ssl());
        let expected = [
            ("bootstrap.servers", "kafka-0:9093,kafka-1:9093"),
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "spikewatch"),
            ("sasl.password", "s3cret"),
            ("ssl.ca.location", "/etc/kafka/ca.pem"),
        ];
        for (key, value) in expected {
            assert_eq!(config.get(key), Some(value), "{key}");
        }
    }

    #[test]
    fn plaintext_sets_no_security_properties() {
        let config = client_config(&KafkaConfig::default());
        assert_eq!(config.get("bootstrap.servers"), Some("localhost:9092"));
        for key in ["security.protocol", "sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location"] {
            assert_eq!(config.get(key), None, "{key}");
        }
    }

    #[test]
    fn tls_without_sasl_sets_only_the_ca() {
        let kafka = KafkaConfig {
            security: KafkaSecurity {
                protocol: Some("ssl".into()),
                ssl_ca_location: Some("/ca.pem".into()),
                ..KafkaSecurity::default()
            },
            ..KafkaConfig::default()
        };
        let config = client_config(&kafka);
        assert_eq!(config.get("security.protocol"), Some("ssl"));
        assert_eq!(config.get("ssl.ca.location"), Some("/ca.pem"));
        assert_eq!(config.get("sasl.mechanism"), None);
    }

    #[test]
    fn producer_is_idempotent_with_acks_all() {
        let config = producer_config(&KafkaConfig::default());
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("acks"), Some("all"));
    }

    #[test]
    fn consumer_commits_manually_and_never_creates_topics() {
        let config = consumer_config(&KafkaConfig::default(), "spikewatch-featurizer");
        assert_eq!(config.get("group.id"), Some("spikewatch-featurizer"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("allow.auto.create.topics"), Some("false"));
        assert_eq!(config.get("fetch.wait.max.ms"), Some(FETCH_WAIT_MAX_MS));
        assert_eq!(config.get("session.timeout.ms"), Some("10000"));
        assert_eq!(config.get("heartbeat.interval.ms"), Some("3000"));
        assert_eq!(config.get("max.poll.interval.ms"), Some("300000"));
        assert!(config.get("group.instance.id").is_none(), "dynamic membership: dead members are evicted");
    }

    #[test]
    fn reader_has_a_group_of_its_own_and_never_commits() {
        let config = reader_config(&KafkaConfig::default());
        let group = config.get("group.id").unwrap().to_string();
        assert!(group.starts_with("spikewatch-reader-"), "{group}");
        assert_ne!(reader_config(&KafkaConfig::default()).get("group.id"), Some(group.as_str()), "unique per reader");
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("allow.auto.create.topics"), Some("false"));
    }

    #[test]
    fn extra_properties_are_applied_last_and_win() {
        let mut kafka = sasl_ssl();
        kafka.properties.insert("sasl.mechanism".into(), "PLAIN".into());
        kafka.properties.insert("auto.offset.reset".into(), "latest".into());
        kafka.properties.insert("linger.ms".into(), "20".into());
        let consumer = consumer_config(&kafka, "g");
        assert_eq!(consumer.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("latest"));
        assert_eq!(producer_config(&kafka).get("linger.ms"), Some("20"));
    }
}
