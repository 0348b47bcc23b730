//! Where the ingestor's ticks come from: Coinbase's live WebSocket feed, or a recording replayed
//! in a loop (so a cluster without internet access still runs the whole pipeline).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The ingestor's source of ticks.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'replay' || !has(self.replay)").message("source.replay is only used with source.type replay"))]
pub struct SourceSpec {
    /// `live` (default): Coinbase's WebSocket feed (`spikewatch ingest`). `replay`: a recording
    /// replayed in a loop (`spikewatch replay --loop`), no internet access needed.
    #[serde(default, rename = "type")]
    pub type_: SourceType,
    /// The recording and its pace, for `type: replay`. Unset: the recording bundled in the
    /// workload image, at the original pace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplaySpec>,
}

impl SourceSpec {
    /// The replay settings when the source is a replay (defaults filled in).
    pub fn replay(&self) -> Option<ReplaySpec> {
        match self.type_ {
            SourceType::Live => None,
            SourceType::Replay => Some(self.replay.clone().unwrap_or_default()),
        }
    }
}

/// Live feed or replayed recording.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum SourceType {
    /// Coinbase's public WebSocket feed (`feed`, `products`).
    #[default]
    Live,
    /// A recording, replayed in a loop; each pass follows the previous one in event time.
    Replay,
}

/// A recording replayed as the pipeline's feed.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySpec {
    /// `max` (as fast as the broker takes the ticks) or a multiple of the recorded pace such as
    /// `1`, `10` or `0.5`.
    #[serde(default = "default_speed")]
    #[schemars(length(min = 1, max = 16), regex(pattern = r"^(max|[0-9]+(\.[0-9]+)?)$"))]
    #[x_kube(validation = Rule::new("self == 'max' || double(self) > 0.0").message("source.replay.speed must be max or a positive multiple of the recorded pace"))]
    pub speed: String,
    /// Where the recording is (NDJSON frames or flat tick CSV, plain or gzip). Unset: the
    /// recording bundled in the workload image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingSource>,
}

impl Default for ReplaySpec {
    fn default() -> Self {
        ReplaySpec { speed: default_speed(), recording: None }
    }
}

fn default_speed() -> String {
    "1".into()
}

/// Exactly one place the recording is read from.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.configMap), has(self.persistentVolumeClaim), has(self.url)].filter(x, x).size() == 1").message("source.replay.recording needs exactly one of configMap, persistentVolumeClaim and url"))]
pub struct RecordingSource {
    /// A key of a ConfigMap in the pipeline's namespace (`binaryData` for gzip; a ConfigMap
    /// holds at most 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapRecording>,
    /// A file on a PersistentVolumeClaim in the pipeline's namespace, mounted read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<VolumeRecording>,
    /// An `https://` (or in-cluster `http://`) URL, downloaded once when the ingestor starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub url: Option<String>,
}

/// A recording stored under one key of a ConfigMap.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ConfigMapRecording {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
    /// Key of the recording in the ConfigMap (also its file name in the pod).
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// A recording file on a PersistentVolumeClaim.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRecording {
    /// Name of the PersistentVolumeClaim.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub claim_name: String,
    /// Path of the recording inside the volume, relative to its root.
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[-._a-zA-Z0-9][-._a-zA-Z0-9/]*$"))]
    #[x_kube(validation = Rule::new("!self.contains('..')").message("source.replay.recording.persistentVolumeClaim.path must stay inside the volume: no '..'"))]
    pub path: String,
}
