//! Jobs: the outbound steps the worker runs, and the lanes that keep related ones in order.
//!
//! Jobs carry ids, not copies of data: a job reads the current state when it runs, so a retried job
//! acts on what is true then. Every job belongs to a [`Lane`]; jobs of one lane run one at a time,
//! in the order they were enqueued, on one replica or many.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{DeliveryId, DeploymentId, EnvName, Millis, ProjectName, ReleaseId};

/// What a Slack message reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NotifyEvent {
    Tagged {
        step_ms: i64,
    },
    TagReused {
        step_ms: i64,
    },
    Failed {
        step: String,
        error: String,
    },
    BuildSucceeded {
        step_ms: i64,
    },
    BuildFailed {
        status: String,
    },
    DeployTriggered {
        step_ms: i64,
    },
    /// An execution of the trigger is running.
    DeployStarted {
        pipeline: String,
        execution: String,
        /// The execution in Deck, when `[spinnaker] deck_url` is set.
        link: Option<String>,
    },
    /// Every execution succeeded.
    Deployed {
        step_ms: i64,
    },
    /// An execution ended without success.
    DeployFailed {
        pipeline: String,
        /// Orca's final status.
        status: String,
        /// The first stage that failed.
        stage: Option<String>,
        link: Option<String>,
        /// What to look at.
        check: String,
    },
    /// The release may go into `env` (it is deployed where `env` takes releases from): a
    /// button to promote it, or to approve it when `approvals` are needed.
    PromotionReady {
        env: String,
        approvals: u32,
    },
    /// Someone (or Hoist, `auto`) started the release's promotion into `env`.
    Promoted {
        env: String,
        tag: String,
        by: String,
        via: String,
    },
    /// `by` approved the release for `env`: `have` of `need`.
    Approved {
        env: String,
        by: String,
        have: u32,
        need: u32,
    },
    /// Something beside the release went wrong (a Jira update, say): said, nothing else fails.
    Warning {
        text: String,
    },
    /// No execution started in time.
    DeployNotStarted {
        waited_secs: i64,
        check: String,
    },
    /// Still running when the deploy timeout passed.
    DeployTimedOut {
        waited_secs: i64,
        link: Option<String>,
    },
}

impl NotifyEvent {
    /// The step the event reports, as `[jira] comment_on` names it.
    pub fn step(&self) -> &'static str {
        match self {
            Self::Tagged { .. } | Self::TagReused { .. } => "tagged",
            Self::Failed { .. } => "failed",
            Self::BuildSucceeded { .. } => "built",
            Self::BuildFailed { .. } => "build_failed",
            Self::DeployTriggered { .. } => "deploy_triggered",
            Self::DeployStarted { .. } => "deploy_started",
            Self::Deployed { .. } => "deployed",
            Self::DeployFailed { .. } => "deploy_failed",
            Self::PromotionReady { .. } => "promotion_ready",
            Self::Promoted { .. } => "promoted",
            Self::Approved { .. } => "approved",
            Self::Warning { .. } => "warning",
            Self::DeployNotStarted { .. } => "deploy_not_started",
            Self::DeployTimedOut { .. } => "deploy_timed_out",
        }
    }
}

/// One outbound step, as the queue stores it (its JSON is the job's payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobSpec {
    /// Verify the commit, then reuse or allocate and create the tag.
    CreateTag { release_id: ReleaseId },
    /// A CircleCI build finished: find the release for its commit and record the outcome.
    HandleBuild { delivery_id: DeliveryId },
    /// Send the Spinnaker trigger.
    Deploy { release_id: ReleaseId },
    /// Carry a release into a further environment: its tag there, then its trigger.
    Promote { release_id: ReleaseId, env: EnvName },
    /// Look at what the trigger of a deployment started, in Gate: the `poll`th look.
    FollowDeploy {
        deployment_id: DeploymentId,
        #[serde(default)]
        poll: u32,
    },
    /// Tell Slack (about one of the release's deployments, when it is not the release's own).
    Notify {
        release_id: ReleaseId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment: Option<DeploymentId>,
        #[serde(flatten)]
        event: NotifyEvent,
    },
    /// Answer a Slack click at its `response_url` (update the message, or tell the user).
    Respond {
        url: String,
        body: serde_json::Value,
    },
    /// Consider promoting a release into `env` now (after a deploy, an approval, or when a soak
    /// or a freeze window ends).
    ConsiderPromotion { release_id: ReleaseId, env: EnvName },
    /// Comment on the release's Jira issue about a step (SPEC 14).
    JiraComment {
        release_id: ReleaseId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployment: Option<DeploymentId>,
        #[serde(flatten)]
        event: NotifyEvent,
    },
    /// Move the release's Jira issue by `env`'s `jira_transition`, once deployed there.
    JiraTransition { release_id: ReleaseId, env: EnvName },
    /// Ask CircleCI's API about a release's build, whose webhook has not come (SPEC 16).
    ReconcileBuild { release_id: ReleaseId },
    /// A Jira issue moved to `status`: promote its release into the environments that promote on
    /// that status, in the name of `by`.
    PromoteOnStatus {
        issue: String,
        status: String,
        by: String,
    },
}

impl JobSpec {
    /// The job's kind as the queue lists it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateTag { .. } => "create_tag",
            Self::HandleBuild { .. } => "handle_build",
            Self::Deploy { .. } => "deploy",
            Self::Promote { .. } => "promote",
            Self::FollowDeploy { .. } => "follow_deploy",
            Self::Notify { .. } => "notify",
            Self::ConsiderPromotion { .. } => "consider_promotion",
            Self::Respond { .. } => "respond",
            Self::JiraComment { .. } => "jira_comment",
            Self::JiraTransition { .. } => "jira_transition",
            Self::PromoteOnStatus { .. } => "promote_on_status",
            Self::ReconcileBuild { .. } => "reconcile_build",
        }
    }

    /// The release the job works on, when it is known before it runs.
    pub fn release(&self) -> Option<ReleaseId> {
        match self {
            Self::CreateTag { release_id }
            | Self::Deploy { release_id }
            | Self::Promote { release_id, .. }
            | Self::ConsiderPromotion { release_id, .. }
            | Self::JiraComment { release_id, .. }
            | Self::JiraTransition { release_id, .. }
            | Self::ReconcileBuild { release_id }
            | Self::Notify { release_id, .. } => Some(*release_id),
            Self::HandleBuild { .. }
            | Self::FollowDeploy { .. }
            | Self::Respond { .. }
            | Self::PromoteOnStatus { .. } => None,
        }
    }
}

/// Jobs that must not run at the same time, nor out of order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Tag creation for one project and environment: concurrent tickets get consecutive versions,
    /// one at a time.
    Tag { project: ProjectName, env: EnvName },
    /// One build event's handling.
    Build(DeliveryId),
    /// One release's deploy trigger.
    Deploy(ReleaseId),
    /// One release's Slack messages, in order, so that the first is the thread's root.
    Notify(ReleaseId),
    /// The looks at one deployment's executions, one at a time.
    Follow(DeploymentId),
    /// One answer to a click (each its own).
    Respond(String),
    /// One release's Jira write-back, in order.
    Jira(ReleaseId),
    /// One Jira status change's promotions.
    Status(String),
    /// The looks at one release's build in CircleCI's API.
    Reconcile(ReleaseId),
}

impl fmt::Display for Lane {
    /// The lane as the queue stores it (project and environment names hold no `:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag { project, env } => write!(f, "tag:{project}:{env}"),
            Self::Build(delivery) => write!(f, "build:{delivery}"),
            Self::Deploy(release) => write!(f, "deploy:{release}"),
            Self::Notify(release) => write!(f, "notify:{release}"),
            Self::Follow(deployment) => write!(f, "follow:{deployment}"),
            Self::Respond(key) => write!(f, "respond:{key}"),
            Self::Jira(release) => write!(f, "jira:{release}"),
            Self::Status(key) => write!(f, "status:{key}"),
            Self::Reconcile(release) => write!(f, "reconcile:{release}"),
        }
    }
}

/// A job to enqueue: what it does, the lane it waits in, and when it may run (at once if `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub spec: JobSpec,
    pub lane: Lane,
    pub run_at: Option<Millis>,
}

impl Job {
    pub fn create_tag(release_id: ReleaseId, project: &ProjectName, env: &EnvName) -> Self {
        Self {
            spec: JobSpec::CreateTag { release_id },
            lane: Lane::Tag {
                project: project.clone(),
                env: env.clone(),
            },
            run_at: None,
        }
    }

    /// A release's promotion into `env`, in the lane of that environment's tags.
    pub fn promote(release_id: ReleaseId, project: &ProjectName, env: &EnvName) -> Self {
        Self {
            spec: JobSpec::Promote {
                release_id,
                env: env.clone(),
            },
            lane: Lane::Tag {
                project: project.clone(),
                env: env.clone(),
            },
            run_at: None,
        }
    }

    pub fn handle_build(delivery_id: DeliveryId) -> Self {
        Self {
            spec: JobSpec::HandleBuild { delivery_id },
            lane: Lane::Build(delivery_id),
            run_at: None,
        }
    }

    pub fn deploy(release_id: ReleaseId) -> Self {
        Self {
            spec: JobSpec::Deploy { release_id },
            lane: Lane::Deploy(release_id),
            run_at: None,
        }
    }

    pub fn notify(release_id: ReleaseId, event: NotifyEvent) -> Self {
        Self::notify_about(release_id, None, event)
    }

    /// A message about one of the release's deployments (`None`: the release's own steps).
    pub fn notify_about(
        release_id: ReleaseId,
        deployment: Option<DeploymentId>,
        event: NotifyEvent,
    ) -> Self {
        Self {
            spec: JobSpec::Notify {
                release_id,
                deployment,
                event,
            },
            lane: Lane::Notify(release_id),
            run_at: None,
        }
    }

    /// A comment on the release's Jira issue about `event`.
    pub fn jira_comment(
        release_id: ReleaseId,
        deployment: Option<DeploymentId>,
        event: NotifyEvent,
    ) -> Self {
        Self {
            spec: JobSpec::JiraComment {
                release_id,
                deployment,
                event,
            },
            lane: Lane::Jira(release_id),
            run_at: None,
        }
    }

    /// The release's Jira issue moved by `env`'s transition.
    pub fn jira_transition(release_id: ReleaseId, env: &EnvName) -> Self {
        Self {
            spec: JobSpec::JiraTransition {
                release_id,
                env: env.clone(),
            },
            lane: Lane::Jira(release_id),
            run_at: None,
        }
    }

    /// A look at release `release_id`'s build in CircleCI's API, at `at`.
    pub fn reconcile(release_id: ReleaseId, at: Millis) -> Self {
        Self {
            spec: JobSpec::ReconcileBuild { release_id },
            lane: Lane::Reconcile(release_id),
            run_at: Some(at),
        }
    }

    /// The promotions a Jira status change asks for; `key` (the delivery) names its lane.
    pub fn promote_on_status(issue: &str, status: &str, by: &str, key: String) -> Self {
        Self {
            spec: JobSpec::PromoteOnStatus {
                issue: issue.to_string(),
                status: status.to_string(),
                by: by.to_string(),
            },
            lane: Lane::Status(key),
            run_at: None,
        }
    }

    /// An answer to a Slack click, posted to its `response_url`; `key` names the answer's lane.
    pub fn respond(url: &str, body: serde_json::Value, key: String) -> Self {
        Self {
            spec: JobSpec::Respond {
                url: url.to_string(),
                body,
            },
            lane: Lane::Respond(key),
            run_at: None,
        }
    }

    /// A look at whether `release` can go into `env`, at `at` (at once if `None`), in the lane of
    /// that environment's tags, where its promotion would run.
    pub fn consider(
        release_id: ReleaseId,
        project: &ProjectName,
        env: &EnvName,
        at: Option<Millis>,
    ) -> Self {
        Self {
            spec: JobSpec::ConsiderPromotion {
                release_id,
                env: env.clone(),
            },
            lane: Lane::Tag {
                project: project.clone(),
                env: env.clone(),
            },
            run_at: at,
        }
    }

    /// The `poll`th look at a deployment's executions, at `at`.
    pub fn follow(deployment_id: DeploymentId, poll: u32, at: Millis) -> Self {
        Self {
            spec: JobSpec::FollowDeploy {
                deployment_id,
                poll,
            },
            lane: Lane::Follow(deployment_id),
            run_at: Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_payloads_keep_their_shape() {
        // Payloads written by earlier versions must still parse: jobs outlive upgrades.
        let cases = [
            (
                r#"{"type":"create_tag","release_id":3}"#,
                JobSpec::CreateTag {
                    release_id: ReleaseId(3),
                },
            ),
            (
                r#"{"type":"handle_build","delivery_id":9}"#,
                JobSpec::HandleBuild {
                    delivery_id: DeliveryId(9),
                },
            ),
            (
                r#"{"type":"deploy","release_id":3}"#,
                JobSpec::Deploy {
                    release_id: ReleaseId(3),
                },
            ),
            (
                r#"{"type":"notify","release_id":3,"event":"tagged","step_ms":12}"#,
                JobSpec::Notify {
                    release_id: ReleaseId(3),
                    deployment: None,
                    event: NotifyEvent::Tagged { step_ms: 12 },
                },
            ),
        ];
        for (json, spec) in cases {
            assert_eq!(
                serde_json::from_str::<JobSpec>(json).unwrap(),
                spec,
                "{json}"
            );
            assert_eq!(serde_json::to_string(&spec).unwrap(), json);
        }
    }

    #[test]
    fn lanes_as_stored() {
        let p = ProjectName::parse("payments-api").unwrap();
        let e = EnvName::parse("stg").unwrap();
        let table = [
            (
                Job::create_tag(ReleaseId(1), &p, &e),
                "tag:payments-api:stg",
            ),
            (Job::handle_build(DeliveryId(7)), "build:7"),
            (Job::deploy(ReleaseId(1)), "deploy:1"),
            (Job::follow(DeploymentId(4), 0, 0), "follow:4"),
            (
                Job::notify(ReleaseId(1), NotifyEvent::Tagged { step_ms: 1 }),
                "notify:1",
            ),
        ];
        for (job, lane) in table {
            assert_eq!(job.lane.to_string(), lane);
        }
        // Every release of a project and environment shares one tag lane; other lanes are per
        // release or per delivery.
        assert_eq!(
            Job::create_tag(ReleaseId(1), &p, &e).lane,
            Job::create_tag(ReleaseId(2), &p, &e).lane
        );
        assert_ne!(
            Job::deploy(ReleaseId(1)).lane,
            Job::deploy(ReleaseId(2)).lane
        );
    }
}
