//! The reconciler: one `VolatilityPipeline` in, its topics, children, monitoring and status out.
//!
//! Every reconcile runs the same steps, each idempotent:
//! finalizer → topics → children (server-side apply) → monitoring → automation (observe and
//! decide) → status → automation (act).
//! A converged pipeline makes no writes: children that already hold their desired fields are
//! not applied, an unchanged status is not patched, and events are only published for
//! changes. The automation's checks and lag measurements, when enabled, record their results in
//! the status at most once per check interval.

pub mod admin_token;
pub mod apply;
pub mod automation;
pub mod children;
pub mod cleanup;
pub mod error;
pub mod events;
pub mod model_switch;
pub mod rollout;
pub mod status;
pub mod topics;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, field};

use crate::crd::{TopicManagement, VolatilityPipeline, VolatilityPipelineStatus, Workload, WorkloadsStatus};
use crate::desired::RenderOptions;
use crate::discovery::SharedCapabilities;
use crate::metrics::Metrics;
use crate::observe::{ConsumerLag, ScrapeSource};
use crate::topics::TopicAdmin;
use apply::{ApplyOutcome, DesiredChild, FIELD_MANAGER, apply_child};
use automation::ScalingMemory;
use error::{Error, Result};
use rollout::ObservedDeployment;
use status::{AutomationStatus, Check, Observations, desired_status, initial_status};

/// Finalizer guarding topic deletion (`deletionPolicy: Delete`) and KafkaTopic orphaning.
pub const FINALIZER: &str = "spikewatch.io/cleanup";

/// Requeue of a ready pipeline: a safety net, watches trigger reconciles on every change.
const RESYNC: Duration = Duration::from_secs(300);
/// Requeue while something is still coming up (Deployments rolling out, KafkaTopics pending).
const PROGRESS_POLL: Duration = Duration::from_secs(30);
/// Retry of an invalid spec: slow, since only an edit (which triggers a reconcile) can fix it.
const INVALID_SPEC_RETRY: Duration = Duration::from_secs(300);

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    /// One recorder for all pipelines: it deduplicates repeated events into series.
    pub recorder: Recorder,
    /// Which optional APIs (monitoring, Strimzi) the cluster serves.
    pub capabilities: SharedCapabilities,
    /// Kafka Admin API access; a trait object so tests can stand in a broker.
    pub topic_admin: Arc<dyn TopicAdmin>,
    /// Consumer-group lag measurement (the autoscaler's input); a trait object likewise.
    pub consumer_lag: Arc<dyn ConsumerLag>,
    /// HTTP client for the pods' `/metrics`, `/version` and admin endpoints, and Prometheus.
    pub http: reqwest::Client,
    /// The rollback checks' metrics source when no Prometheus is configured, with the scrapes
    /// it keeps per pipeline.
    pub scrape: ScrapeSource,
    /// The autoscaler's recent recommendations per pipeline.
    pub scaling_memory: ScalingMemory,
    /// Workload image tag of pipelines that leave `spec.image.tag` unset (`--workload-image-tag`).
    pub default_image_tag: Option<String>,
    /// The namespace the operator runs in (`POD_NAMESPACE`).
    pub operator_namespace: Option<String>,
    /// Consecutive failures per pipeline, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Metrics,
        instance: &str,
        capabilities: SharedCapabilities,
        topic_admin: Arc<dyn TopicAdmin>,
        consumer_lag: Arc<dyn ConsumerLag>,
    ) -> Context {
        let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: Some(instance.into()) };
        // Pods and Prometheus are plain HTTP inside the cluster; the bounds are per request.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("spikewatch-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            capabilities,
            topic_admin,
            consumer_lag,
            scrape: ScrapeSource::new(http.clone()),
            http,
            scaling_memory: ScalingMemory::default(),
            default_image_tag: None,
            operator_namespace: None,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the workload image tag of pipelines that do not name one.
    pub fn with_default_image_tag(mut self, tag: Option<String>) -> Context {
        self.default_image_tag = tag;
        self
    }

    /// Sets the namespace the operator runs in.
    pub fn with_operator_namespace(mut self, namespace: Option<String>) -> Context {
        self.operator_namespace = namespace;
        self
    }

    /// Forgets what the automation remembered of a deleted pipeline.
    pub fn forget(&self, vp: &VolatilityPipeline) {
        let key = Self::failure_key(vp);
        self.scrape.forget(&key);
        self.scaling_memory.forget(&key);
    }

    fn failure_key(vp: &VolatilityPipeline) -> String {
        format!("{}/{}", vp.namespace().unwrap_or_default(), vp.name_any())
    }

    /// Records one more failure and returns the delay before the next attempt:
    /// 5 s, 10 s, 20 s, … capped at 5 minutes.
    pub fn backoff(&self, vp: &VolatilityPipeline) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(Self::failure_key(vp)).or_insert(0);
        *count = count.saturating_add(1);
        let exponent = (*count - 1).min(6);
        Duration::from_secs(5 * 2u64.pow(exponent)).min(Duration::from_secs(300))
    }

    fn reset_backoff(&self, vp: &VolatilityPipeline) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&Self::failure_key(vp));
    }
}

/// Entry point of the controller for one object.
pub async fn reconcile(vp: Arc<VolatilityPipeline>, ctx: Arc<Context>) -> Result<Action> {
    let span = tracing::info_span!(
        "reconcile",
        namespace = %vp.namespace().unwrap_or_default(),
        name = %vp.name_any(),
        generation = field::Empty
    );
    if let Some(generation) = vp.metadata.generation {
        span.record("generation", generation);
    }
    async move {
        let _timer = ctx.metrics.count_and_measure();
        let namespace =
            vp.namespace().ok_or_else(|| Error::InvalidSpec("VolatilityPipeline must be namespaced".into()))?;
        let api: Api<VolatilityPipeline> = Api::namespaced(ctx.client.clone(), &namespace);
        if vp.status.is_none() && vp.metadata.deletion_timestamp.is_none() {
            write_status(&vp, &ctx, &namespace, initial_status(&vp, now())).await?;
        }
        let action = finalizer(&api, FINALIZER, vp.clone(), |event| async {
            match event {
                Finalizer::Apply(vp) => reconcile_apply(&vp, &ctx, &namespace).await,
                Finalizer::Cleanup(vp) => cleanup::cleanup(&vp, &ctx, &namespace).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)))?;
        ctx.reset_backoff(&vp);
        Ok(action)
    }
    .instrument(span)
    .await
}

/// What to do after a failed reconcile: count it, then retry with backoff when a retry can
/// help, slowly when only an edit of the spec can.
pub fn error_policy(vp: Arc<VolatilityPipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failure(error.metric_label());
    let delay = if error.is_retryable() { ctx.backoff(&vp) } else { INVALID_SPEC_RETRY };
    tracing::warn!(
        namespace = %vp.namespace().unwrap_or_default(),
        name = %vp.name_any(),
        reason = error.metric_label(),
        retry_in_s = delay.as_secs(),
        "reconcile failed: {error}"
    );
    Action::requeue(delay)
}

async fn reconcile_apply(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<Action> {
    let capabilities = ctx.capabilities.read().await.clone();
    let options = RenderOptions {
        kafka_topic_version: capabilities.kafka_topic_version,
        default_image_tag: ctx.default_image_tag.clone(),
        operator_namespace: ctx.operator_namespace.clone(),
    };
    let desired = match children::desired_children(vp, &options) {
        Ok(desired) => desired,
        Err(e) => {
            let check = Check::failed(e.reason(), e.to_string());
            return Err(report_failure(vp, ctx, namespace, check, None, e).await);
        }
    };

    // 1. Topics, before anything consumes or produces.
    let topics = match vp.spec.kafka.topic_management {
        TopicManagement::Admin => ensure_topics_via_admin(vp, ctx, namespace).await,
        TopicManagement::Strimzi => {
            ensure_topics_via_strimzi(vp, ctx, namespace, &desired.kafka_topics, capabilities.strimzi).await
        }
    };
    let topics = match topics {
        Ok(check) => check,
        Err(e) => {
            // Workloads started earlier keep running: report them as they are.
            let workloads = observe_workloads(ctx, namespace, &desired).await;
            let check = Check::failed(e.reason(), e.to_string());
            return Err(report_failure(vp, ctx, namespace, check, workloads, e).await);
        }
    };
    if !topics.ok {
        // KafkaTopics not ready yet: wait, without starting workloads against missing topics.
        let observations = Observations::topics_only(topics);
        update_status(vp, ctx, namespace, &observations, &AutomationStatus::default()).await?;
        return Ok(Action::requeue(PROGRESS_POLL));
    }

    // 2. Children: configuration and plumbing first, then the Deployments that use them.
    for child in &desired.core {
        apply_and_announce(vp, ctx, namespace, child).await?;
    }
    for (resource, name) in &desired.unwanted {
        remove_unwanted(vp, ctx, namespace, resource, name).await?;
    }
    if admin_token::ensure(vp, ctx, namespace).await? {
        events::normal(
            &ctx.recorder,
            vp,
            "Created",
            "Apply",
            format!("created Secret {}", crate::desired::admin_token_secret_name(vp)),
        )
        .await;
    }
    let mut workloads = WorkloadsStatus::default();
    let mut rollouts_pending = vec![];
    for (workload, child) in &desired.deployments {
        let observed = ObservedDeployment::from_object(&apply_and_announce(vp, ctx, namespace, child).await?);
        *workloads.get_mut(*workload) = observed.replicas;
        if let Some(pending) = observed.pending {
            rollouts_pending.push(format!("{workload}: {pending}"));
        }
    }

    // 3. Monitoring, when the cluster can take it; KEDA's objects likewise.
    let monitoring = ensure_monitoring(vp, ctx, namespace, &desired, capabilities.monitoring).await?;
    if capabilities.keda {
        for child in &desired.keda {
            apply_and_announce(vp, ctx, namespace, child).await?;
        }
    }

    // 4. Automation, first half: observe and decide (rollback, scaling).
    let plan = automation::plan(vp, ctx, namespace, &workloads).await;

    // 5. Status, recording the decisions before anything acts on them.
    let observations = Observations {
        topics,
        workloads: Some(workloads),
        rollouts_pending,
        monitoring: Some(monitoring),
        stalled: None,
    };
    let ready = observations.rollouts_pending.is_empty()
        && observations
            .workloads
            .as_ref()
            .is_some_and(|w| Workload::ALL.iter().all(|&k| w.get(k).ready_replicas >= w.get(k).replicas));
    update_status(vp, ctx, namespace, &observations, &plan.status).await?;

    // 6. Automation, second half: switch the running pods, scale, tell.
    automation::act(vp, ctx, namespace, plan.actions).await;
    let poll = if ready { RESYNC } else { PROGRESS_POLL };
    Ok(Action::requeue(plan.requeue.map_or(poll, |r| r.min(poll))))
}

/// Records a failed step in the status and as a Warning event, and hands the error back.
async fn report_failure(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    topics: Check,
    workloads: Option<WorkloadsStatus>,
    error: Error,
) -> Error {
    let stalled = (!error.is_retryable()).then(|| Check::failed(error.reason(), error.to_string()));
    let observations = Observations { topics, workloads, rollouts_pending: vec![], monitoring: None, stalled };
    if let Err(e) = update_status(vp, ctx, namespace, &observations, &AutomationStatus::default()).await {
        tracing::warn!(error = %e, "could not record the failure in the status");
    }
    events::warning(&ctx.recorder, vp, error.reason(), "Reconcile", error.to_string()).await;
    error
}

async fn ensure_topics_via_admin(vp: &VolatilityPipeline, ctx: &Context, namespace: &str) -> Result<Check> {
    let connection = topics::connection(vp, ctx, namespace).await?;
    let desired = topics::desired_topics(&vp.spec.kafka);
    let report = ctx.topic_admin.ensure(&connection, &desired).await?;
    if !report.applied.is_empty() {
        let changes: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
        events::normal(&ctx.recorder, vp, "TopicsUpdated", "EnsureTopics", changes.join("; ")).await;
    }
    for refused in &report.shrink_refused {
        events::warning(&ctx.recorder, vp, "PartitionShrinkRefused", "EnsureTopics", refused.to_string()).await;
    }
    Ok(topics::topics_check(&report, &desired))
}

async fn ensure_topics_via_strimzi(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    kafka_topics: &[DesiredChild],
    strimzi_served: bool,
) -> Result<Check> {
    if !strimzi_served {
        return Err(Error::InvalidSpec(
            "topicManagement is strimzi but the cluster does not serve kafka.strimzi.io KafkaTopic".into(),
        ));
    }
    let mut pending = Vec::new();
    for child in kafka_topics {
        let observed = apply_and_announce(vp, ctx, namespace, child).await?;
        if !crate::topics::strimzi::kafka_topic_ready(&observed) {
            pending.push(child.name.clone());
        }
    }
    Ok(if pending.is_empty() {
        Check::ok("TopicsReady", "every KafkaTopic is Ready")
    } else {
        Check::failed("KafkaTopicsNotReady", format!("waiting for KafkaTopic {} to become Ready", pending.join(", ")))
    })
}

async fn ensure_monitoring(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    desired: &children::DesiredChildren,
    monitoring_served: bool,
) -> Result<Check> {
    if let Some(dashboard) = &desired.dashboard {
        apply_and_announce(vp, ctx, namespace, dashboard).await?;
    }
    let wanted = &vp.spec.monitoring;
    if !wanted.service_monitor && !wanted.prometheus_rule {
        return Ok(Check::ok("MonitoringNotRequested", "no ServiceMonitor or PrometheusRule requested"));
    }
    if !monitoring_served {
        return Ok(Check::failed(
            "MonitoringCRDsMissing",
            "the cluster does not serve monitoring.coreos.com (Prometheus Operator): ServiceMonitors and \
             PrometheusRule are skipped; the pipeline runs without them",
        ));
    }
    for child in &desired.monitoring {
        apply_and_announce(vp, ctx, namespace, child).await?;
    }
    Ok(Check::ok("MonitoringReady", "ServiceMonitors and PrometheusRule applied"))
}

/// Applies one child (skipped when converged) and publishes an event when it changed.
async fn apply_and_announce(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    child: &DesiredChild,
) -> Result<DynamicObject> {
    let (outcome, observed) = apply_child(&ctx.client, namespace, child).await?;
    match outcome {
        ApplyOutcome::Unchanged => {}
        ApplyOutcome::Created => {
            tracing::info!(kind = child.kind(), child = %child.name, "created");
            events::normal(&ctx.recorder, vp, "Created", "Apply", format!("created {} {}", child.kind(), child.name))
                .await;
        }
        ApplyOutcome::Updated => {
            tracing::info!(kind = child.kind(), child = %child.name, "updated");
            events::normal(&ctx.recorder, vp, "Updated", "Apply", format!("updated {} {}", child.kind(), child.name))
                .await;
        }
    }
    Ok(observed)
}

/// Deletes a child the spec no longer asks for, if it exists and is this pipeline's (owned by
/// it): a GET only when it is already gone.
async fn remove_unwanted(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    resource: &ApiResource,
    name: &str,
) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, resource);
    let Some(existing) = api.get_opt(name).await? else {
        return Ok(());
    };
    let ours = existing.metadata.owner_references.iter().flatten().any(|o| Some(&o.uid) == vp.metadata.uid.as_ref());
    if !ours {
        return Ok(());
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(kind = %resource.kind, child = name, "deleted");
    events::normal(&ctx.recorder, vp, "Deleted", "Apply", format!("deleted {} {name}", resource.kind)).await;
    Ok(())
}

/// Replicas of the pipeline's Deployments as they are, without applying anything; `None`
/// when none exists yet (or they cannot be read).
async fn observe_workloads(
    ctx: &Context,
    namespace: &str,
    desired: &children::DesiredChildren,
) -> Option<WorkloadsStatus> {
    let mut workloads = WorkloadsStatus::default();
    let mut found = false;
    for (workload, child) in &desired.deployments {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &child.resource);
        if let Ok(Some(observed)) = api.get_opt(&child.name).await {
            *workloads.get_mut(*workload) = ObservedDeployment::from_object(&observed).replicas;
            found = true;
        }
    }
    found.then_some(workloads)
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Patches the status subresource, unless it would not change.
async fn update_status(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    observations: &Observations,
    automation: &AutomationStatus,
) -> Result<VolatilityPipelineStatus> {
    let status = desired_status(vp, observations, automation, now());
    if vp.status.as_ref() == Some(&status) {
        return Ok(status);
    }
    write_status(vp, ctx, namespace, status).await
}

/// Server-side applies `status` to the status subresource.
async fn write_status(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    status: VolatilityPipelineStatus,
) -> Result<VolatilityPipelineStatus> {
    let api: Api<VolatilityPipeline> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({
        "apiVersion": VolatilityPipeline::api_version(&()),
        "kind": VolatilityPipeline::kind(&()),
        "status": status,
    });
    api.patch_status(&vp.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(status)
}

/// Which namespaces the controller watches: all of them (a ClusterRole), or a list (a Role per
/// namespace; the controller never lists anything cluster-wide then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchScope {
    All,
    Namespaces(Vec<String>),
}

impl WatchScope {
    /// From `--watch-namespaces`: empty means all namespaces.
    pub fn from_list(namespaces: &[String]) -> WatchScope {
        let mut list: Vec<String> = namespaces.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
        list.sort();
        list.dedup();
        if list.is_empty() { WatchScope::All } else { WatchScope::Namespaces(list) }
    }
}

/// Runs the controller until `shutdown` resolves (then finishes the reconciles in flight). With
/// a namespace list, one controller per namespace runs, each with its own watches.
pub async fn run(ctx: Arc<Context>, scope: WatchScope, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let shutdown = shutdown.shared();
    match scope {
        WatchScope::All => run_in(ctx, None, shutdown).await,
        WatchScope::Namespaces(namespaces) => {
            futures::future::join_all(
                namespaces.into_iter().map(|namespace| run_in(ctx.clone(), Some(namespace), shutdown.clone())),
            )
            .await;
        }
    }
}

fn api_in<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

async fn run_in(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let namespace = namespace.as_deref();
    let pipelines: Api<VolatilityPipeline> = api_in(&client, namespace);
    if let Err(kube::Error::Api(status)) = pipelines.list(&kube::api::ListParams::default().limit(1)).await
        && status.code == 404
    {
        tracing::error!(
            "the VolatilityPipeline CRD is not installed (kubectl apply -f crds/volatilitypipelines.spikewatch.io.yaml); \
             waiting for it"
        );
    }
    tracing::info!(namespace = namespace.unwrap_or("<all>"), "watching VolatilityPipelines");
    let children = watcher::Config::default().labels(children::MANAGED_BY_SELECTOR);
    Controller::new(pipelines, watcher::Config::default().any_semantic())
        .owns(api_in::<Deployment>(&client, namespace), children.clone())
        .owns(api_in::<Service>(&client, namespace), children.clone())
        .owns(api_in::<ConfigMap>(&client, namespace), children.clone())
        .owns(api_in::<ServiceAccount>(&client, namespace), children.clone())
        .owns(api_in::<PodDisruptionBudget>(&client, namespace), children.clone())
        .owns(api_in::<NetworkPolicy>(&client, namespace), children)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(object = %object, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "controller error"),
            }
        })
        .await;
}
