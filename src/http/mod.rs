//! The HTTP layer: routes, answers and limits. Handlers authenticate, parse, ask the core what a
//! delivery means, have the store record it, and answer; they never call external services.

pub mod api;
mod bitbucket;
pub mod error;
pub mod hooks;
pub mod limits;
mod request;
mod server;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::config::Config;
use crate::store::Store;
use limits::Guards;

pub use request::PeerIp;
pub use server::MAX_HEAD_BYTES;

/// What the handlers need: the configuration, the store, the guards, and the worker's wake-up.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Store,
    /// Rate limit and bound on requests in flight, shared by every request.
    pub guards: Arc<Guards>,
    /// Wakes one of the local worker's loops per job enqueued.
    pub wake: Arc<Notify>,
}

impl Context {
    pub fn new(config: Arc<Config>, store: Store, wake: Arc<Notify>) -> Self {
        let guards = Arc::new(Guards::new(
            &config.server.limits,
            &config.server.trusted_proxies,
        ));
        Self {
            config,
            store,
            guards,
            wake,
        }
    }

    /// Where a release's record can be read.
    pub fn status_url(&self, release: crate::domain::ReleaseId) -> String {
        format!("{}/api/releases/{release}", self.config.server.base_url())
    }
}

/// Every route. Hooks and the API pass the guards of [`limits`] first; `/healthz` does not, so a
/// load balancer's checks are never rate limited.
pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/hooks/jira", post(hooks::jira))
        .route("/hooks/circleci", post(hooks::circleci))
        .route("/hooks/bitbucket", post(bitbucket::push))
        .route("/api/releases", get(api::releases))
        .route("/api/releases/{id}", get(api::release))
        .route("/api/jobs/{id}/retry", post(api::retry_job))
        .route_layer(from_fn_with_state(ctx.guards.clone(), limits::guard))
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
