//! The decision core: what happens next, decided without doing anything.
//!
//! Given an inbound event and the configuration, [`inbound`] returns what to record and what it
//! starts; given a job's inputs (the release as stored, what a vendor answered), the job's module
//! returns the [`plan::Changes`] to write: release changes, timeline lines, tags, follow-up jobs in
//! their [`job::Lane`]s. Nothing here does I/O, reads a clock or knows a vendor's format: the
//! HTTP layer, the worker and the store carry the plans out, so every rule here is tested with
//! plain values.

pub mod build;
pub mod deploy;
pub mod dora;
pub mod failure;
pub mod follow;
pub mod inbound;
pub mod job;
pub mod notify;
pub mod onward;
pub mod plan;
pub mod promote;
pub mod reconcile;
pub mod tag;
#[cfg(test)]
mod testing;

use crate::config::Config;
use crate::domain::{DeploymentId, ReleaseId};
use job::{Job, NotifyEvent};

/// The messages about a step of a release: to Slack when it is configured, and as a comment on
/// the release's Jira issue when `[jira] comment_on` names the step.
pub fn notify_job(config: &Config, release: ReleaseId, event: NotifyEvent) -> Vec<Job> {
    notify_about(config, release, None, event)
}

/// The messages about a step of one of the release's deployments (`None`: the release's own
/// steps), as [`notify_job`].
pub fn notify_about(
    config: &Config,
    release: ReleaseId,
    deployment: Option<DeploymentId>,
    event: NotifyEvent,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    if config.jira.comments_on(event.step()) {
        jobs.push(Job::jira_comment(release, deployment, event.clone()));
    }
    if config.slack.is_some() {
        jobs.push(Job::notify_about(release, deployment, event));
    }
    jobs
}
