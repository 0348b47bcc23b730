//! Events on the `VolatilityPipeline` for every significant action, so `kubectl describe vp`
//! tells the story. Publishing is best effort: a failed event never fails a reconcile.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::crd::VolatilityPipeline;

pub async fn publish(
    recorder: &Recorder,
    vp: &VolatilityPipeline,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event =
        Event { type_, reason: reason.into(), note: Some(truncate(note)), action: action.into(), secondary: None };
    if let Err(e) = recorder.publish(&event, &vp.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

pub async fn normal(recorder: &Recorder, vp: &VolatilityPipeline, reason: &str, action: &str, note: String) {
    publish(recorder, vp, EventType::Normal, reason, action, note).await;
}

pub async fn warning(recorder: &Recorder, vp: &VolatilityPipeline, reason: &str, action: &str, note: String) {
    publish(recorder, vp, EventType::Warning, reason, action, note).await;
}

/// Event notes are limited to 1 kB.
fn truncate(mut note: String) -> String {
    const MAX: usize = 1000;
    if note.len() > MAX {
        let mut cut = MAX;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push('…');
    }
    note
}
