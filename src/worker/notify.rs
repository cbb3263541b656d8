//! Slack messages. A notification is a job of its own: Slack being down never holds up a release.

use super::{StepError, StepResult, finish_job};
use crate::app::App;
use crate::domain::NotifyEvent;
use crate::pipeline::notify::{Links, message};
use crate::store::ClaimedJob;

pub async fn run(app: &App, job: &ClaimedJob, release_id: i64, event: &NotifyEvent) -> StepResult {
    let Some(slack) = &app.slack else {
        return finish_job(app, job, "slack not configured").await;
    };
    let r = app
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    let bb = app.config.bitbucket.as_ref();
    let links = Links {
        jira: app.config.jira.base_url.as_deref(),
        bitbucket_web: bb
            .map(|b| b.web_url.as_str())
            .unwrap_or("https://bitbucket.org"),
        workspace: bb.map(|b| b.workspace.as_str()).unwrap_or(""),
    };
    let (text, blocks) = message(&r, event, &links);
    let thread = if slack.threads() {
        r.slack_ts.as_deref()
    } else {
        None
    };
    let ts = slack.post(&text, &blocks, thread).await?;

    let mut tx = app.store.begin().await?;
    if tx.finish_job(job, "posted").await?
        && let Some(ts) = ts.filter(|_| thread.is_none())
    {
        tx.set_slack_ts(r.id, &ts).await?;
    }
    tx.commit().await?;
    Ok(())
}
