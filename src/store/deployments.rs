//! Deployments (a release's pass into an environment) and the pipeline executions each started.

use super::db::{Conn, Row, params, time};
use super::error::{Result, StoreError};
use crate::core::plan::NewDeployment;
use crate::core::plan::{DeploymentChange, ExecutionSeen};
use crate::domain::{
    Approval, Deployment, DeploymentId, DeploymentKind, DeploymentStatus, EnvName, ProjectName,
    ReleaseId, TagName, Via, now_ms,
};

const COLUMNS: &str = "id, release_id, project, env, kind, tag, source, application, status, event_id, created_at, triggered_at, started_at, finished_at, failed_stage, error, requested_by, requested_via";

fn deployment_from(r: &Row) -> Result<Deployment> {
    Ok(Deployment {
        id: DeploymentId(r.i64("id")?),
        release: ReleaseId(r.i64("release_id")?),
        project: r.parse("project", ProjectName::parse)?,
        env: r.parse("env", EnvName::parse)?,
        kind: r.parse("kind", |s| {
            DeploymentKind::parse(s).ok_or_else(|| format!("deployment kind `{s}`"))
        })?,
        tag: r.parse("tag", TagName::parse)?,
        source: r.string("source")?,
        application: r.string("application")?,
        status: r.parse("status", |s| {
            DeploymentStatus::parse(s).ok_or_else(|| format!("deployment status `{s}`"))
        })?,
        event_id: r.opt_string("event_id")?,
        created_at: r.time("created_at")?,
        triggered_at: r.opt_time("triggered_at")?,
        started_at: r.opt_time("started_at")?,
        finished_at: r.opt_time("finished_at")?,
        failed_stage: r.opt_string("failed_stage")?,
        error: r.opt_string("error")?,
        requested_by: r.opt_string("requested_by")?,
        requested_via: r.opt_string("requested_via")?.and_then(|v| Via::parse(&v)),
    })
}

pub(super) async fn deployment(c: &mut dyn Conn, id: DeploymentId) -> Result<Option<Deployment>> {
    let sql = format!("SELECT {COLUMNS} FROM deployments WHERE id = $1");
    c.query_opt(&sql, params![id.0])
        .await?
        .as_ref()
        .map(deployment_from)
        .transpose()
}

/// A release's deployments, first first.
pub(super) async fn of_release(c: &mut dyn Conn, release: ReleaseId) -> Result<Vec<Deployment>> {
    let sql = format!("SELECT {COLUMNS} FROM deployments WHERE release_id = $1 ORDER BY id");
    c.query(&sql, params![release.0])
        .await?
        .iter()
        .map(deployment_from)
        .collect()
}

/// The release that carries `tag`: as its own tag, or as a deployment's.
pub(super) async fn release_by_tag(c: &mut dyn Conn, tag: &str) -> Result<Option<ReleaseId>> {
    let row = c
        .query_opt(
            "SELECT id AS release_id FROM releases WHERE tag = $1
             UNION ALL SELECT release_id FROM deployments WHERE tag = $1
             LIMIT 1",
            params![tag],
        )
        .await?;
    row.map(|r| r.i64("release_id").map(ReleaseId)).transpose()
}

/// A project's deployments into one environment, newest first (at most `limit`).
pub(super) async fn in_env(
    c: &mut dyn Conn,
    project: &str,
    env: &str,
    limit: i64,
) -> Result<Vec<Deployment>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deployments WHERE project = $1 AND env = $2 ORDER BY id DESC LIMIT $3"
    );
    c.query(&sql, params![project, env, limit])
        .await?
        .iter()
        .map(deployment_from)
        .collect()
}

/// The deployment `new` describes, still being triggered, or a new one: the trigger of a job
/// that ran before (and crashed) reuses the record it made.
pub(super) async fn start(c: &mut dyn Conn, new: &NewDeployment) -> Result<Deployment> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deployments WHERE release_id = $1 AND env = $2 AND kind = $3 AND status = $4 ORDER BY id DESC LIMIT 1"
    );
    let found = c
        .query_opt(
            &sql,
            params![
                new.release.0,
                new.env.as_str(),
                new.kind.as_str(),
                DeploymentStatus::Triggering.as_str()
            ],
        )
        .await?;
    if let Some(row) = found {
        return deployment_from(&row);
    }
    let now = now_ms();
    let row = c
        .query_one(
            "INSERT INTO deployments (release_id, project, env, kind, tag, source, application, status, created_at, updated_at, requested_by, requested_via)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) RETURNING id",
            params![
                new.release.0,
                new.project.as_str(),
                new.env.as_str(),
                new.kind.as_str(),
                new.tag.as_str(),
                new.source.as_str(),
                new.application.as_str(),
                DeploymentStatus::Triggering.as_str(),
                time(now),
                new.requested_by.as_deref(),
                new.requested_via.map(Via::as_str)
            ],
        )
        .await?;
    let id = DeploymentId(row.i64("id")?);
    deployment(c, id)
        .await?
        .ok_or_else(|| StoreError::Failed(format!("deployment {id} vanished")))
}

/// Records a deployment still to be triggered. One of the same release into the same
/// environment under way or done already (another request got there first) makes the plan stale.
pub(super) async fn record(c: &mut dyn Conn, new: &NewDeployment) -> Result<DeploymentId> {
    let row = c
        .query_opt(
            "INSERT INTO deployments (release_id, project, env, kind, tag, source, application, status, created_at, updated_at, requested_by, requested_via)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)
             ON CONFLICT DO NOTHING RETURNING id",
            params![
                new.release.0,
                new.project.as_str(),
                new.env.as_str(),
                new.kind.as_str(),
                new.tag.as_str(),
                new.source.as_str(),
                new.application.as_str(),
                DeploymentStatus::Triggering.as_str(),
                time(now_ms()),
                new.requested_by.as_deref(),
                new.requested_via.map(Via::as_str)
            ],
        )
        .await?;
    match row {
        Some(row) => Ok(DeploymentId(row.i64("id")?)),
        None => Err(StoreError::Stale(format!(
            "release {} is already being deployed into {}",
            new.release, new.env
        ))),
    }
}

/// Writes a change to a deployment if its status allows it; else the plan is stale.
pub(super) async fn change(
    c: &mut dyn Conn,
    id: DeploymentId,
    change: &DeploymentChange,
) -> Result<()> {
    let allowed = change
        .from()
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let guard = format!("id = $1 AND status IN ({allowed})");
    let now = now_ms();
    let to = change.to().as_str();
    let changed = match change {
        DeploymentChange::AwaitingBuild | DeploymentChange::Built => {
            let sql = format!("UPDATE deployments SET status = $2, updated_at = $3 WHERE {guard}");
            c.execute(&sql, params![id.0, to, time(now)]).await?
        }
        DeploymentChange::Triggered { event_id, at } => {
            let sql = format!(
                "UPDATE deployments SET status = $2, event_id = $3, triggered_at = $4, updated_at = $5 WHERE {guard}"
            );
            c.execute(
                &sql,
                params![id.0, to, event_id.as_deref(), time(*at), time(now)],
            )
            .await?
        }
        DeploymentChange::Started { at } => {
            let sql = format!(
                "UPDATE deployments SET status = $2, started_at = $3, updated_at = $4 WHERE {guard}"
            );
            c.execute(&sql, params![id.0, to, time(*at), time(now)])
                .await?
        }
        DeploymentChange::Finished {
            at,
            failed_stage,
            error,
            ..
        } => {
            let sql = format!(
                "UPDATE deployments SET status = $2, finished_at = $3, failed_stage = $4, error = $5, updated_at = $6 WHERE {guard}"
            );
            c.execute(
                &sql,
                params![
                    id.0,
                    to,
                    time(*at),
                    failed_stage.as_deref(),
                    error.as_deref(),
                    time(now)
                ],
            )
            .await?
        }
    };
    if changed == 0 {
        return Err(StoreError::Stale(format!(
            "deployment {id}: {change:?} does not apply to it as it is now"
        )));
    }
    Ok(())
}

fn execution_from(r: &Row) -> Result<ExecutionSeen> {
    Ok(ExecutionSeen {
        deployment: DeploymentId(r.i64("deployment_id")?),
        id: r.string("execution_id")?,
        application: r.string("application")?,
        name: r.string("name")?,
        status: r.string("status")?,
        started_at: r.opt_time("started_at")?,
        ended_at: r.opt_time("ended_at")?,
        failed_stage: r.opt_string("failed_stage")?,
    })
}

/// A deployment's executions as last seen, by when they started.
pub(super) async fn executions(c: &mut dyn Conn, id: DeploymentId) -> Result<Vec<ExecutionSeen>> {
    c.query(
        "SELECT deployment_id, execution_id, application, name, status, started_at, ended_at, failed_stage
         FROM executions WHERE deployment_id = $1 ORDER BY started_at, id",
        params![id.0],
    )
    .await?
    .iter()
    .map(execution_from)
    .collect()
}

/// Records an execution as seen now, or updates the record of one seen before.
pub(super) async fn saw(c: &mut dyn Conn, e: &ExecutionSeen) -> Result<()> {
    let now = now_ms();
    c.execute(
        "INSERT INTO executions (deployment_id, execution_id, application, name, status, started_at, ended_at, failed_stage, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (deployment_id, execution_id) DO UPDATE SET status = excluded.status,
             started_at = excluded.started_at, ended_at = excluded.ended_at,
             failed_stage = excluded.failed_stage, updated_at = excluded.updated_at",
        params![
            e.deployment.0,
            e.id.as_str(),
            e.application.as_str(),
            e.name.as_str(),
            e.status.as_str(),
            time(e.started_at),
            time(e.ended_at),
            e.failed_stage.as_deref(),
            time(now)
        ],
    )
    .await?;
    Ok(())
}

/// Records `a`; `false` when that person had approved already (a second click counts once).
pub(super) async fn approve(c: &mut dyn Conn, a: &Approval) -> Result<bool> {
    let added = c
        .execute(
            "INSERT INTO approvals (release_id, env, approver, via, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (release_id, env, approver) DO NOTHING",
            params![
                a.release.0,
                a.env.as_str(),
                a.by.as_str(),
                a.via.as_str(),
                time(a.at)
            ],
        )
        .await?;
    Ok(added > 0)
}

/// A release's approvals, oldest first.
pub(super) async fn approvals(c: &mut dyn Conn, release: ReleaseId) -> Result<Vec<Approval>> {
    c.query(
        "SELECT release_id, env, approver, via, at FROM approvals WHERE release_id = $1 ORDER BY id",
        params![release.0],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Approval {
            release: ReleaseId(r.i64("release_id")?),
            env: r.parse("env", EnvName::parse)?,
            by: r.string("approver")?,
            via: r.parse("via", |s| Via::parse(s).ok_or_else(|| format!("via `{s}`")))?,
            at: r.time("at")?,
        })
    })
    .collect()
}
