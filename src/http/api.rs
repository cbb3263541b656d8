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
use crate::domain::{JobId, ReleaseId};
use crate::report;

fn authorize(ctx: &Context, req: &Request) -> Result<(), ApiError> {
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
