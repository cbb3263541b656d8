//! Deploy (SPEC 3.2): the Spinnaker webhook trigger with the environment's parameters.

use super::step::{Context, StepError, StepResult, finish};
use super::tag::configured;
use crate::core::deploy;
use crate::domain::{ReleaseId, now_ms};
use crate::store::ClaimedJob;

pub async fn run(ctx: &Context, job: &ClaimedJob, release_id: ReleaseId) -> StepResult {
    let r = ctx
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    if !deploy::ready(&r) {
        // Already triggered (an earlier attempt recorded it) or no longer deployable.
        let outcome = format!("release is {}: nothing to send", r.status);
        return finish(ctx, job, &outcome, Default::default()).await;
    }
    let (project, env) = configured(ctx, &r)?;
    let gate = ctx
        .clients
        .gate
        .as_ref()
        .ok_or_else(|| StepError::Fatal("no [spinnaker] gate_url is configured".into()))?;
    let source = env.spinnaker_source.as_deref().ok_or_else(|| {
        StepError::Fatal(format!(
            "projects.{}.environments.{}.spinnaker_source is not set",
            project.name, r.env
        ))
    })?;
    let parameters = deploy::parameters(&r, env);
    let event_id = gate
        .trigger(source, &parameters, serde_json::json!({}))
        .await?;
    let changes = deploy::triggered(&ctx.config, &r, source, event_id.as_deref(), now_ms());
    finish(ctx, job, "deploy triggered", changes).await?;
    tracing::info!(
        release.id = r.id.0,
        event_id = event_id.as_deref().unwrap_or(""),
        "deploy triggered"
    );
    Ok(())
}
