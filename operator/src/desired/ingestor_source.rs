//! The ingestor's command and recording volume: `spikewatch ingest` for the live feed, or
//! `spikewatch replay --loop` over a recording from a ConfigMap, a PersistentVolumeClaim, an
//! `https://` URL or the image itself (`spec.source`).

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, KeyToPath, PersistentVolumeClaimVolumeSource, Volume, VolumeMount,
};

use super::meta::CONFIG_PATH;
use crate::crd::{RecordingSource, ReplaySpec, VolatilityPipeline};

/// Where a recording volume is mounted in the ingestor pod.
pub const RECORDING_DIR: &str = "/var/lib/spikewatch/recording";
/// Name of the recording volume.
pub const RECORDING_VOLUME: &str = "recording";

/// Arguments of the ingestor's `spikewatch` command.
pub fn ingestor_args(vp: &VolatilityPipeline) -> Vec<String> {
    let mut args = vec![];
    match vp.spec.source.replay() {
        None => args.push("ingest".to_string()),
        Some(replay) => {
            // A Deployment restarts a process that exits: the recording must never run out.
            args.extend(["replay".to_string(), "--loop".to_string(), "--speed".to_string(), replay.speed.clone()]);
            if let Some(input) = replay_input(&replay) {
                args.extend(["--input".to_string(), input]);
            }
        }
    }
    args.extend(["--config".to_string(), CONFIG_PATH.to_string()]);
    args
}

/// The file or URL the replay reads; `None` for the recording bundled in the image.
fn replay_input(replay: &ReplaySpec) -> Option<String> {
    let recording = replay.recording.as_ref()?;
    match recording {
        RecordingSource { url: Some(url), .. } => Some(url.clone()),
        RecordingSource { config_map: Some(config_map), .. } => Some(format!("{RECORDING_DIR}/{}", config_map.key)),
        RecordingSource { persistent_volume_claim: Some(claim), .. } => Some(format!("{RECORDING_DIR}/{}", claim.path)),
        _ => None,
    }
}

/// Whether the recording is downloaded into the pod's scratch volume at start.
pub fn downloads_recording(vp: &VolatilityPipeline) -> bool {
    vp.spec.source.replay().and_then(|r| r.recording).is_some_and(|r| r.url.is_some())
}

/// The volume holding the recording and its read-only mount, when it comes from a ConfigMap or
/// a PersistentVolumeClaim.
pub fn recording_volume(vp: &VolatilityPipeline) -> Option<(Volume, VolumeMount)> {
    let recording = vp.spec.source.replay()?.recording?;
    let volume = if let Some(config_map) = &recording.config_map {
        Volume {
            name: RECORDING_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.name.clone(),
                items: Some(vec![KeyToPath { key: config_map.key.clone(), path: config_map.key.clone(), mode: None }]),
                default_mode: Some(0o444),
                optional: Some(false),
            }),
            ..Volume::default()
        }
    } else if let Some(claim) = &recording.persistent_volume_claim {
        Volume {
            name: RECORDING_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.claim_name.clone(),
                read_only: Some(true),
            }),
            ..Volume::default()
        }
    } else {
        return None;
    };
    let mount = VolumeMount {
        name: RECORDING_VOLUME.into(),
        mount_path: RECORDING_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    Some((volume, mount))
}
