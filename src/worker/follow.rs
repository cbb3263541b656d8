//! Following a deploy (SPEC 12): one look at what a trigger started, in Gate. The core decides
//! what the executions mean and when to look again ([`crate::core::follow`]).

use super::step::{Context, StepError, StepResult, finish};
use crate::core::follow::{self, Look, Seen};
use crate::core::plan::Changes;
use crate::domain::{Deployment, DeploymentId, Release, now_ms};
use crate::store::ClaimedJob;

pub async fn run(ctx: &Context, job: &ClaimedJob, id: DeploymentId, poll: u32) -> StepResult {
    let (d, r) = records(ctx, id).await?;
    if !follow::following(&d) {
        let outcome = format!("deployment is {}: nothing to follow", d.status);
        return finish(ctx, job, &outcome, Changes::default()).await;
    }
    let recorded = ctx.store.executions(d.id).await?;
    let fresh = match follow::look(&recorded) {
        Look::Search => {
            let event = d.event_id.as_deref().ok_or_else(|| {
                StepError::Fatal("Gate gave no eventId for the trigger: nothing to look for".into())
            })?;
            gate(ctx, &d)?
                .executions_of_event(&d.application, event)
                .await?
        }
        Look::Executions(ids) => {
            let gate = gate(ctx, &d)?;
            let mut seen = Vec::with_capacity(ids.len());
            for id in ids {
                seen.push(gate.execution(&id).await?);
            }
            seen
        }
    };
    let changes = follow::decide(
        &ctx.config,
        Seen {
            release: &r,
            deployment: &d,
            poll,
            recorded: &recorded,
            fresh,
            now: now_ms(),
        },
    );
    let outcome = if changes
        .jobs
        .iter()
        .any(|j| j.spec.kind() == "follow_deploy")
    {
        "looked; again later"
    } else {
        "deploy ended"
    };
    finish(ctx, job, outcome, changes).await
}

/// What giving up on following a deployment means for it and its release.
pub(super) async fn gave_up(
    ctx: &Context,
    id: DeploymentId,
    error: &str,
) -> Result<Changes, StepError> {
    let (d, r) = records(ctx, id).await?;
    if !follow::following(&d) {
        return Ok(Changes::default());
    }
    Ok(follow::gave_up(&ctx.config, &r, &d, error, now_ms()))
}

async fn records(ctx: &Context, id: DeploymentId) -> Result<(Deployment, Release), StepError> {
    let d = ctx
        .store
        .deployment(id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("deployment {id} does not exist")))?;
    let r = ctx
        .store
        .release(d.release)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {} does not exist", d.release)))?;
    Ok((d, r))
}

/// The Gate of the deployment's environment, as configured now.
fn gate<'c>(
    ctx: &'c Context,
    d: &Deployment,
) -> Result<&'c crate::clients::spinnaker::Gate, StepError> {
    let env = ctx
        .config
        .project(d.project.as_str())
        .and_then(|p| p.environments.get(d.env.as_str()))
        .ok_or_else(|| {
            StepError::Fatal(format!("{}/{} is no longer configured", d.project, d.env))
        })?;
    ctx.clients.gate(env, &ctx.config.spinnaker).ok_or_else(|| {
        StepError::Fatal(format!("no Gate is configured for {}/{}", d.project, d.env))
    })
}
