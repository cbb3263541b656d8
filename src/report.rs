//! How a release reads: the JSON that `GET /api/releases`, `hoist releases` and the demo show.
//! One view, built here from the store's records, so every place shows the same fields.

use serde_json::{Value, json};

use crate::core::dora::{Day, Figures};
use crate::domain::{JobState, Millis, Release};
use crate::store::{Result, Store};

/// RFC 3339 (UTC, milliseconds) from store time.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The steps of a release in its own environment, in order, with their times (`None`: not yet).
pub fn steps(r: &Release) -> [(&'static str, Option<Millis>); 7] {
    [
        ("received", Some(r.received_at)),
        ("commit_verified", r.commit_verified_at),
        ("tagged", r.tagged_at),
        ("built", r.built_at),
        ("deploy_triggered", r.deploy_triggered_at),
        ("deploy_started", r.deploy_started_at),
        ("deployed", r.deployed_at),
    ]
}

/// The steps of a release with their times, in order.
pub fn timeline(r: &Release) -> Vec<Value> {
    steps(r)
    .iter()
    .map(|(step, at)| {
        json!({"step": step, "at": at.map(rfc3339), "after_ms": at.map(|t| t - r.received_at)})
    })
    .collect()
}

/// A release's own fields.
pub fn summary(r: &Release) -> Value {
    json!({
        "id": r.id, "project": r.project, "env": r.env, "repo": r.repo, "issue": r.issue,
        "commit": r.best_commit(), "status": r.status, "tag": r.tag,
        "version": r.version.map(|v| v.to_string()), "tag_reused": r.tag_reused,
        "build_status": r.build_status, "build_url": r.build_url, "deploy_event_id": r.deploy_event_id,
        "error": r.error,
        "received_at": rfc3339(r.received_at), "commit_verified_at": r.commit_verified_at.map(rfc3339),
        "committed_at": r.committed_at.map(rfc3339),
        "tagged_at": r.tagged_at.map(rfc3339), "built_at": r.built_at.map(rfc3339),
        "deploy_triggered_at": r.deploy_triggered_at.map(rfc3339),
        "deploy_started_at": r.deploy_started_at.map(rfc3339), "deployed_at": r.deployed_at.map(rfc3339),
        "finished_at": r.finished_at.map(rfc3339),
        "lead_time_ms": r.lead_time_ms(), "trigger_lead_time_ms": r.trigger_lead_time_ms(),
    })
}

/// The DORA figures of a project and environment ([`crate::core::dora`]) as they read, times as
/// RFC 3339; with `daily`, the window day by day.
pub fn stats(f: &Figures, daily: Option<&[Day]>) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or_default();
    v["since"] = json!(rfc3339(f.since));
    v["until"] = json!(rfc3339(f.until));
    if let Some(days) = daily {
        v["daily"] = json!(days);
    }
    v
}

/// A release with its timeline, its events, and its jobs with every attempt.
pub async fn detail(store: &Store, r: &Release) -> Result<Value> {
    let events = store.events(r.id).await?;
    let mut jobs = Vec::new();
    for j in store.jobs_for_release(r.id).await? {
        let attempts: Vec<Value> = store
            .job_attempts(j.id)
            .await?
            .iter()
            .map(|a| {
                json!({
                    "attempt": a.attempt, "started_at": rfc3339(a.started_at),
                    "finished_at": a.finished_at.map(rfc3339), "outcome": a.outcome, "error": a.error,
                })
            })
            .collect();
        jobs.push(json!({
            "id": j.id, "kind": j.kind, "state": j.state, "attempts": j.attempts, "max_attempts": j.max_attempts,
            "last_error": j.last_error, "created_at": rfc3339(j.created_at),
            "next_run_at": (j.state == JobState::Queued).then(|| rfc3339(j.run_at)),
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
    let mut deployments = Vec::new();
    for d in store.deployments(r.id).await? {
        let executions: Vec<Value> = store
            .executions(d.id)
            .await?
            .iter()
            .map(|e| {
                json!({
                    "id": e.id, "application": e.application, "pipeline": e.name, "status": e.status,
                    "started_at": e.started_at.map(rfc3339), "ended_at": e.ended_at.map(rfc3339),
                    "failed_stage": e.failed_stage,
                })
            })
            .collect();
        deployments.push(json!({
            "id": d.id, "env": d.env, "kind": d.kind, "tag": d.tag, "source": d.source,
            "application": d.application, "status": d.status, "event_id": d.event_id,
            "triggered_at": d.triggered_at.map(rfc3339), "started_at": d.started_at.map(rfc3339),
            "finished_at": d.finished_at.map(rfc3339), "failed_stage": d.failed_stage, "error": d.error,
            "executions": executions,
        }));
    }
    v["deployments"] = json!(deployments);
    Ok(v)
}
