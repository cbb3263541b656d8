//! The HTTP server: accepts connections and serves HTTP/1.1 with hyper, with the limits that
//! `axum::serve` cannot set. A client must send its request head within
//! `server.limits.header_timeout_secs` (this also closes idle keep-alive connections), a request
//! head cannot exceed [`MAX_HEAD_BYTES`], and at most `server.limits.max_connections` connections
//! are open at once; beyond that, new connections wait in the kernel's accept queue.
//!
//! HTTP/2 is not spoken: webhook senders use HTTP/1.1, and TLS (with HTTP/2 if wanted) belongs
//! to the proxy in front.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

use crate::config::LimitsConfig;

/// Largest request head (request line and headers) a client may send.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets requests
/// in flight finish (for at most the request timeout and 5 s more).
pub async fn run(
    router: Router,
    listener: TcpListener,
    limits: &LimitsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = connection(limits)
            .serve_connection(TokioIo::new(stream), service(router.clone(), peer));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, %peer, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let grace = limits.request_timeout() + Duration::from_secs(5);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "connections still open after the grace period; closing them"
        );
    }
    Ok(())
}

fn connection(limits: &LimitsConfig) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .max_header_size(MAX_HEAD_BYTES);
    b
}

/// The router as a hyper service, with the peer's address as connect info.
fn service(
    router: Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        router.call(req.map(Body::new))
    })
}
