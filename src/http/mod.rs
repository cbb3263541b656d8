//! The HTTP layer: routes, answers and limits. Handlers authenticate, parse, ask the core what a
//! delivery means, have the store record it, and answer; they never call external services.

pub mod api;
mod bitbucket;
mod context;
mod dashboard;
pub mod error;
pub mod hooks;
pub mod limits;
mod metrics;
mod request;
mod server;
mod slack;
mod stats;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::config::Config;

pub use context::Context;
pub use request::PeerIp;
pub use server::MAX_HEAD_BYTES;

/// Every route. Hooks and the API pass the guards of [`limits`] first; `/healthz` does not, so a
/// load balancer's checks are never rate limited.
pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/hooks/jira", post(hooks::jira))
        .route("/hooks/circleci", post(hooks::circleci))
        .route("/hooks/bitbucket", post(bitbucket::push))
        .route("/hooks/slack", post(slack::hook))
        .route("/api/releases", get(api::releases))
        .route("/api/releases/{id}", get(api::release))
        .route("/api/stats", get(stats::stats))
        .route("/api/jobs/{id}/retry", post(api::retry_job))
        .route("/api/releases/{id}/promote", post(api::promote))
        .route("/api/releases/{id}/approve", post(api::approve))
        .route(
            "/api/projects/{project}/environments/{env}/rollback",
            post(api::rollback),
        )
        .route("/metrics", get(metrics::metrics))
        .merge(dashboard::routes())
        .route_layer(from_fn_with_state(ctx.guards.clone(), limits::guard))
        // Outside the guards, so that what they refuse is counted too.
        .route_layer(from_fn_with_state(
            ctx.metrics.clone(),
            metrics::count_hooks,
        ))
        .route("/healthz", get(api::healthz))
        .fallback(api::not_found)
        .with_state(ctx)
}

/// Serves until `shutdown` resolves, then stops accepting and lets requests in flight finish.
pub async fn serve(
    ctx: Context,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ctx.config.server.limits.clone();
    server::run(router(ctx), listener, &limits, shutdown).await
}

/// Says loudly, at start, what is open to whom: the read API without a token, and the sources
/// that refuse every request (no credential) or accept any caller the allowlist lets through.
pub fn warn_about_exposure(config: &Config) {
    if config.server.api_token.is_none() {
        tracing::warn!(
            "server.api_token is not set: /api answers direct loopback callers only; set it to read releases from elsewhere"
        );
    }
    let s = &config.sources;
    for (checks, path) in [
        (&s.jira.auth, "/hooks/jira"),
        (&s.circleci, "/hooks/circleci"),
        (&s.bitbucket, "/hooks/bitbucket"),
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
