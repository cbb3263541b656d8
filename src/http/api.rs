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

use super::error::ApiError;
use super::request::{is_forwarded, peer_ip};
use crate::app::App;
use crate::store::Release;

/// RFC 3339 (UTC, milliseconds) from store time.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn authorize(app: &App, req: &Request) -> Result<(), ApiError> {
    match &app.api_token {
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
    State(app): State<App>,
    Query(q): Query<ListQuery>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    authorize(&app, &req)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let list = app.store.releases(limit, q.before).await?;
    Ok(Json(
        json!({"releases": list.iter().map(summary).collect::<Vec<_>>()}),
    ))
}

pub async fn release(
    State(app): State<App>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    authorize(&app, &req)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no release `{id}`")))?;
    let r = app
        .store
        .release(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no release {id}")))?;
    Ok(Json(detail(&app, &r).await?))
}

/// A release with its timeline and jobs (shared by the API and `hoist releases --id`).
pub async fn detail(app: &App, r: &Release) -> Result<Value, crate::store::StoreError> {
    let events = app.store.events(r.id).await?;
    let mut jobs = Vec::new();
    for j in app.store.jobs_for_release(r.id).await? {
        let attempts = app.store.job_attempts(j.id).await?;
        jobs.push(json!({
            "id": j.id, "kind": j.kind, "state": j.state, "attempts": j.attempts, "max_attempts": j.max_attempts,
            "last_error": j.last_error, "created_at": rfc3339(j.created_at), "next_run_at": (j.state == "queued").then(|| rfc3339(j.run_at)),
            "finished_at": j.finished_at.map(rfc3339), "history": attempts,
        }));
    }
    let mut v = summary(r);
    v["timeline"] = json!(timeline(r));
    v["events"] = json!(
        events
            .iter()
            .map(|e| json!({"at": rfc3339(e.at), "step": e.step, "message": e.message}))
            .collect::<Vec<_>>()
    );
    v["jobs"] = json!(jobs);
    Ok(v)
}

/// The steps of a release with their times, in order.
pub fn timeline(r: &Release) -> Vec<Value> {
    [
        ("received", Some(r.received_at)),
        ("commit_verified", r.commit_verified_at),
        ("tagged", r.tagged_at),
        ("built", r.built_at),
        ("deploy_triggered", r.deploy_triggered_at),
    ]
    .iter()
    .map(|(step, at)| json!({"step": step, "at": at.map(rfc3339), "after_ms": at.map(|t| t - r.received_at)}))
    .collect()
}

pub fn summary(r: &Release) -> Value {
    json!({
        "id": r.id, "project": r.project, "env": r.env, "repo": r.repo, "issue": r.issue,
        "commit": r.best_commit(), "status": r.status, "tag": r.tag, "version": r.version, "tag_reused": r.tag_reused,
        "build_status": r.build_status, "build_url": r.build_url, "deploy_event_id": r.deploy_event_id, "error": r.error,
        "received_at": rfc3339(r.received_at), "commit_verified_at": r.commit_verified_at.map(rfc3339),
        "tagged_at": r.tagged_at.map(rfc3339), "built_at": r.built_at.map(rfc3339),
        "deploy_triggered_at": r.deploy_triggered_at.map(rfc3339), "finished_at": r.finished_at.map(rfc3339),
        "lead_time_ms": r.lead_time_ms(),
    })
}

pub async fn retry_job(
    State(app): State<App>,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    authorize(&app, &req)?;
    if app.store.retry_job(id).await? {
        app.jobs_ready.notify_one();
        Ok(Json(json!({"job": id, "state": "queued"})))
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            format!("job {id} does not exist or has not failed"),
        ))
    }
}

pub async fn healthz(State(app): State<App>) -> Response {
    if app.store.ping().await {
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
