//! Jira write-back (SPEC 14): a comment on the release's issue at the steps `[jira] comment_on`
//! names, and the environment's `jira_transition` once deployed there. Like Slack's messages,
//! these are jobs of their own: Jira being down or refusing never holds up a release; what it
//! refuses for good becomes a warning (`core::failure::give_up`).

use super::step::{Context, StepError, StepResult, finish};
use crate::clients::jira::find;
use crate::core::failure::jira_warning;
use crate::core::job::NotifyEvent;
use crate::core::notify::{Target, message};
use crate::core::plan::Changes;
use crate::domain::{DeploymentId, EnvName, Release, ReleaseId};
use crate::store::ClaimedJob;

async fn release(ctx: &Context, id: ReleaseId) -> Result<Release, StepError> {
    ctx.store
        .release(id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {id} does not exist")))
}

/// Comments on the release's issue about `event`.
pub async fn comment(
    ctx: &Context,
    job: &ClaimedJob,
    release_id: ReleaseId,
    deployment: Option<DeploymentId>,
    event: &NotifyEvent,
) -> StepResult {
    let Some(jira) = &ctx.clients.jira else {
        return finish(
            ctx,
            job,
            "jira write-back not configured",
            Changes::default(),
        )
        .await;
    };
    let r = release(ctx, release_id).await?;
    let Some(issue) = r.issue.as_deref() else {
        return finish(ctx, job, "the release has no issue", Changes::default()).await;
    };
    let about = match deployment {
        Some(id) => ctx.store.deployment(id).await?,
        None => None,
    };
    let target = about.as_ref().map(|d| Target {
        env: &d.env,
        tag: &d.tag,
    });
    let text = message(&r, event, &super::notify::links(ctx), target);
    jira.comment(issue, &text).await?;
    finish(
        ctx,
        job,
        &format!("commented on {issue}"),
        Changes::default(),
    )
    .await
}

/// Moves the release's issue by `env`'s `jira_transition`, unless it is in that status already
/// (an earlier attempt, or a person, moved it).
pub async fn transition(
    ctx: &Context,
    job: &ClaimedJob,
    release_id: ReleaseId,
    env: &EnvName,
) -> StepResult {
    let Some(jira) = &ctx.clients.jira else {
        return finish(
            ctx,
            job,
            "jira write-back not configured",
            Changes::default(),
        )
        .await;
    };
    let r = release(ctx, release_id).await?;
    let wanted = ctx
        .config
        .project(r.project.as_str())
        .and_then(|p| p.environments.get(env))
        .and_then(|e| e.jira_transition.clone());
    let (Some(issue), Some(wanted)) = (r.issue.as_deref(), wanted) else {
        let outcome = "no issue, or no jira_transition for the environment any more";
        return finish(ctx, job, outcome, Changes::default()).await;
    };
    let status = jira.status(issue).await?;
    if status.eq_ignore_ascii_case(&wanted) {
        let outcome = format!("{issue} is in `{status}` already");
        return finish(ctx, job, &outcome, Changes::default()).await;
    }
    let available = jira.transitions(issue).await?;
    let Some(t) = find(&available, &wanted) else {
        let names: Vec<String> = available
            .iter()
            .map(|t| format!("{} (to {})", t.name, t.to))
            .collect();
        let warning = format!(
            "Jira issue {issue} (in `{status}`) has no transition named `{wanted}` or leading to it, so it was not moved after the deploy to {env}; available: {}. Fix projects.{}.environments.{env}.jira_transition or the workflow",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            r.project
        );
        let changes = jira_warning(&ctx.config, r.id, &warning);
        return finish(ctx, job, "warning: no such transition", changes).await;
    };
    jira.transition(issue, &t.id).await?;
    let line = format!(
        "Jira issue {issue} moved from `{status}` to `{}` (transition `{}`) after the deploy to {env}",
        t.to, t.name
    );
    let changes = Changes::default().event(r.id, "jira_transitioned", line);
    finish(ctx, job, &format!("moved {issue} to {}", t.to), changes).await
}
