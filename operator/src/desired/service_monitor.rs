//! Prometheus Operator `ServiceMonitor`s, one per workload, scraping `/metrics` through the
//! workload's Service.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use super::DesiredError;
use super::meta::{child_meta, selector_labels, workload_name};
use crate::crd::{VolatilityPipeline, Workload};

/// `monitoring.coreos.com/v1` `ServiceMonitor`.
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// The ServiceMonitor of `workload` (with the pipeline's extra monitoring labels).
pub fn desired_service_monitor(vp: &VolatilityPipeline, workload: Workload) -> Result<DynamicObject, DesiredError> {
    let mut metadata = child_meta(vp, workload_name(vp, workload), workload.component())?;
    metadata.labels.get_or_insert_default().extend(vp.spec.monitoring.labels.clone());
    let mut object = DynamicObject::new("", &service_monitor_resource()).data(json!({
        "spec": {
            "selector": { "matchLabels": selector_labels(vp, workload.component()) },
            "endpoints": [{ "port": workload.port_name(), "path": "/metrics", "interval": "15s" }],
        }
    }));
    object.metadata = metadata;
    Ok(object)
}

/// The ServiceMonitors of every workload, or none when `monitoring.serviceMonitor` is off.
pub fn desired_service_monitors(vp: &VolatilityPipeline) -> Result<Vec<DynamicObject>, DesiredError> {
    if !vp.spec.monitoring.service_monitor {
        return Ok(vec![]);
    }
    Workload::ALL.iter().map(|w| desired_service_monitor(vp, *w)).collect()
}
