//! When jobs fail: what a job that gives up does to its release, and how a job retried by hand
//! or a delivery replayed puts things back in motion.

use crate::config::Config;
use crate::domain::{
    Delivery, Deployment, DeploymentStatus, Millis, Release, ReleaseId, ReleaseStatus, Source,
};

use super::job::{Job, JobSpec, NotifyEvent};
use super::notify_job;
use super::plan::{Changes, DeploymentChange, ReleaseChange};

/// The step a job performs, as a person names it in a failure.
fn step(spec: &JobSpec) -> Option<&'static str> {
    match spec {
        JobSpec::CreateTag { .. } => Some("tagging"),
        JobSpec::Deploy { .. } => Some("deploy trigger"),
        // A promotion that gives up fails its deployment, not the release (see `give_up` and
        // `trigger_abandoned`).
        JobSpec::HandleBuild { .. }
        | JobSpec::FollowDeploy { .. }
        | JobSpec::Promote { .. }
        | JobSpec::ConsiderPromotion { .. }
        | JobSpec::Respond { .. }
        | JobSpec::JiraComment { .. }
        | JobSpec::JiraTransition { .. }
        | JobSpec::PromoteOnStatus { .. }
        | JobSpec::ReconcileBuild { .. }
        | JobSpec::Notify { .. } => None,
    }
}

/// A job that will not be retried (its last attempt failed, or the failure is permanent): its
/// release fails visibly and Slack is told; a build event's delivery records why. A Slack message
/// that cannot be sent changes nothing else; a Jira update that cannot be made is a warning in
/// the release's record and in Slack, and changes nothing else either.
pub fn give_up(config: &Config, spec: &JobSpec, error: &str, attempts: i64) -> Changes {
    match spec {
        JobSpec::HandleBuild { delivery_id } => {
            return Changes::default().delivery(*delivery_id, format!("failed: {error}"), None);
        }
        JobSpec::JiraComment { release_id, .. } | JobSpec::JiraTransition { release_id, .. } => {
            let what = if let JobSpec::JiraComment { event, .. } = spec {
                format!("the Jira comment on `{}`", event.step())
            } else {
                "the Jira transition".to_string()
            };
            return jira_warning(
                config,
                *release_id,
                &format!("{what} was not made ({attempts} attempt(s)): {error}"),
            );
        }
        JobSpec::ReconcileBuild { release_id } => {
            let text = format!(
                "could not ask CircleCI's API about the build ({attempts} attempt(s)): {error}"
            );
            return Changes::default()
                .event(*release_id, "build_check_failed", text.clone())
                .maybe_job(notify_job(
                    config,
                    *release_id,
                    NotifyEvent::Warning { text },
                ));
        }
        JobSpec::Promote { release_id, env } => {
            let step = format!("promotion into {env}");
            return Changes::default()
                .event(
                    *release_id,
                    "promotion_failed",
                    format!("{step} failed after {attempts} attempt(s): {error}"),
                )
                .maybe_job(notify_job(
                    config,
                    *release_id,
                    NotifyEvent::Failed {
                        step,
                        error: error.into(),
                    },
                ));
        }
        _ => {}
    }
    let (Some(release), Some(step)) = (spec.release(), step(spec)) else {
        return Changes::default();
    };
    Changes::default()
        .release(
            release,
            ReleaseChange::Failed {
                error: format!("{step} failed: {error}"),
            },
        )
        .event(
            release,
            "failed",
            format!("{step} failed after {attempts} attempt(s): {error}"),
        )
        .maybe_job(notify_job(
            config,
            release,
            NotifyEvent::Failed {
                step: step.into(),
                error: error.into(),
            },
        ))
}

/// A Jira update that could not be made: a line in the release's timeline and a warning in Slack.
pub fn jira_warning(config: &Config, release: ReleaseId, text: &str) -> Changes {
    Changes::default()
        .event(release, "jira_warning", text.to_string())
        .maybe_job(notify_job(
            config,
            release,
            NotifyEvent::Warning {
                text: text.to_string(),
            },
        ))
}

/// A trigger that was never sent (its job gave up): the deployment recorded for it, still being
/// triggered, fails with the job's error.
pub fn trigger_abandoned(deployments: &[Deployment], error: &str, now: Millis) -> Changes {
    deployments
        .iter()
        .filter(|d| {
            matches!(
                d.status,
                DeploymentStatus::Triggering | DeploymentStatus::Built
            )
        })
        .fold(Changes::default(), |c, d| {
            c.deployment(
                d.id,
                DeploymentChange::Finished {
                    status: DeploymentStatus::Failed,
                    at: now,
                    failed_stage: None,
                    error: Some(format!("the trigger was not sent: {error}")),
                },
            )
        })
}

/// The status a failed release goes back to when a job of this kind is retried by hand: the
/// step the job performs.
pub fn reopens_at(kind: &str) -> Option<ReleaseStatus> {
    match kind {
        "create_tag" => Some(ReleaseStatus::Received),
        "deploy" => Some(ReleaseStatus::Built),
        _ => None,
    }
}

/// What retrying a failed job of `kind` by hand does to its release: it reopens at the step the
/// job performs, with a line in its timeline.
pub fn retried(kind: &str, release: Option<ReleaseId>) -> Changes {
    match (reopens_at(kind), release) {
        (Some(at), Some(r)) => Changes::default()
            .release(r, ReleaseChange::Reopened { at })
            .event(r, "retried", format!("{kind} queued again by hand")),
        _ => Changes::default(),
    }
}

/// What replaying a stored delivery does (`hoist replay`): a build event is handled anew; a ticket
/// whose release failed before it had a tag is tagged again. `None`: nothing to replay.
pub fn replay(d: &Delivery, release: Option<&Release>) -> Option<Changes> {
    match (d.source, release) {
        (Source::Circleci, _) => Some(Changes::default().job(Job::handle_build(d.id))),
        (Source::Jira, Some(r)) if r.status == ReleaseStatus::Failed && r.tag.is_none() => Some(
            Changes::default()
                .release(
                    r.id,
                    ReleaseChange::Reopened {
                        at: ReleaseStatus::Received,
                    },
                )
                .job(Job::create_tag(r.id, &r.project, &r.env)),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{config, release};
    use crate::domain::DeliveryId;

    #[test]
    fn a_job_that_gives_up() {
        let r = ReleaseId(1);
        let tag = give_up(
            &config(true),
            &JobSpec::CreateTag { release_id: r },
            "HTTP 500",
            3,
        );
        assert_eq!(
            tag.releases,
            [(
                r,
                ReleaseChange::Failed {
                    error: "tagging failed: HTTP 500".into()
                }
            )]
        );
        assert_eq!(
            tag.timeline[0].message,
            "tagging failed after 3 attempt(s): HTTP 500"
        );
        assert_eq!(tag.jobs.len(), 1, "Slack is told");
        let quiet = give_up(&config(false), &JobSpec::Deploy { release_id: r }, "x", 1);
        assert!(quiet.jobs.is_empty(), "no Slack configured, no message");
        assert_eq!(quiet.releases.len(), 1);

        let build = give_up(
            &config(true),
            &JobSpec::HandleBuild {
                delivery_id: DeliveryId(4),
            },
            "x",
            1,
        );
        assert_eq!(build.delivery.unwrap().outcome, "failed: x");
        assert!(build.releases.is_empty());
        let notify = give_up(
            &config(true),
            &JobSpec::Notify {
                release_id: r,
                deployment: None,
                event: NotifyEvent::Tagged { step_ms: 1 },
            },
            "x",
            1,
        );
        assert_eq!(notify, Changes::default(), "a lost message fails nothing");
    }

    #[test]
    fn retried_jobs_reopen_their_step() {
        let table = [
            ("create_tag", Some(ReleaseStatus::Received)),
            ("deploy", Some(ReleaseStatus::Built)),
            ("handle_build", None),
            ("notify", None),
        ];
        for (kind, at) in table {
            assert_eq!(reopens_at(kind), at, "{kind}");
        }
    }

    #[test]
    fn replays() {
        let delivery = |source| Delivery {
            id: DeliveryId(9),
            source,
            key: None,
            event_at: String::new(),
            event: String::new(),
            client_ip: None,
            received_at: 0,
            body: String::new(),
            outcome: String::new(),
            release: Some(ReleaseId(1)),
        };
        let build = replay(&delivery(Source::Circleci), None).unwrap();
        assert_eq!(build.jobs, [Job::handle_build(DeliveryId(9))]);

        let mut failed = release();
        failed.status = ReleaseStatus::Failed;
        failed.tag = None;
        let ticket = replay(&delivery(Source::Jira), Some(&failed)).unwrap();
        assert_eq!(ticket.jobs[0].spec.kind(), "create_tag");
        assert_eq!(
            ticket.releases[0].1.apply(ReleaseStatus::Failed),
            Some(ReleaseStatus::Received)
        );
        assert!(
            replay(&delivery(Source::Jira), Some(&release())).is_none(),
            "not failed"
        );
        assert!(replay(&delivery(Source::Bitbucket), None).is_none());
    }
}
