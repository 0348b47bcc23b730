//! `spikewatch-operator run`: connect to the cluster, serve health and metrics, take part in
//! leader election, and run the controller while leading.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use tokio::sync::{RwLock, watch};

use crate::controller::{self, Context, WatchScope};
use crate::discovery::{self, Capabilities};
use crate::http::{self, HttpState};
use crate::leader::{LeaderElector, LeaseConfig, lead_while_elected};
use crate::metrics::Metrics;
use crate::observe::KafkaConsumerLag;
use crate::telemetry;
use crate::topics::KafkaTopicAdmin;

/// Name of the leader-election Lease (and of the event reporter).
pub const LEASE_NAME: &str = "spikewatch-operator";

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoint.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Namespace of the leader-election Lease; defaults to the client's namespace.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease; defaults to the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Namespaces whose pipelines this operator reconciles, comma-separated; empty (the
    /// default) means every namespace. With a list the operator needs RBAC in those namespaces
    /// only and never lists or watches anything cluster-wide.
    #[arg(long, env = "WATCH_NAMESPACES", value_delimiter = ',', value_parser = parse_namespace)]
    pub watch_namespaces: Vec<String>,
    /// Workload image tag for pipelines that leave `spec.image.tag` unset (the chart sets it
    /// from `workloadImage.tag`). Unset: such pipelines are reported as stalled.
    #[arg(long, env = "WORKLOAD_IMAGE_TAG", value_parser = parse_image_tag)]
    pub workload_image_tag: Option<String>,
    /// Log format: `text` or `json` (one object per line). Default: text on a terminal, JSON
    /// otherwise.
    #[arg(long, env = "LOG_FORMAT", value_enum, ignore_case = true)]
    pub log_format: Option<telemetry::LogFormat>,
}

/// A namespace name (RFC 1123 label), or empty (a trailing comma).
fn parse_namespace(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value.len() <= 63
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("{value:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"))
    }
}

/// An image tag as the OCI distribution spec allows it.
fn parse_image_tag(value: &str) -> Result<String, String> {
    let mut chars = value.chars();
    let valid = value.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("{value:?} is not an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"))
    }
}

/// Runs until SIGTERM/SIGINT. Startup failures print one line and exit non-zero.
pub fn main(args: RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("spikewatch-operator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("spikewatch-operator: {}", message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Connects to the cluster of the kubeconfig (`KUBECONFIG`, `~/.kube/config`) or of the pod's
/// service account, and checks the API server answers.
pub async fn connect() -> Result<Client, String> {
    let client = Client::try_default().await.map_err(|e| {
        format!("no Kubernetes cluster reachable (no usable kubeconfig or in-cluster service account): {e}")
    })?;
    client
        .apiserver_version()
        .await
        .map_err(|e| format!("no Kubernetes cluster reachable: the API server did not answer: {e}"))?;
    Ok(client)
}

async fn run(args: RunArgs) -> Result<(), String> {
    telemetry::init(args.log_format);
    let client = connect().await?;

    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry).map_err(|e| format!("cannot register metrics: {e}"))?;
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.http_addr))?;
    let local_addr = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    tracing::info!(addr = %local_addr, "serving /metrics, /healthz, /readyz");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(forward_termination_signals(shutdown_tx));

    let router = http::router(HttpState { registry, ready: ready.clone() });
    let mut http_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        let stop = async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let capabilities = Arc::new(RwLock::new(discovery::discover(&client).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "API discovery failed; assuming no optional APIs until the next refresh");
        Capabilities::default()
    })));
    let discovery_task =
        tokio::spawn(discovery::refresh_periodically(client.clone(), capabilities.clone(), Duration::from_secs(300)));

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let namespace = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            metrics.clone(),
            &identity,
            capabilities,
            Arc::new(KafkaTopicAdmin::default()),
            Arc::new(KafkaConsumerLag::default()),
        )
        .with_default_image_tag(args.workload_image_tag.clone())
        .with_operator_namespace(Some(namespace.clone())),
    );
    let scope = WatchScope::from_list(&args.watch_namespaces);
    let elector = LeaderElector::new(client, LeaseConfig::new(LEASE_NAME, namespace, identity));
    ready.store(true, Ordering::Relaxed);

    let leader_metric = metrics.leader.clone();
    lead_while_elected(
        &elector,
        shutdown_rx,
        move |leading| leader_metric.set(i64::from(leading)),
        move |stop| {
            controller::run(ctx.clone(), scope.clone(), async move {
                let _ = stop.await;
            })
        },
    )
    .await;

    ready.store(false, Ordering::Relaxed);
    discovery_task.abort();
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

async fn forward_termination_signals(shutdown: watch::Sender<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = shutdown.send(true);
}

fn default_identity() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| format!("spikewatch-operator-{}", std::process::id()))
}
