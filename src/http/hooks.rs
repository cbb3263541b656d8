//! Webhook endpoints. Each reads as its steps: limits, who is calling, parse, record, answer.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::request::{Admitted, admit};
use crate::app::App;
use crate::domain::{JobSpec, ReleaseStatus};
use crate::sources::circleci::{self, BuildKind};
use crate::sources::jira::{self, JiraEvent};
use crate::sources::quote;
use crate::store::{ClaimedJob, Ingest, Ingested, NewDelivery, NewRelease, StoreError};

#[derive(Deserialize, Default)]
pub struct HookQuery {
    /// Seconds to wait for the tag before answering (at most 25).
    wait: Option<String>,
}

use crate::config::limits::MAX_WAIT_SECS;

pub async fn jira(
    State(app): State<App>,
    Query(q): Query<HookQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let wait = parse_wait(q.wait.as_deref())?;
    let Admitted { body, client } = admit(&app, &app.jira, &parts, body).await?;

    let src = &app.config.sources.jira;
    let key = header_str(&parts.headers, "x-atlassian-webhook-identifier");
    let event = match jira::parse(&body, &src.fields, &src.issue_fields)? {
        JiraEvent::Ignored { event, reason } => {
            let d = delivery("jira", key, &event, client, &body);
            let r = app
                .store
                .ingest_delivery(d, &format!("ignored: {reason}"), None, 0)
                .await?;
            return Ok(ignored(r, &reason));
        }
        JiraEvent::Assignment(a) => a,
    };
    let project = app.config.project_by_repo(&event.repo).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_project",
            format!("no project has repo or name `{}`: add a [[projects]] entry or fix the ticket's repository", quote(&event.repo)),
        )
    })?;
    let (env, _) = project
        .env(event.env.as_deref())
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_environment", m))?;

    let d = delivery("jira", key, event.event, client, &body);
    let release = NewRelease {
        project: project.name.clone(),
        env: env.to_string(),
        repo: project.repo.clone(),
        commit: event.commit.as_str().to_string(),
        issue: event.issue.clone(),
    };
    let ingested = record(
        &app,
        Ingest::Release {
            delivery: d,
            release,
            max_attempts: app.max_attempts(),
            claim: app.born_claim(),
        },
    )
    .await?;
    let (release_id, fresh) = match ingested {
        Ingested::Created { release_id, .. } => (release_id, true),
        Ingested::Existing { release_id, .. } => (release_id, false),
        Ingested::Duplicate {
            release_id: Some(id),
            ..
        } => (id, false),
        Ingested::Duplicate {
            release_id: None,
            delivery_id,
        } => {
            return Ok((
                StatusCode::OK,
                Json(json!({"delivery": delivery_id, "duplicate": true})),
            )
                .into_response());
        }
        Ingested::Queued { .. } | Ingested::Ignored { .. } => {
            unreachable!("ingest_release starts or joins a release")
        }
    };
    tracing::info!(release.id = release_id, fresh, "ticket accepted");
    if let Some(wait) = wait {
        return wait_for_tag(&app, release_id, wait).await;
    }
    let status = if fresh {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(accepted(&app, release_id, !fresh))).into_response())
}

pub async fn circleci(State(app): State<App>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let Admitted { body, client } = admit(&app, &app.circleci, &parts, body).await?;

    let event_header = header_str(&parts.headers, "circleci-event-type");
    let ev = circleci::parse(&body, event_header.as_deref())?;
    let mut d = delivery(
        "circleci",
        Some(ev.id.clone()),
        event_header.as_deref().unwrap_or("unknown"),
        client,
        &body,
    );
    d.event_at = ev.happened_at.clone().unwrap_or_default();

    let decision = match_build(&app, &ev);
    let (outcome, lane) = match &decision {
        Err(reason) => (format!("ignored: {reason}"), None),
        Ok(project) => (
            format!("build of {project} queued"),
            Some(format!("build:{}", ev.id)),
        ),
    };
    let claim = lane.as_ref().and_then(|_| app.born_claim());
    let r = record(
        &app,
        Ingest::Delivery {
            delivery: d,
            outcome,
            build_lane: lane,
            max_attempts: app.max_attempts(),
            claim,
        },
    )
    .await?;
    Ok(match (r, decision) {
        (
            Ingested::Duplicate {
                delivery_id,
                release_id,
            },
            _,
        ) => (
            StatusCode::OK,
            Json(json!({"delivery": delivery_id, "release": release_id, "duplicate": true})),
        )
            .into_response(),
        (_, Err(reason)) => ignored(r, &reason),
        (Ingested::Queued { delivery_id, .. }, Ok(_)) => (
            StatusCode::ACCEPTED,
            Json(json!({"delivery": delivery_id, "status": "queued"})),
        )
            .into_response(),
        (other, _) => ignored(other, "nothing to do"),
    })
}

/// Records a delivery and gets the job it starts run: handed to the worker's idle loop when the
/// job was born claimed by it, else one loop is woken to claim it. With a claim, recording and
/// handing over run in a task of their own, so that a request dropped meanwhile (its sender hung
/// up) cannot leave a job claimed by nobody until its lease runs out.
async fn record(app: &App, op: Ingest) -> Result<Ingested, StoreError> {
    let Some(claim) = op.claim().cloned() else {
        let r = app.store.ingest(op).await?;
        if let Ingested::Created { .. } | Ingested::Queued { .. } = r {
            app.jobs_ready.notify_one();
        }
        return Ok(r);
    };
    let app = app.clone();
    tokio::spawn(async move {
        let r = app.store.ingest(op).await;
        let born = match &r {
            Ok(Ingested::Created {
                release_id,
                claimed_job: Some(id),
                ..
            }) => Some((
                *id,
                JobSpec::CreateTag {
                    release_id: *release_id,
                },
            )),
            Ok(Ingested::Queued {
                delivery_id,
                claimed_job: Some(id),
            }) => Some((
                *id,
                JobSpec::HandleBuild {
                    delivery_id: *delivery_id,
                },
            )),
            _ => None,
        };
        match born {
            Some((id, spec)) => {
                app.hand_off(ClaimedJob::born(id, spec, app.max_attempts(), &claim), true)
            }
            None => {
                app.handoff.unreserve();
                if r.is_ok() {
                    app.jobs_ready.notify_one();
                }
            }
        }
        r
    })
    .await
    .unwrap_or_else(|e| {
        Err(StoreError::Failed(format!(
            "recording a delivery failed: {e}"
        )))
    })
}

/// Which project a build belongs to, or why it is ignored. Configuration only, no I/O.
fn match_build(app: &App, ev: &circleci::BuildEvent) -> Result<String, String> {
    if ev.kind == BuildKind::Other {
        return Err("not a job-completed or workflow-completed event".into());
    }
    let project = app
        .config
        .project_by_circleci(ev.project_slug.as_deref(), ev.project_name.as_deref())
        .ok_or_else(|| {
            format!(
                "no project has circleci_project `{}`",
                quote(
                    ev.project_slug
                        .as_deref()
                        .or(ev.project_name.as_deref())
                        .unwrap_or("(none)")
                )
            )
        })?;
    let name = ev.name.as_deref().unwrap_or("");
    match (ev.kind, &project.build_job, &project.build_workflow) {
        (BuildKind::Job, Some(job), _) if job == name => {}
        (BuildKind::Workflow, _, Some(wf)) if wf == name => {}
        (BuildKind::Job, None, None) if name == "build" => {}
        (kind, job, wf) => {
            let what = if kind == BuildKind::Job {
                "job"
            } else {
                "workflow"
            };
            let wanted = match (job, wf) {
                (Some(j), _) => format!("job `{j}`"),
                (None, Some(w)) => format!("workflow `{w}`"),
                (None, None) => "job `build`".into(),
            };
            return Err(format!(
                "{what} `{}` is not {}'s build ({wanted})",
                quote(name),
                project.name
            ));
        }
    }
    match ev.status.as_deref().and_then(circleci::outcome) {
        Some(_) => {}
        None => {
            return Err(format!(
                "status `{}` is not a final outcome",
                quote(ev.status.as_deref().unwrap_or(""))
            ));
        }
    }
    if ev.commit.is_none() && ev.tag.is_none() {
        return Err("the payload names neither a commit nor a tag".into());
    }
    Ok(project.name.clone())
}

pub(super) fn ignored(r: Ingested, reason: &str) -> Response {
    let delivery = match r {
        Ingested::Ignored { delivery_id } | Ingested::Queued { delivery_id, .. } => {
            Some(delivery_id)
        }
        Ingested::Duplicate { delivery_id, .. } => Some(delivery_id),
        _ => None,
    };
    #[derive(serde::Serialize)]
    struct Ignored<'a> {
        delivery: Option<i64>,
        ignored: &'a str,
    }
    (
        StatusCode::ACCEPTED,
        Json(Ignored {
            delivery,
            ignored: reason,
        }),
    )
        .into_response()
}

fn accepted(app: &App, release_id: i64, existing: bool) -> serde_json::Value {
    json!({
        "release": release_id,
        "status_url": format!("{}/api/releases/{release_id}", app.public_url()),
        "existing": existing,
    })
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
async fn wait_for_tag(app: &App, release_id: i64, wait: Duration) -> Result<Response, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = app
            .store
            .release(release_id)
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
                    "status_url": format!("{}/api/releases/{}", app.public_url(), r.id),
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
            return Ok(
                (StatusCode::ACCEPTED, Json(accepted(app, release_id, false))).into_response(),
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub(super) fn header_str(h: &axum::http::HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().chars().take(200).collect())
}

pub(super) fn delivery(
    source: &'static str,
    key: Option<String>,
    event: &str,
    client: std::net::IpAddr,
    body: &[u8],
) -> NewDelivery {
    NewDelivery {
        source,
        key: key.filter(|k| !k.is_empty()),
        event_at: String::new(),
        event: event.to_string(),
        client_ip: Some(client.to_string()),
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
