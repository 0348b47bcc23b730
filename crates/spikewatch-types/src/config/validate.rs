//! Settings that parse but make no sense (a limit of zero, a timeout of zero, no broker to
//! connect to) are refused at start-up, naming the setting, instead of starting a process that
//! refuses every request or waits for a broker that cannot exist.

use super::{ApiConfig, Config, ConfigError, FeedConfig, KafkaConfig, ModelConfig};

impl Config {
    /// Every check that holds for all subcommands. Kafka's bootstrap servers are checked apart
    /// ([`KafkaConfig::check_bootstrap_servers`]): subcommands without Kafka do not need them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.feed.validate()?;
        self.kafka.validate()?;
        self.model.validate()?;
        self.api.validate()
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, reason: reason.into() }
}

/// `value > 0`, else an error naming `setting`.
fn positive<T: PartialOrd + Default + std::fmt::Display>(setting: &'static str, value: T) -> Result<(), ConfigError> {
    if value > T::default() { Ok(()) } else { Err(invalid(setting, format!("must be greater than 0, got {value}"))) }
}

fn named(setting: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() { Err(invalid(setting, "must not be empty")) } else { Ok(()) }
}

impl FeedConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        positive("feed.heartbeat_timeout_secs", self.heartbeat_timeout_secs)?;
        positive("feed.reconnect_initial_backoff_ms", self.reconnect_initial_backoff_ms)?;
        positive("feed.reconnect_max_backoff_ms", self.reconnect_max_backoff_ms)?;
        if self.reconnect_max_backoff_ms < self.reconnect_initial_backoff_ms {
            return Err(invalid(
                "feed.reconnect_max_backoff_ms",
                format!(
                    "must not be below feed.reconnect_initial_backoff_ms ({} < {})",
                    self.reconnect_max_backoff_ms, self.reconnect_initial_backoff_ms
                ),
            ));
        }
        positive("feed.max_frame_bytes", self.max_frame_bytes)?;
        if let Some(mirror) = &self.mirror {
            positive("feed.mirror.max_bytes", mirror.max_bytes)?;
            positive("feed.mirror.max_age_secs", mirror.max_age_secs)?;
        }
        Ok(())
    }
}

impl KafkaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        positive("kafka.partitions", self.partitions)?;
        positive("kafka.replication_factor", self.replication_factor)?;
        positive("kafka.max_batch", self.max_batch)?;
        named("kafka.topics.raw", &self.topics.raw)?;
        named("kafka.topics.features", &self.topics.features)?;
        named("kafka.topics.predictions", &self.topics.predictions)?;
        named("kafka.featurizer_group_id", &self.featurizer_group_id)?;
        named("kafka.predictor_group_id", &self.predictor_group_id)
    }

    /// `kafka.bootstrap_servers` (`SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS`): a comma-separated list of
    /// `host:port` (a `scheme://` prefix and a bracketed IPv6 host allowed; the port may be left
    /// out, as librdkafka then uses 9092). Empty, an empty entry, a space inside an entry or a
    /// port that is not a number in 1..=65535 is an error, not a 30 s wait for a broker that
    /// cannot exist.
    pub fn check_bootstrap_servers(&self) -> Result<(), ConfigError> {
        const SETTING: &str = "kafka.bootstrap_servers (SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS)";
        let servers = self.bootstrap_servers.trim();
        if servers.is_empty() {
            return Err(invalid(SETTING, "is empty: give the Kafka brokers as host:port[,host:port...]"));
        }
        for entry in servers.split(',') {
            check_broker_address(entry.trim()).map_err(|reason| invalid(SETTING, reason))?;
        }
        Ok(())
    }
}

/// One `[scheme://]host[:port]` entry of a bootstrap list.
fn check_broker_address(entry: &str) -> Result<(), String> {
    let shown: String = entry.chars().take(64).collect();
    if entry.is_empty() {
        return Err("has an empty entry (two commas in a row, or a trailing comma)".into());
    }
    let address = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) =
            rest.split_once(']').ok_or_else(|| format!("{shown:?}: unclosed '[' of an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| format!("{shown:?}: expected ':port' after ']'"))?),
        };
        (host, port)
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/' || c == ':' && !address.starts_with('[')) {
        return Err(format!("{shown:?} is not host:port"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("{shown:?}: the port must be a number from 1 to 65535")),
        }
    }
    Ok(())
}

impl ModelConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        positive("model.max_batch", self.max_batch)?;
        if let Some(threshold) = self.threshold
            && !(0.0..=1.0).contains(&threshold)
        {
            return Err(invalid("model.threshold", format!("must be a probability in [0, 1], got {threshold}")));
        }
        Ok(())
    }
}

impl ApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        positive("api.max_body_bytes", self.max_body_bytes)?;
        positive("api.max_rows", self.max_rows)?;
        positive("api.request_timeout_ms", self.request_timeout_ms)?;
        positive("api.stream_buffer", self.stream_buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(yaml: &str) -> String {
        Config::from_yaml(yaml).unwrap().validate().unwrap_err().to_string()
    }

    #[test]
    fn the_defaults_are_valid() {
        Config::default().validate().unwrap();
        Config::default().kafka.check_bootstrap_servers().unwrap();
    }

    #[test]
    fn zero_limits_and_timeouts_are_refused_by_name() {
        let cases = [
            ("api:\n  max_body_bytes: 0\n", "api.max_body_bytes"),
            ("api:\n  max_rows: 0\n", "api.max_rows"),
            ("api:\n  request_timeout_ms: 0\n", "api.request_timeout_ms"),
            ("api:\n  stream_buffer: 0\n", "api.stream_buffer"),
            ("kafka:\n  max_batch: 0\n", "kafka.max_batch"),
            ("kafka:\n  partitions: 0\n", "kafka.partitions"),
            ("kafka:\n  partitions: -3\n", "kafka.partitions"),
            ("kafka:\n  replication_factor: 0\n", "kafka.replication_factor"),
            ("kafka:\n  topics:\n    raw: ''\n", "kafka.topics.raw"),
            ("kafka:\n  featurizer_group_id: ' '\n", "kafka.featurizer_group_id"),
            ("model:\n  max_batch: 0\n", "model.max_batch"),
            ("model:\n  threshold: 1.5\n", "model.threshold"),
            ("feed:\n  heartbeat_timeout_secs: 0\n", "feed.heartbeat_timeout_secs"),
            ("feed:\n  max_frame_bytes: 0\n", "feed.max_frame_bytes"),
            ("feed:\n  reconnect_initial_backoff_ms: 0\n", "feed.reconnect_initial_backoff_ms"),
            ("feed:\n  reconnect_max_backoff_ms: 100\n", "feed.reconnect_max_backoff_ms"),
            ("feed:\n  mirror:\n    dir: m\n    max_age_secs: 0\n", "feed.mirror.max_age_secs"),
        ];
        for (yaml, setting) in cases {
            let message = error_of(yaml);
            assert!(message.contains(setting), "{yaml:?}: {message}");
        }
    }

    #[test]
    fn zero_batch_waits_stay_valid() {
        // 0 has a meaning there: take only the records already fetched.
        Config::from_yaml("kafka:\n  max_batch_wait_ms: 0\nmodel:\n  max_batch_wait_ms: 0\n")
            .unwrap()
            .validate()
            .unwrap();
    }

    fn servers(list: &str) -> Result<(), ConfigError> {
        KafkaConfig { bootstrap_servers: list.into(), ..KafkaConfig::default() }.check_bootstrap_servers()
    }

    #[test]
    fn bootstrap_servers_must_name_brokers() {
        for ok in [
            "localhost:9092",
            "kafka-0.kafka:9093,kafka-1.kafka:9093",
            " broker:9092 , other:19092 ",
            "broker",
            "PLAINTEXT://broker:9092",
            "[::1]:9092",
            "[2001:db8::1]",
            "10.0.0.7:9092",
        ] {
            servers(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "",
            "   ",
            "broker:",
            "broker:0",
            "broker:99999",
            "broker:x",
            "a:1,,b:2",
            "a:1,",
            "my broker:9092",
            "[::1:9092",
            "::1:9092",
        ] {
            let err = servers(bad).expect_err(bad).to_string();
            assert!(err.contains("KAFKA_BOOTSTRAP_SERVERS"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_huge_bad_entry_is_quoted_short() {
        let long = format!("{}:x", "b".repeat(10_000));
        let err = servers(&long).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
    }
}
