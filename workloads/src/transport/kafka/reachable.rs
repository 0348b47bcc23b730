//! Whether the brokers answer, before a stage starts: `replay`, `featurize` and `predict` wait
//! for them at start, saying so within seconds (`broker unreachable`, again on every retry)
//! instead of hanging silently in a first request with librdkafka's long timeouts, and stop at
//! once when told to while they wait.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_util::sync::CancellationToken;

use super::client::admin_config;
use crate::config::KafkaConfig;

/// How long one metadata request may take: a refused connection fails at once, an address
/// that drops packets after this.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between two probes, doubling up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Waits until a broker of `kafka.bootstrap_servers` answers a metadata request. Logs a warning
/// `broker unreachable` (with the servers and librdkafka's reason) after each failed probe.
/// Returns `false` when `shutdown` was cancelled first.
pub async fn wait_for_brokers(kafka: &KafkaConfig, stage: &str, shutdown: &CancellationToken) -> bool {
    let mut pause = FIRST_RETRY;
    let mut failures = 0u32;
    loop {
        let probe = probe(kafka.clone());
        let result = tokio::select! {
            result = probe => result,
            () = shutdown.cancelled() => return false,
        };
        match result {
            Ok(brokers) => {
                if failures > 0 {
                    tracing::info!(stage, brokers, bootstrap_servers = %kafka.bootstrap_servers, "broker reachable");
                }
                return true;
            }
            Err(reason) => {
                failures += 1;
                tracing::warn!(
                    stage,
                    bootstrap_servers = %kafka.bootstrap_servers,
                    %reason,
                    attempt = failures,
                    retry_in_s = pause.as_secs(),
                    "broker unreachable"
                );
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => return false,
        }
        pause = (pause * 2).min(MAX_RETRY);
    }
}

/// One metadata request (all topics: asking for one by name could create it), off the async
/// workers; the number of brokers the cluster lists.
async fn probe(kafka: KafkaConfig) -> Result<usize, String> {
    let task = tokio::task::spawn_blocking(move || {
        let mut config = admin_config(&kafka);
        config.set("allow.auto.create.topics", "false");
        let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
        let metadata = consumer.fetch_metadata(None, PROBE_TIMEOUT).map_err(|e| e.to_string())?;
        Ok(metadata.brokers().len())
    });
    task.await.map_err(|e| format!("probe task failed: {e}"))?
}
