//! Webhook endpoints. Each reads as its steps: who is calling, parse, what the core makes of it,
//! record, answer.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::context::Context;
use super::error::ApiError;
use super::metrics::marked;
use super::request::{Admitted, admit};
use crate::config::limits::MAX_WAIT_SECS;
use crate::core::inbound::{self, Ingest, Refusal};
use crate::domain::{NewDelivery, ReleaseId, ReleaseStatus, Source};
use crate::sources::{circleci, jira};
use crate::store::Ingested;

#[derive(Deserialize, Default)]
pub struct HookQuery {
    /// Seconds to wait for the tag before answering (at most 25).
    wait: Option<String>,
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownProject(m) => Self::new(StatusCode::NOT_FOUND, "unknown_project", m),
            Refusal::UnknownEnvironment(m) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_environment", m)
            }
        }
    }
}

pub async fn jira(
    State(ctx): State<Context>,
    Query(q): Query<HookQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let wait = parse_wait(q.wait.as_deref())?;
    let src = &ctx.config.sources.jira;
    let Admitted { body, client } = admit(&ctx.config, &src.auth, &parts, body).await?;
    let key = header_str(&parts.headers, "x-atlassian-webhook-identifier");
    let event = jira::parse(&body, &src.fields, &src.issue_fields)?;
    let name = event.name().to_string();
    let action = inbound::jira(event, &ctx.config)?;
    let delivery = delivery(Source::Jira, key, &name, client, &body);
    let ignored = action.ignored_reason().map(str::to_string);
    let recorded = record(&ctx, Ingest { delivery, action }).await?;
    if let Some(reason) = ignored {
        return Ok(answer_ignored(recorded, &reason));
    }
    let duplicate = matches!(recorded, Ingested::Duplicate { .. });
    let (release, fresh) = match recorded {
        Ingested::Created { release, .. } => (release, true),
        Ingested::Joined { release, .. }
        | Ingested::Duplicate {
            release: Some(release),
            ..
        } => (release, false),
        Ingested::Duplicate {
            delivery,
            release: None,
        } => {
            let body = json!({"delivery": delivery, "duplicate": true});
            return Ok(marked(
                (StatusCode::OK, Json(body)).into_response(),
                "duplicate",
            ));
        }
        // A status change that promotes: its job finds the issue's release.
        Ingested::Queued { delivery } => {
            let body = json!({"delivery": delivery, "status": "queued"});
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        Ingested::Recorded { delivery } => {
            let body = json!({"delivery": delivery});
            return Ok((StatusCode::OK, Json(body)).into_response());
        }
    };
    tracing::info!(release.id = release.0, fresh, "ticket accepted");
    let noted = |r: Response| if duplicate { marked(r, "duplicate") } else { r };
    if let Some(wait) = wait {
        return wait_for_tag(&ctx, release, wait).await.map(noted);
    }
    let status = if fresh {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = json!({
        "release": release,
        "status_url": ctx.status_url(release),
        "existing": !fresh,
    });
    Ok(noted((status, Json(body)).into_response()))
}

pub async fn circleci(State(ctx): State<Context>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let Admitted { body, client } =
        admit(&ctx.config, &ctx.config.sources.circleci, &parts, body).await?;
    let event_header = header_str(&parts.headers, "circleci-event-type");
    let ev = circleci::parse(&body, event_header.as_deref())?;
    let mut delivery = delivery(
        Source::Circleci,
        Some(ev.id.clone()),
        event_header.as_deref().unwrap_or("unknown"),
        client,
        &body,
    );
    delivery.event_at = ev.happened_at.clone().unwrap_or_default();
    let action = inbound::build(&ev, &ctx.config);
    let ignored = action.ignored_reason().map(str::to_string);
    let recorded = record(&ctx, Ingest { delivery, action }).await?;
    Ok(match (recorded, ignored) {
        (Ingested::Duplicate { delivery, release }, _) => marked(
            (
                StatusCode::OK,
                Json(json!({"delivery": delivery, "release": release, "duplicate": true})),
            )
                .into_response(),
            "duplicate",
        ),
        (r, Some(reason)) => answer_ignored(r, &reason),
        (Ingested::Queued { delivery }, None) => (
            StatusCode::ACCEPTED,
            Json(json!({"delivery": delivery, "status": "queued"})),
        )
            .into_response(),
        (other, None) => answer_ignored(other, "nothing to do"),
    })
}

/// Records a delivery and, when it queued a job, wakes a loop of the local worker for it.
pub(super) async fn record(ctx: &Context, plan: Ingest) -> Result<Ingested, ApiError> {
    let recorded = ctx.store.ingest(plan).await?;
    if recorded.queued_work() {
        ctx.wake.notify_one();
    }
    Ok(recorded)
}

/// A delivery as received, for the store.
pub(super) fn delivery(
    source: Source,
    key: Option<String>,
    event: &str,
    client: IpAddr,
    body: &[u8],
) -> NewDelivery {
    NewDelivery {
        source,
        key: key.filter(|k| !k.is_empty()),
        event_at: String::new(),
        event: event.to_string(),
        client_ip: Some(client),
        body: body_text(body),
    }
}

/// A body as text for the store. PostgreSQL text cannot hold NUL; a JSON body never has a raw
/// one, but be sure.
fn body_text(body: &[u8]) -> String {
    let text = match std::str::from_utf8(body) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    };
    if memchr::memchr(0, text.as_bytes()).is_some() {
        text.replace('\0', "\u{fffd}")
    } else {
        text.into_owned()
    }
}

/// A header's value as text, if present and readable (trimmed, at most 200 characters).
pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().chars().take(200).collect())
}

/// The answer to a delivery recorded without a release: `202` with why nothing follows.
pub(super) fn answer_ignored(r: Ingested, reason: &str) -> Response {
    let answer = (
        StatusCode::ACCEPTED,
        Json(json!({"delivery": r.delivery(), "ignored": reason})),
    );
    marked(answer.into_response(), "ignored")
}

fn parse_wait(v: Option<&str>) -> Result<Option<Duration>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => {
            let secs: f64 = s
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_field",
                        format!("`wait` must be a number of seconds from 0 to {MAX_WAIT_SECS}"),
                    )
                })?;
            Ok(Some(Duration::from_secs_f64(
                secs.min(MAX_WAIT_SECS as f64),
            )))
        }
    }
}

/// Answers once the release has its tag (201) or has failed (422), or after `wait` (202).
async fn wait_for_tag(
    ctx: &Context,
    release: ReleaseId,
    wait: Duration,
) -> Result<Response, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = ctx
            .store
            .release(release)
            .await?
            .ok_or_else(|| ApiError::not_found("release vanished"))?;
        if let Some(tag) = &r.tag {
            return Ok((
                StatusCode::CREATED,
                Json(json!({
                    "release": r.id,
                    "tag": tag,
                    "commit": r.best_commit(),
                    "reused": r.tag_reused,
                    "status": r.status,
                    "status_url": ctx.status_url(r.id),
                })),
            )
                .into_response());
        }
        if r.status == ReleaseStatus::Failed {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "release": r.id,
                    "status": r.status,
                    "error": {"code": "release_failed", "message": r.error.unwrap_or_default()},
                })),
            )
                .into_response());
        }
        if tokio::time::Instant::now() >= deadline {
            let body = json!({
                "release": r.id,
                "status_url": ctx.status_url(r.id),
                "existing": false,
            });
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
