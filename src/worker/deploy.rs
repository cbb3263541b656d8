//! Deploy (SPEC 3.2): the Spinnaker webhook trigger with the environment's parameters.

use std::collections::BTreeMap;

use super::{StepError, StepResult, finish_job, notify_later};
use crate::app::App;
use crate::domain::{NotifyEvent, ReleaseStatus, short_sha};
use crate::pipeline::params;
use crate::store::{ClaimedJob, now_ms};

pub async fn run(app: &App, job: &ClaimedJob, release_id: i64) -> StepResult {
    let r = app
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    if r.status != ReleaseStatus::Built {
        // Already triggered (an earlier attempt recorded it) or no longer deployable.
        return finish_job(
            app,
            job,
            &format!("release is {}: nothing to send", r.status),
        )
        .await;
    }
    let project = app.config.project(&r.project).ok_or_else(|| {
        StepError::Fatal(format!("project `{}` is no longer configured", r.project))
    })?;
    let (_, env) = project.env(Some(&r.env)).map_err(StepError::Fatal)?;
    let gate = app
        .gate
        .as_ref()
        .ok_or_else(|| StepError::Fatal("no [spinnaker] gate_url is configured".into()))?;
    let source = env.spinnaker_source.as_deref().ok_or_else(|| {
        StepError::Fatal(format!(
            "projects.{}.environments.{}.spinnaker_source is not set",
            project.name, r.env
        ))
    })?;
    let commit = r.best_commit().to_string();
    let values: BTreeMap<&str, String> = BTreeMap::from([
        ("tag", r.tag.clone().unwrap_or_default()),
        ("version", r.version.clone().unwrap_or_default()),
        ("short_commit", short_sha(&commit).to_string()),
        ("commit", commit),
        ("repo", r.repo.clone()),
        ("project", r.project.clone()),
        ("env", r.env.clone()),
        ("issue", r.issue.clone().unwrap_or_default()),
        ("build_url", r.build_url.clone().unwrap_or_default()),
    ]);
    let parameters = params::render_all(&env.parameters, &values).map_err(StepError::Fatal)?;
    let event_id = gate
        .trigger(source, &parameters, serde_json::json!({}))
        .await?;

    let step_ms = now_ms() - r.built_at.unwrap_or(r.received_at);
    let mut tx = app.store.begin().await?;
    if !tx.finish_job(job, "deploy triggered").await? {
        tx.rollback().await?;
        return Ok(());
    }
    tx.set_deploy_triggered(r.id, event_id.as_deref()).await?;
    tx.add_event(
        r.id,
        "deploy_triggered",
        &format!(
            "Spinnaker trigger `{source}` accepted {} (event {})",
            r.tag.as_deref().unwrap_or(""),
            event_id.as_deref().unwrap_or("-")
        ),
    )
    .await?;
    notify_later(&mut tx, app, r.id, NotifyEvent::DeployTriggered { step_ms }).await?;
    tx.commit().await?;
    tracing::info!(
        release.id = r.id,
        event_id = event_id.as_deref().unwrap_or(""),
        "deploy triggered"
    );
    Ok(())
}
