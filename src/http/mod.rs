//! The HTTP layer: the only code that knows axum. Handlers authenticate, parse, record and
//! enqueue; they never call external services.

pub mod api;
pub mod error;
pub mod hooks;
mod request;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};

use crate::app::App;

pub use request::PeerIp;

/// Largest accepted webhook body.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/hooks/jira", post(hooks::jira))
        .route("/hooks/circleci", post(hooks::circleci))
        .route("/api/releases", get(api::releases))
        .route("/api/releases/{id}", get(api::release))
        .route("/api/jobs/{id}/retry", post(api::retry_job))
        .route("/healthz", get(api::healthz))
        .fallback(api::not_found)
        .with_state(app)
}

/// Serves until `shutdown` resolves, then stops accepting and lets requests in flight finish.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
