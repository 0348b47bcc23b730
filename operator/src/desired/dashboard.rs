//! The Grafana dashboard of a pipeline, in a ConfigMap labelled `grafana_dashboard: "1"` so the
//! Grafana sidecar loads it. Panels follow the runbook: P50/P95 latency, error rate, consumer lag,
//! predictions per second, model variant; and what the predictor measures of its own quality:
//! alert precision and recall against chance (last hour), feature drift (PSI).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::DesiredError;
use super::config_map::config_hash;
use super::meta::{MONITORING_COMPONENT, child_meta};
use super::promql::{api_error_ratio, api_latency_quantile, consumer_lag_by_service, series_selector};
use crate::crd::{VolatilityPipeline, Workload};
use spikewatch_types::metric_names::{model, predictor as predictions, quality};

/// Label the Grafana sidecar watches for.
pub const GRAFANA_DASHBOARD_LABEL: &str = "grafana_dashboard";

fn panel(id: u32, title: &str, kind: &str, unit: &str, x: u32, y: u32, targets: Vec<(String, &str)>) -> Value {
    let targets: Vec<Value> = targets
        .into_iter()
        .enumerate()
        .map(|(i, (expr, legend))| {
            json!({
                "refId": ((b'A' + i as u8) as char).to_string(),
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "expr": expr,
                "legendFormat": legend,
            })
        })
        .collect();
    // A stat panel shows the series name (`variant version`) rather than the info metric's constant 1.
    let options = if kind == "stat" {
        json!({ "textMode": "name", "colorMode": "none", "reduceOptions": { "calcs": ["lastNotNull"], "values": false } })
    } else {
        json!({ "legend": { "displayMode": "list", "placement": "bottom" } })
    };
    json!({
        "id": id,
        "title": title,
        "type": kind,
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "gridPos": { "h": 8, "w": 12, "x": x, "y": y },
        "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
        "options": options,
        "targets": targets,
    })
}

/// The dashboard JSON model.
pub fn dashboard_json(vp: &VolatilityPipeline) -> Value {
    let name = vp.name_any();
    let namespace = vp.namespace().unwrap_or_default();
    let api = series_selector(vp, &[Workload::Api]);
    let predictor = series_selector(vp, &[Workload::Predictor]);
    let models = series_selector(vp, &[Workload::Predictor, Workload::Api]);
    let latency = |q: &str| api_latency_quantile(q, &api, "5m");
    let ml_quality = |metric: &str| format!("avg by (product_id) ({metric}{{{predictor},variant=\"ml\"}})");
    json!({
        // Stable per pipeline, within Grafana's 40-character limit.
        "uid": format!("spikewatch-{}", &config_hash(&format!("{namespace}/{name}"))[..16]),
        "title": format!("spikewatch {namespace}/{name}"),
        "tags": ["spikewatch"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": false,
        "refresh": "30s",
        "time": { "from": "now-1h", "to": "now" },
        "templating": { "list": [{
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
        }]},
        "panels": [
            panel(1, "API latency P50 / P95", "timeseries", "s", 0, 0, vec![(latency("0.5"), "p50"), (latency("0.95"), "p95")]),
            panel(2, "API error rate", "timeseries", "percentunit", 12, 0, vec![(
                api_error_ratio(vp),
                "errors / requests",
            )]),
            panel(3, "Consumer lag", "timeseries", "s", 0, 8, vec![(
                consumer_lag_by_service(vp),
                "{{service}}",
            )]),
            panel(4, "Predictions per second", "timeseries", "ops", 12, 8, vec![(
                format!("sum(rate({}{{{predictor}}}[1m]))", predictions::PREDICTIONS_MADE),
                "predictions/s",
            )]),
            panel(5, "Model variant", "stat", "none", 0, 16, vec![(
                format!("max by (variant, version) ({}{{{models}}})", model::INFO),
                "{{variant}} {{version}}",
            )]),
            panel(6, "Alert precision / recall, last hour", "timeseries", "percentunit", 12, 16, vec![
                (ml_quality(quality::ALERT_PRECISION), "precision {{product_id}}"),
                (ml_quality(quality::ALERT_RECALL), "recall {{product_id}}"),
                (ml_quality(quality::POSITIVE_RATE), "chance {{product_id}}"),
            ]),
            panel(7, "Feature drift (PSI against the training rows)", "timeseries", "none", 0, 24, vec![(
                format!("max by (feature) ({}{{{predictor}}})", quality::FEATURE_PSI),
                "{{feature}}",
            )]),
        ],
    })
}

/// The dashboard JSON model as the file Grafana loads.
pub fn dashboard_file(vp: &VolatilityPipeline) -> Result<String, DesiredError> {
    serde_json::to_string_pretty(&dashboard_json(vp)).map_err(|e| DesiredError::Serialize(e.to_string()))
}

/// The dashboard ConfigMap, or none when `monitoring.dashboard` is off.
pub fn desired_dashboard(vp: &VolatilityPipeline) -> Result<Option<ConfigMap>, DesiredError> {
    if !vp.spec.monitoring.dashboard {
        return Ok(None);
    }
    let mut metadata = child_meta(vp, format!("{}-dashboard", vp.name_any()), MONITORING_COMPONENT)?;
    let labels = metadata.labels.get_or_insert_default();
    labels.extend(vp.spec.monitoring.labels.clone());
    labels.insert(GRAFANA_DASHBOARD_LABEL.into(), "1".into());
    let json = dashboard_file(vp)?;
    Ok(Some(ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(format!("spikewatch-{}.json", vp.name_any()), json)])),
        ..ConfigMap::default()
    }))
}
