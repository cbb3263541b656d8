//! The read API: releases with their timelines and jobs, and health.
//!
//! With `server.api_token` set, every `/api` call needs `Authorization: Bearer <token>`; without it,
//! only loopback callers are answered, and a request that came through a proxy (it carries a
//! forwarding header) is not a loopback caller even when the proxy runs on the same host.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::context::Context;
use super::error::ApiError;
use super::request::{is_forwarded, peer_ip};
use crate::core::failure;
use crate::domain::{JobId, ReleaseId, Via};
use crate::{report, requests};

/// Whether the caller may use `/api` (and `/metrics`): the API token, or a direct loopback caller
/// when none is configured.
pub(super) fn authorize(ctx: &Context, req: &Request) -> Result<(), ApiError> {
    match &ctx.config.server.api_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match presented {
                Some(p) if token.ct_eq(p.trim().as_bytes()) => Ok(()),
                _ => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send Authorization: Bearer <server.api_token>",
                )),
            }
        }
        None if peer_ip(req.extensions()).to_canonical().is_loopback()
            && !is_forwarded(req.headers()) =>
        {
            Ok(())
        }
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the API answers direct loopback callers only unless server.api_token is set (a request through a proxy is not one)",
        )),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

pub async fn releases(
    State(ctx): State<Context>,
    Query(q): Query<ListQuery>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    authorize(&ctx, &req)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let list = ctx.store.releases(limit, q.before.map(ReleaseId)).await?;
    Ok(Json(
        json!({"releases": list.iter().map(report::summary).collect::<Vec<_>>()}),
    ))
}

pub async fn release(
    State(ctx): State<Context>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    authorize(&ctx, &req)?;
    let id: ReleaseId = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no release `{id}`")))?;
    let r = ctx
        .store
        .release(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no release {id}")))?;
    Ok(Json(report::detail(&ctx.store, &r).await?))
}

pub async fn retry_job(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    authorize(&ctx, &req)?;
    if ctx.store.retry_job(JobId(id), failure::retried).await? {
        ctx.wake.notify_one();
        Ok(Json(json!({"job": id, "state": "queued"})))
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            format!("job {id} does not exist or has not failed"),
        ))
    }
}

/// `{"env": "qa", "by": "jess"}`: the body of `/promote` and `/approve`.
#[derive(Deserialize)]
pub struct AskBody {
    env: String,
    by: String,
}

fn ask_body(body: &axum::body::Bytes) -> Result<AskBody, ApiError> {
    let ask: AskBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("send {{\"env\": \"<environment>\", \"by\": \"<who asks>\"}}: {e}"),
        )
    })?;
    if ask.by.trim().is_empty() || ask.env.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`env` and `by` must not be empty",
        ));
    }
    Ok(ask)
}

fn refused(e: requests::Refused) -> ApiError {
    match e {
        requests::Refused::NotFound(m) => ApiError::not_found(m),
        requests::Refused::NotPromotable(m) => {
            ApiError::new(StatusCode::CONFLICT, "not_promotable", m)
        }
        requests::Refused::NotApprover(m) => {
            ApiError::new(StatusCode::FORBIDDEN, "not_approver", m)
        }
        requests::Refused::Store(e) => e.into(),
    }
}

fn promoted(id: ReleaseId, env: &str, p: &requests::Promoted) -> Response {
    match p {
        requests::Promoted::Started => (
            StatusCode::ACCEPTED,
            Json(json!({"release": id, "env": env, "promotion": "started"})),
        )
            .into_response(),
        requests::Promoted::Already(d) => (
            StatusCode::OK,
            Json(json!({"release": id, "env": env, "promotion": "already", "deployment": d})),
        )
            .into_response(),
    }
}

/// `POST /api/releases/{id}/promote`: 202 when the promotion starts, 200 with the deployment when
/// it is under way or done already, 409 `not_promotable` naming the unmet condition.
pub async fn promote(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Response, ApiError> {
    authorize(&ctx, &req)?;
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "unreadable body"))?;
    let ask = ask_body(&body)?;
    let id = ReleaseId(id);
    let p = requests::promote(&ctx.store, &ctx.config, id, &ask.env, &ask.by, Via::Api)
        .await
        .map_err(refused)?;
    ctx.wake.notify_one();
    Ok(promoted(id, &ask.env, &p))
}

/// `POST /api/releases/{id}/approve`: the approval recorded (once per person), and the
/// promotion started when it completed the approvals and nothing else is unmet.
pub async fn approve(
    State(ctx): State<Context>,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Response, ApiError> {
    authorize(&ctx, &req)?;
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "unreadable body"))?;
    let ask = ask_body(&body)?;
    let id = ReleaseId(id);
    let a = requests::approve(&ctx.store, &ctx.config, id, &ask.env, &ask.by, Via::Api)
        .await
        .map_err(refused)?;
    if a.promoted.is_some() {
        ctx.wake.notify_one();
    }
    Ok(Json(json!({
        "release": id, "env": ask.env, "by": ask.by, "counted": a.counted,
        "promotion": match a.promoted {
            Some(requests::Promoted::Started) => "started",
            Some(requests::Promoted::Already(_)) => "already",
            None => "waiting",
        }
    }))
    .into_response())
}

/// `{"by": "...", "to": "v1.3.0"}` (`to` optional): the body of a rollback.
#[derive(Deserialize)]
pub struct RollbackBody {
    by: String,
    to: Option<String>,
}

/// `POST /api/projects/{project}/environments/{env}/rollback`: 202 with the release and tag now
/// being deployed again; 409 `not_promotable` when there is nothing to roll back to.
pub async fn rollback(
    State(ctx): State<Context>,
    Path((project, env)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    authorize(&ctx, &req)?;
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "unreadable body"))?;
    let ask: RollbackBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("send {{\"by\": \"<who asks>\", \"to\": \"<tag, optional>\"}}: {e}"),
        )
    })?;
    if ask.by.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`by` must not be empty",
        ));
    }
    let done = requests::rollback(
        &ctx.store,
        &ctx.config,
        &project,
        &env,
        ask.to.as_deref(),
        &ask.by,
        Via::Api,
    )
    .await
    .map_err(refused)?;
    ctx.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"project": project, "env": env, "release": done.release, "tag": done.tag, "rollback": "started"})),
    )
        .into_response())
}

pub async fn healthz(State(ctx): State<Context>) -> Response {
    if ctx.store.ping().await {
        (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "store unavailable"})),
        )
            .into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found(
        "no such endpoint: webhooks go to POST /hooks/jira, /hooks/circleci or /hooks/bitbucket",
    )
}
