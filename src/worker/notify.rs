//! Slack messages. A notification is a job of its own: Slack being down never holds up a release.

use super::step::{Context, StepError, StepResult, finish};
use crate::core::job::NotifyEvent;
use crate::core::notify::{Links, Target, message};
use crate::core::plan::{Changes, ReleaseChange};
use crate::domain::{DeploymentId, ReleaseId};
use crate::store::ClaimedJob;

pub async fn run(
    ctx: &Context,
    job: &ClaimedJob,
    release_id: ReleaseId,
    deployment: Option<DeploymentId>,
    event: &NotifyEvent,
) -> StepResult {
    let Some(slack) = &ctx.clients.slack else {
        return finish(ctx, job, "slack not configured", Changes::default()).await;
    };
    let r = ctx
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    let links = links(ctx);
    let thread = if slack.threads() {
        r.slack_ts.as_deref()
    } else {
        None
    };
    let about = match deployment {
        Some(id) => ctx.store.deployment(id).await?,
        None => None,
    };
    let target = about.as_ref().map(|d| Target {
        env: &d.env,
        tag: &d.tag,
    });
    let ts = slack
        .post(&message(&r, event, &links, target), thread)
        .await?;
    // The first message of a release is its thread's root.
    let changes = match ts.filter(|_| thread.is_none()) {
        Some(ts) => Changes::default().release(r.id, ReleaseChange::SlackThread { ts }),
        None => Changes::default(),
    };
    finish(ctx, job, "posted", changes).await
}

/// Where a message's links point.
pub(super) fn links(ctx: &Context) -> Links<'_> {
    Links::of(&ctx.config)
}
