//! Promotion (SPEC 13): the release's tag in the environment it goes into (same version, same
//! commit; adopted when already there, refused when on another commit), then that environment's
//! Spinnaker trigger, followed like any deploy ([`super::follow`]).

use super::step::{Context, StepError, StepResult, finish};
use crate::clients::bitbucket::Created;
use crate::core::job::Job;
use crate::core::job::NotifyEvent;
use crate::core::plan::Changes;
use crate::core::promote::Consider;
use crate::core::{deploy, promote};
use crate::domain::{DeploymentKind, DeploymentStatus, EnvName, ReleaseId, Via, now_ms};
use crate::requests::{self, Promoted, Refused};
use crate::store::ClaimedJob;

pub async fn run(
    ctx: &Context,
    job: &ClaimedJob,
    release_id: ReleaseId,
    env_name: &EnvName,
) -> StepResult {
    let r = ctx
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    let Some(d) = ctx.store.deployments(r.id).await?.into_iter().find(|d| {
        d.env == *env_name
            && d.kind != DeploymentKind::Release
            && matches!(
                d.status,
                DeploymentStatus::Triggering | DeploymentStatus::Built
            )
    }) else {
        return finish(
            ctx,
            job,
            "no promotion waiting to be sent",
            Default::default(),
        )
        .await;
    };
    let project = ctx.config.project(r.project.as_str()).ok_or_else(|| {
        StepError::Fatal(format!("project `{}` is no longer configured", r.project))
    })?;
    let env = project.environments.get(env_name).ok_or_else(|| {
        StepError::Fatal(format!("environment `{env_name}` is no longer configured"))
    })?;
    // A freeze window may have opened since the promotion was asked for.
    if d.status == DeploymentStatus::Triggering
        && let Some(unmet) = env
            .promotion
            .as_ref()
            .and_then(|p| promote::frozen(p, now_ms()))
    {
        let changes = promote::called_off(&ctx.config, &r, &d, &unmet, now_ms());
        return finish(ctx, job, &unmet.to_string(), changes).await;
    }
    let full = r
        .full_commit
        .clone()
        .ok_or_else(|| StepError::Fatal(format!("release {} has no verified commit", r.id)))?;

    // The tag: created on the release's commit, or adopted when an earlier attempt (or a
    // person) made it there; on another commit, never renumbered. Built already: made before.
    let bitbucket = &ctx.clients.bitbucket;
    if d.status == DeploymentStatus::Triggering
        && let Created::Exists = bitbucket
            .create_tag(&project.repo, d.tag.as_str(), &full)
            .await?
    {
        let on = bitbucket.tag(&project.repo, d.tag.as_str()).await?;
        match on {
            Some(t) if t.commit == full.as_str() => {}
            Some(t) => {
                return Err(StepError::Fatal(format!(
                    "tag {} already exists on commit {}, not on the release's {}: remove it or promote another release",
                    d.tag,
                    &t.commit[..t.commit.len().min(12)],
                    full.short()
                )));
            }
            None => {
                return Err(StepError::Fatal(format!(
                    "Bitbucket says tag {} exists but does not list it",
                    d.tag
                )));
            }
        }
    }

    if d.status == DeploymentStatus::Triggering && env.promotion.as_ref().is_some_and(|p| p.build) {
        let changes = promote::awaiting_build(&r, &d);
        return finish(
            ctx,
            job,
            "tagged; waiting for CircleCI to build it",
            changes,
        )
        .await;
    }

    let source = env.spinnaker_source.as_deref().ok_or_else(|| {
        StepError::Fatal(format!(
            "projects.{}.environments.{env_name}.spinnaker_source is not set",
            project.name
        ))
    })?;
    let gate = ctx
        .clients
        .gate(env, &ctx.config.spinnaker)
        .ok_or_else(|| {
            StepError::Fatal(format!(
                "no Gate for {}/{env_name}: set [spinnaker] gate_url or the environment's gate_url",
                project.name
            ))
        })?;
    let parameters = deploy::parameters(&r, env, &d.tag);
    let event_id = gate
        .trigger(source, &parameters, serde_json::json!({}))
        .await?;
    let changes = promote::triggered(&ctx.config, &r, &d, event_id.as_deref(), now_ms());
    finish(ctx, job, "promotion triggered", changes).await?;
    tracing::info!(release.id = r.id.0, deployment.id = d.id.0, env = %env_name, "promotion triggered");
    Ok(())
}

/// Looks at whether a promotion goes on by itself now ([`promote::consider`]): starts it, looks
/// again when a soak or a freeze window ends, or leaves it to a person.
pub async fn consider(
    ctx: &Context,
    job: &ClaimedJob,
    release_id: ReleaseId,
    env_name: &EnvName,
) -> StepResult {
    let r = ctx
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    let Some(env) = ctx
        .config
        .project(r.project.as_str())
        .and_then(|p| p.environments.get(env_name))
    else {
        let outcome = format!("environment `{env_name}` is no longer configured");
        return finish(ctx, job, &outcome, Default::default()).await;
    };
    let deployments = ctx.store.deployments(r.id).await?;
    let approvals = ctx.store.approvals(r.id).await?;
    let now = now_ms();
    match promote::consider(env, &r, &deployments, &approvals, now) {
        Consider::Promote { by, via } => {
            match promote::request(
                &ctx.config,
                env,
                &r,
                &deployments,
                &approvals,
                &by,
                via,
                now,
            ) {
                Ok(changes) => finish(ctx, job, "promotion started", changes).await,
                Err(promote::Decision::Refused(unmet)) => {
                    finish(ctx, job, &unmet.to_string(), Default::default()).await
                }
                Err(_) => finish(ctx, job, "already under way", Default::default()).await,
            }
        }
        Consider::Later(at) => {
            let again = Changes::default().job(Job::consider(r.id, &r.project, env_name, Some(at)));
            finish(ctx, job, "to be looked at again", again).await
        }
        Consider::Wait(why) => finish(ctx, job, &why, Default::default()).await,
        Consider::Already(_) => finish(ctx, job, "already under way", Default::default()).await,
    }
}

/// A Jira issue moved to `status`: its release is promoted into the environments that promote on
/// that status, in the name of `by` ([`promote::on_status`]). A promotion refused is said in the
/// release's timeline and in Slack; the job itself succeeds.
pub async fn on_status(
    ctx: &Context,
    job: &ClaimedJob,
    issue: &str,
    status: &str,
    by: &str,
) -> StepResult {
    let releases = ctx.store.releases_of_issue(issue).await?;
    let asked = promote::on_status(&ctx.config, &releases, status);
    if asked.is_empty() {
        let outcome =
            format!("{issue} has no tagged release in a project that promotes on `{status}`");
        return finish(ctx, job, &outcome, Changes::default()).await;
    }
    let mut outcomes = Vec::new();
    let mut changes = Changes::default();
    for (release, env) in asked {
        let asked = requests::promote(&ctx.store, &ctx.config, release, &env.name, by, Via::Jira);
        match asked.await {
            Ok(Promoted::Started) => outcomes.push(format!("release {release} into {}", env.name)),
            Ok(Promoted::Already(d)) => outcomes.push(format!(
                "release {release} into {}: under way or done already (deployment {d})",
                env.name
            )),
            Err(Refused::Store(e)) => return Err(e.into()),
            Err(refused) => {
                let text = format!(
                    "{by} moved {issue} to `{status}`, but release {release} was not promoted into {}: {refused}",
                    env.name
                );
                outcomes.push(format!("release {release} into {}: {refused}", env.name));
                changes.extend(
                    Changes::default()
                        .event(release, "promotion_refused", text.clone())
                        .maybe_job(crate::core::notify_job(
                            &ctx.config,
                            release,
                            NotifyEvent::Warning { text },
                        )),
                );
            }
        }
    }
    finish(ctx, job, &outcomes.join("; "), changes).await
}
