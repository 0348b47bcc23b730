//! `spikewatch-operator run`: connect to the cluster, serve health and metrics, take part in
//! leader election, and run the controller while leading.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use tokio::sync::{RwLock, watch};
use tokio::time::Instant;

use crate::controller::{self, Context};
use crate::discovery::{self, Capabilities};
use crate::http::{self, HttpState};
use crate::leader::{LeaderElector, LeaseConfig};
use crate::metrics::Metrics;
use crate::telemetry;
use crate::observe::KafkaConsumerLag;
use crate::topics::KafkaTopicAdmin;

/// Name of the leader-election Lease (and of the event reporter).
pub const LEASE_NAME: &str = "spikewatch-operator";

/// How long a stopping controller may take to finish the reconciles in flight.
const CONTROLLER_STOP_GRACE: Duration = Duration::from_secs(20);

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
}

/// Runs until SIGTERM/SIGINT. Startup failures print one line and exit non-zero.
pub fn main(args: RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no Kubernetes cluster reachable (no usable kubeconfig or in-cluster service account): {e}"))?;
    client.apiserver_version().await.map_err(|e| {
        format!("no Kubernetes cluster reachable: the API server did not answer: {e}")
    })?;
    Ok(client)
}

async fn run(args: RunArgs) -> Result<(), String> {
    telemetry::init();
    let client = connect().await?;

    let registry = prometheus::Registry::new();
    let metrics =
        Metrics::register(&registry).map_err(|e| format!("cannot register metrics: {e}"))?;
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.http_addr))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    tracing::info!(addr = %local_addr, "serving /metrics, /healthz, /readyz");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(forward_termination_signals(shutdown_tx));

    let router = http::router(HttpState {
        registry,
        ready: ready.clone(),
    });
    let mut http_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        let stop = async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let capabilities = Arc::new(RwLock::new(discovery::discover(&client).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "API discovery failed; assuming no optional APIs until the next refresh");
        Capabilities::default()
    })));
    let discovery_task = tokio::spawn(discovery::refresh_periodically(
        client.clone(),
        capabilities.clone(),
        Duration::from_secs(300),
    ));

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let namespace = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics.clone(),
        &identity,
        capabilities,
        Arc::new(KafkaTopicAdmin::default()),
        Arc::new(KafkaConsumerLag::default()),
    ));
    let elector = LeaderElector::new(client, LeaseConfig::new(LEASE_NAME, namespace, identity));
    ready.store(true, Ordering::Relaxed);

    lead_while_elected(&elector, ctx, &metrics, shutdown_rx).await;

    ready.store(false, Ordering::Relaxed);
    discovery_task.abort();
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// Standby → leader → (lost) standby → … until shutdown. The controller runs only while leading.
async fn lead_while_elected(
    elector: &LeaderElector,
    ctx: Arc<Context>,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let lease = elector.config().clone();
    tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity, "waiting for leadership");
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = acquire(elector) => {}
        }
        tracing::info!(identity = %lease.identity, "acquired the leader Lease; starting the controller");
        metrics.leader.set(1);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let controller = tokio::spawn(controller::run(ctx.clone(), async move {
            let _ = stop_rx.await;
        }));
        let outcome = hold(elector, &mut shutdown).await;
        let _ = stop_tx.send(());
        // Reconciles in flight finish; a controller that cannot stop (e.g. its first list never
        // succeeded) is cut off rather than holding the pod until it is killed.
        let abort = controller.abort_handle();
        if tokio::time::timeout(CONTROLLER_STOP_GRACE, controller)
            .await
            .is_err()
        {
            tracing::warn!("controller did not stop within {CONTROLLER_STOP_GRACE:?}; aborting it");
            abort.abort();
        }
        metrics.leader.set(0);
        match outcome {
            Held::Shutdown => {
                elector.release().await;
                return;
            }
            Held::Lost => {
                tracing::warn!("lost the leader Lease; controller stopped, back to standby")
            }
        }
    }
}

async fn acquire(elector: &LeaderElector) {
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
        }
        tokio::time::sleep(elector.config().retry_period).await;
    }
}

enum Held {
    Lost,
    Shutdown,
}

/// Renews every retry period; gives up when another replica holds the Lease or renewals have
/// failed for longer than the renew deadline.
async fn hold(elector: &LeaderElector, shutdown: &mut watch::Receiver<bool>) -> Held {
    let config = elector.config().clone();
    let mut last_renewal = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Held::Shutdown,
            () = tokio::time::sleep(config.retry_period) => {}
        }
        match elector.try_acquire_or_renew().await {
            Ok(true) => last_renewal = Instant::now(),
            Ok(false) => return Held::Lost,
            Err(e) => {
                tracing::warn!(error = %e, "renewing the leader Lease failed");
                if last_renewal.elapsed() > config.renew_deadline {
                    return Held::Lost;
                }
            }
        }
    }
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
    std::env::var("HOSTNAME")
        .unwrap_or_else(|_| format!("spikewatch-operator-{}", std::process::id()))
}
