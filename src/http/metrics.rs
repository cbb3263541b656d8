//! `GET /metrics` (Prometheus, SPEC 15), with access as for `/api`; and the count of every hook's
//! answer (`hoist_webhooks_total{source,outcome}`), made as the answer leaves, after the handler
//! committed what it recorded.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::authorize;
use super::context::Context;
use super::error::{ApiError, ErrorCode};
use crate::metrics::{self, Metrics};

/// What a hook's answer meant, when it was a `2xx` other than "accepted": set by the handler on
/// its response (never sent).
#[derive(Debug, Clone, Copy)]
pub struct HookOutcome(pub &'static str);

/// Marks a hook's answer with what it meant (`duplicate`, `ignored`).
pub fn marked(mut response: Response, outcome: &'static str) -> Response {
    response.extensions_mut().insert(HookOutcome(outcome));
    response
}

pub async fn metrics(State(ctx): State<Context>, req: Request) -> Result<Response, ApiError> {
    authorize(&ctx, &req)?;
    ctx.metrics.set_jobs(&ctx.store.open_job_counts().await?);
    Ok((
        [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
        ctx.metrics.encode(),
    )
        .into_response())
}

/// Counts each answer of a `/hooks/...` route by source and outcome: `accepted`, `duplicate`,
/// `ignored`, or `refused:<code>` with the error's code (`unauthorized`, `rate_limited`,
/// `store_unavailable`...). Other routes pass through.
pub async fn count_hooks(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let source = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| source(p.as_str()));
    let response = next.run(req).await;
    if let Some(source) = source {
        let ext = response.extensions();
        let outcome = match (ext.get::<HookOutcome>(), ext.get::<ErrorCode>()) {
            (Some(o), _) => o.0.to_string(),
            (None, Some(code)) => format!("refused:{}", code.0),
            (None, None) if response.status().is_success() => "accepted".to_string(),
            (None, None) => format!("refused:{}", response.status().as_u16()),
        };
        metrics.webhook(source, &outcome);
    }
    response
}

/// The source a hook route serves.
fn source(route: &str) -> Option<&'static str> {
    match route {
        "/hooks/jira" => Some("jira"),
        "/hooks/circleci" => Some("circleci"),
        "/hooks/bitbucket" => Some("bitbucket"),
        "/hooks/slack" => Some("slack"),
        _ => None,
    }
}
