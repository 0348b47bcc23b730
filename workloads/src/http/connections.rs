//! Serving a router's HTTP/1.1 connections with bounds on slow and idle clients.
//!
//! `axum::serve` sets no timer on hyper, so hyper's header-read timeout never runs and a client
//! that trickles its headers (slowloris) or never sends a request holds its connection for as
//! long as it likes. Here every connection gets [`ConnectionLimits::header_read_timeout`]: the
//! whole request head must arrive within it, counted from the moment the server waits for it, on
//! a new connection and between the requests of a kept-alive one; otherwise hyper closes the
//! connection. Bodies are bounded by the request deadline (`api/deadline.rs`), responses such as
//! the prediction stream by their own flow control. Each request carries the client's address
//! ([`ConnectInfo`]) for per-client decisions (failed admin authentications).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// How long a client may take to send a request head (request line and headers), and how long a
/// kept-alive connection may stay silent before its next request. Long enough for any real
/// client on a slow link; short enough that a thousand slow connections are gone in seconds.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-connection bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { header_read_timeout: HEADER_READ_TIMEOUT }
    }
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown` completes;
/// then stops accepting and waits for the open connections to finish their requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(client));
            request
        });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%client, %err, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The client address of a request served by [`serve`] (`None` for a router driven without it,
/// as in tests that call the router directly).
pub fn client_address(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr)
}
