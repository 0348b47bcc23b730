//! Talking to the serving pods: which model answers (`GET /version` on the API) and the
//! rollback lever (`POST /admin/variant` with the pipeline's admin token, on the API's port
//! 8000 and the predictor's 8001).

use std::time::Duration;

use futures::future::join_all;
use serde::Deserialize;

use crate::crd::ModelVariant;
use crate::observe::ServingPod;

/// Bound on each call to a pod.
const POD_TIMEOUT: Duration = Duration::from_secs(3);

/// What a pod reports about the model answering.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedModel {
    pub variant: ModelVariant,
    pub version: Option<String>,
    /// Why the baseline answers although `ml` was configured (the pod could not load the ML
    /// model): `runtime_unavailable` or `model_unloadable`.
    pub fallback: Option<String>,
}

#[derive(Deserialize)]
struct ModelReport {
    #[serde(default)]
    model_variant: Option<String>,
    #[serde(default)]
    model_version: Option<String>,
    /// Only on `/version`, and only while the pod serves the baseline in place of an ML model it
    /// could not load (older images omit it).
    #[serde(default)]
    model_fallback: Option<FallbackReport>,
}

#[derive(Deserialize)]
struct FallbackReport {
    reason: String,
}

impl ModelReport {
    fn served(self) -> Option<ServedModel> {
        let variant = match self.model_variant.as_deref()? {
            "ml" => ModelVariant::Ml,
            "baseline" => ModelVariant::Baseline,
            _ => return None,
        };
        Some(ServedModel { variant, version: self.model_version, fallback: self.model_fallback.map(|f| f.reason) })
    }
}

/// The model the first Ready API pod that answers reports on `/version`.
pub async fn served_model(http: &reqwest::Client, api_pods: &[ServingPod]) -> Option<ServedModel> {
    for pod in api_pods.iter().filter(|p| p.ready) {
        let Some(base) = &pod.base_url else { continue };
        let answer = http.get(format!("{base}/version")).timeout(POD_TIMEOUT).send().await;
        let report = match answer.and_then(|r| r.error_for_status()) {
            Ok(response) => response.json::<ModelReport>().await,
            Err(e) => {
                tracing::debug!(pod = %pod.name, error = %e, "GET /version failed");
                continue;
            }
        };
        if let Some(served) = report.ok().and_then(ModelReport::served) {
            return Some(served);
        }
    }
    None
}

/// Result of switching the running pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwitchReport {
    /// Pods that answer with the requested variant now.
    pub switched: Vec<String>,
    /// Pods that could not be switched, with why (they switch when replaced: the Deployments
    /// render the variant too).
    pub failed: Vec<String>,
    /// What the first switched API pod reports.
    pub api_model: Option<ServedModel>,
}

impl SwitchReport {
    pub fn summary(&self) -> String {
        let total = self.switched.len() + self.failed.len();
        let mut text = format!("{}/{total} running pods switched", self.switched.len());
        if !self.failed.is_empty() {
            text.push_str(&format!(" (not switched: {})", self.failed.join("; ")));
        }
        text
    }
}

/// Asks every pod with an address to answer with `variant`, all at once.
pub async fn switch_variant(
    http: &reqwest::Client,
    token: &str,
    pods: &[ServingPod],
    variant: ModelVariant,
) -> SwitchReport {
    let calls = pods.iter().filter(|p| p.admin_url.is_some()).map(|pod| async move {
        let base = pod.admin_url.as_deref().unwrap_or_default();
        let response = http
            .post(format!("{base}/admin/variant"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "variant": variant.as_str() }))
            .timeout(POD_TIMEOUT)
            .send()
            .await;
        let outcome = match response {
            Ok(r) if r.status().is_success() => Ok(r.json::<ModelReport>().await.ok().and_then(ModelReport::served)),
            Ok(r) => Err(format!("{}: HTTP {}", pod.name, r.status())),
            Err(e) => Err(format!("{}: {e}", pod.name)),
        };
        (pod, outcome)
    });
    let mut report = SwitchReport::default();
    for (pod, outcome) in join_all(calls).await {
        match outcome {
            Ok(served) => {
                report.switched.push(pod.name.clone());
                if report.api_model.is_none() && pod.workload == crate::crd::Workload::Api {
                    report.api_model = served;
                }
            }
            Err(e) => report.failed.push(e),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_name_the_variant_or_nothing() {
        let parse = |s: &str| serde_json::from_str::<ModelReport>(s).unwrap().served();
        assert_eq!(
            parse(r#"{"model_variant":"baseline","model_version":"z-1"}"#),
            Some(ServedModel { variant: ModelVariant::Baseline, version: Some("z-1".into()), fallback: None })
        );
        assert_eq!(
            parse(
                r#"{"model_variant":"baseline","model_fallback":{"reason":"runtime_unavailable","detail":"no library"}}"#
            ),
            Some(ServedModel {
                variant: ModelVariant::Baseline,
                version: None,
                fallback: Some("runtime_unavailable".into())
            })
        );
        assert_eq!(parse(r#"{"model_variant":null}"#), None);
        assert_eq!(parse(r#"{"model_variant":"other"}"#), None);
    }

    #[test]
    fn the_summary_counts_pods() {
        let report =
            SwitchReport { switched: vec!["a".into(), "b".into()], failed: vec!["c: timeout".into()], api_model: None };
        assert_eq!(report.summary(), "2/3 running pods switched (not switched: c: timeout)");
    }
}
