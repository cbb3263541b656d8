//! The HTTP layer: the only code that knows axum. Handlers authenticate, parse, record and
//! enqueue; they never call external services.

pub mod api;
mod bitbucket;
pub mod error;
pub mod hooks;
pub mod limits;
mod request;
mod server;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::app::App;

pub use request::PeerIp;
pub use server::MAX_HEAD_BYTES;

/// Largest accepted webhook body by default (`server.limits.max_body_bytes`).
pub const MAX_BODY: usize = 1024 * 1024;

/// Every route. Hooks and the API pass the guards of [`limits`] first; `/healthz` does not, so a
/// load balancer's checks are never rate limited.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/hooks/jira", post(hooks::jira))
        .route("/hooks/circleci", post(hooks::circleci))
        .route("/hooks/bitbucket", post(bitbucket::push))
        .route("/api/releases", get(api::releases))
        .route("/api/releases/{id}", get(api::release))
        .route("/api/jobs/{id}/retry", post(api::retry_job))
        .route_layer(from_fn_with_state(app.guards.clone(), limits::guard))
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
    let limits = app.config.server.limits.clone();
    server::run(router(app), listener, &limits, shutdown).await
}

/// Says loudly, at start, what is open to whom: the read API without a token, and the sources
/// (see [`warn_about_sources`]).
pub fn warn_about_exposure(app: &App) {
    if app.api_token.is_none() {
        tracing::warn!(
            "server.api_token is not set: /api answers direct loopback callers only; set it to read releases from elsewhere"
        );
    }
    warn_about_sources(app);
}

/// Warns of sources that refuse every request (no credential) or accept any caller the allowlist
/// lets through (`require = "none"`).
pub fn warn_about_sources(app: &App) {
    for (checks, path) in [
        (&app.jira, "/hooks/jira"),
        (&app.circleci, "/hooks/circleci"),
        (&app.bitbucket_source, "/hooks/bitbucket"),
    ] {
        if checks.require == crate::config::Require::Nothing {
            tracing::warn!(
                source = checks.name,
                "{path} checks no credential (require = \"none\"): the allowlist alone decides"
            );
        } else if checks.secret.is_none() && checks.token.is_none() {
            tracing::warn!(
                source = checks.name,
                "{path} refuses every request: {} has no secret or token",
                checks.name
            );
        }
    }
}
