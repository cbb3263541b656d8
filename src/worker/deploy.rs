//! Deploy (SPEC 3.2): the Spinnaker webhook trigger with the environment's parameters, recorded
//! as a deployment that the next jobs follow to its end ([`super::follow`]).

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
    let source = env.spinnaker_source.as_deref().ok_or_else(|| {
        StepError::Fatal(format!(
            "projects.{}.environments.{}.spinnaker_source is not set",
            project.name, r.env
        ))
    })?;
    let gate = ctx
        .clients
        .gate(env, &ctx.config.spinnaker)
        .ok_or_else(|| {
            StepError::Fatal(format!(
                "no Gate for {}/{}: set [spinnaker] gate_url or the environment's gate_url",
                project.name, r.env
            ))
        })?;
    let new = deploy::release_deployment(&r, env, source)
        .ok_or_else(|| StepError::Fatal(format!("release {} has no tag to deploy", r.id)))?;
    let deployment = ctx.store.start_deployment(new).await?;
    let parameters = deploy::parameters(&r, env, &deployment.tag);
    let event_id = gate
        .trigger(source, &parameters, serde_json::json!({}))
        .await?;
    let changes = deploy::triggered(
        &ctx.config,
        &r,
        deployment.id,
        source,
        event_id.as_deref(),
        now_ms(),
    );
    finish(ctx, job, "deploy triggered", changes).await?;
    tracing::info!(
        release.id = r.id.0,
        deployment.id = deployment.id.0,
        event_id = event_id.as_deref().unwrap_or(""),
        "deploy triggered"
    );
    Ok(())
}
