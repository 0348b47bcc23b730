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

/// Address of the HTTP endpoint when `--bind` is not given.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoint, `host:port` [default:
    /// 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR", env = "SPIKEWATCH_BIND", alias = "http-addr")]
    pub bind: Option<SocketAddr>,
    /// Namespace of the leader-election Lease; defaults to the client's namespace.
    #[arg(long, value_name = "NAMESPACE", env = "SPIKEWATCH_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease; defaults to the host name.
    #[arg(long, value_name = "NAME", env = "SPIKEWATCH_IDENTITY")]
    pub identity: Option<String>,
    /// Namespaces whose pipelines this operator reconciles, comma-separated; empty (the
    /// default) means every namespace. With a list the operator needs RBAC in those namespaces
    /// only and never lists or watches anything cluster-wide.
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "SPIKEWATCH_WATCH_NAMESPACES",
        value_delimiter = ',',
        value_parser = parse_namespace
    )]
    pub watch_namespaces: Vec<String>,
    /// Workload image tag for pipelines that leave `spec.image.tag` unset (the chart sets it
    /// from `workloadImage.tag`). Unset: such pipelines are reported as stalled.
    #[arg(long, value_name = "TAG", env = "SPIKEWATCH_WORKLOAD_IMAGE_TAG", value_parser = parse_image_tag)]
    pub workload_image_tag: Option<String>,
    /// Log format: `text` or `json` (one object per line). Default: text on a terminal, JSON
    /// otherwise.
    #[arg(long, value_name = "FORMAT", env = "SPIKEWATCH_LOG_FORMAT", value_enum, ignore_case = true)]
    pub log_format: Option<telemetry::LogFormat>,
    /// `(deprecated name, name to use)` of the environment variables read under their old name.
    #[arg(skip)]
    pub deprecated_env: Vec<(&'static str, &'static str)>,
}

/// The variables of `run`'s flags and the names they had before the `SPIKEWATCH_` prefix, still
/// read (with a warning) for one release when the prefixed one is unset.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("SPIKEWATCH_BIND", "HTTP_ADDR"),
    ("SPIKEWATCH_LEASE_NAMESPACE", "POD_NAMESPACE"),
    ("SPIKEWATCH_IDENTITY", "POD_NAME"),
    ("SPIKEWATCH_WATCH_NAMESPACES", "WATCH_NAMESPACES"),
    ("SPIKEWATCH_WORKLOAD_IMAGE_TAG", "WORKLOAD_IMAGE_TAG"),
    ("SPIKEWATCH_LOG_FORMAT", "LOG_FORMAT"),
];

impl RunArgs {
    /// Fills the flags that neither the command line nor their `SPIKEWATCH_` variable set from
    /// the variables' deprecated names, and records which were used.
    pub fn with_deprecated_env(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<RunArgs, String> {
        let mut old = |new: &'static str| -> Option<String> {
            let &(_, name) = ENV_ALIASES.iter().find(|(n, _)| *n == new)?;
            let value = lookup(new).is_none().then(|| lookup(name)).flatten()?;
            self.deprecated_env.push((name, new));
            Some(value)
        };
        let invalid = |name: &str, e: String| format!("invalid value for environment variable {name}: {e}");
        let bind = if self.bind.is_none() { old("SPIKEWATCH_BIND") } else { None };
        let lease_namespace = if self.lease_namespace.is_none() { old("SPIKEWATCH_LEASE_NAMESPACE") } else { None };
        let identity = if self.identity.is_none() { old("SPIKEWATCH_IDENTITY") } else { None };
        let watch = if self.watch_namespaces.is_empty() { old("SPIKEWATCH_WATCH_NAMESPACES") } else { None };
        let tag = if self.workload_image_tag.is_none() { old("SPIKEWATCH_WORKLOAD_IMAGE_TAG") } else { None };
        let format = if self.log_format.is_none() { old("SPIKEWATCH_LOG_FORMAT") } else { None };
        if let Some(v) = bind {
            self.bind = Some(v.parse().map_err(|e: std::net::AddrParseError| invalid("HTTP_ADDR", e.to_string()))?);
        }
        self.lease_namespace = self.lease_namespace.or(lease_namespace);
        self.identity = self.identity.or(identity);
        if let Some(v) = watch {
            self.watch_namespaces = v
                .split(',')
                .map(parse_namespace)
                .collect::<Result<_, _>>()
                .map_err(|e| invalid("WATCH_NAMESPACES", e))?;
        }
        if let Some(v) = tag {
            self.workload_image_tag = Some(parse_image_tag(&v).map_err(|e| invalid("WORKLOAD_IMAGE_TAG", e))?);
        }
        if let Some(v) = format {
            self.log_format = Some(
                <telemetry::LogFormat as clap::ValueEnum>::from_str(&v, true)
                    .map_err(|_| invalid("LOG_FORMAT", format!("{v:?} (text or json)")))?,
            );
        }
        Ok(self)
    }
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
    let args = match args.with_deprecated_env(|name| std::env::var(name).ok()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("spikewatch-operator: {message}");
            return ExitCode::FAILURE;
        }
    };
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
    for (old, new) in &args.deprecated_env {
        tracing::warn!("environment variable {old} is deprecated: set {new}");
    }
    let client = connect().await?;

    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry).map_err(|e| format!("cannot register metrics: {e}"))?;
    let ready = Arc::new(AtomicBool::new(false));
    let bind = args.bind.unwrap_or(DEFAULT_BIND);
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| format!("cannot listen on {bind}: {e}"))?;
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

#[cfg(test)]
mod env_tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn deprecated_names_fill_only_what_is_unset_and_are_recorded() {
        let env: HashMap<&str, &str> = [
            ("HTTP_ADDR", "127.0.0.1:9"),
            ("POD_NAMESPACE", "ops"),
            ("WATCH_NAMESPACES", "a,b"),
            ("WORKLOAD_IMAGE_TAG", "old"),
            ("SPIKEWATCH_WORKLOAD_IMAGE_TAG", "new"),
        ]
        .into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let parsed = Cli::parse_from(["run", "--identity", "me"]).run;
        let mut args = parsed.with_deprecated_env(lookup).unwrap();
        assert_eq!(args.bind, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(args.lease_namespace.as_deref(), Some("ops"));
        assert_eq!(args.watch_namespaces, ["a", "b"]);
        assert_eq!(args.identity.as_deref(), Some("me"), "the flag wins");
        assert_eq!(args.workload_image_tag, None, "the prefixed name is set: the old one is ignored");
        args.deprecated_env.sort();
        assert_eq!(
            args.deprecated_env,
            [
                ("HTTP_ADDR", "SPIKEWATCH_BIND"),
                ("POD_NAMESPACE", "SPIKEWATCH_LEASE_NAMESPACE"),
                ("WATCH_NAMESPACES", "SPIKEWATCH_WATCH_NAMESPACES")
            ]
        );
        let bad: HashMap<&str, &str> = [("HTTP_ADDR", "nowhere")].into();
        let err = Cli::parse_from(["run"]).run.with_deprecated_env(|k| bad.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.contains("HTTP_ADDR"), "{err}");
    }
}
