//! The records Hoist keeps, as the rest of the code sees them: deliveries in, releases and their
//! timelines, tags, jobs and their attempts. The store reads rows into these types and writes
//! them back; it refuses a row it cannot read as one (a corrupt record) instead of guessing.

use std::fmt;

use super::commit::CommitSha;
use super::ids::{DeliveryId, DeploymentId, JobId, ReleaseId};
use super::names::{EnvName, ProjectName, TagName};
use super::time::Millis;
use super::version::Version;

macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

words!(
    /// Who sent a delivery.
    Source {
        Jira = "jira",
        Circleci = "circleci",
        Bitbucket = "bitbucket",
    }
);

words!(
    /// Where a release is in its pass from ticket to deploy.
    ReleaseStatus {
        /// The ticket arrived; the tag is being made.
        Received = "received",
        /// The tag exists; waiting for the build.
        Tagged = "tagged",
        /// The build succeeded; the deploy trigger is being sent.
        Built = "built",
        /// Spinnaker accepted the trigger; Hoist looks for the executions it started.
        DeployTriggered = "deploy_triggered",
        /// A pipeline execution of the trigger is running.
        DeployStarted = "deploy_started",
        /// Every execution of the trigger succeeded. Final.
        Deployed = "deployed",
        /// An execution ended without success. Final.
        DeployFailed = "deploy_failed",
        /// No execution started within `[spinnaker] start_timeout_secs`. Final.
        DeployNotStarted = "deploy_not_started",
        /// Still running after `[spinnaker] deploy_timeout_secs`. Final.
        DeployTimedOut = "deploy_timed_out",
        /// The build failed; nothing was deployed. Final.
        BuildFailed = "build_failed",
        /// A step failed for good (commit missing, retries exhausted). Final.
        Failed = "failed",
    }
);

impl ReleaseStatus {
    /// Whether the release has ended (nothing more happens to it unless someone retries a job).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Deployed
                | Self::DeployFailed
                | Self::DeployNotStarted
                | Self::DeployTimedOut
                | Self::BuildFailed
                | Self::Failed
        )
    }
}

impl<'de> serde::Deserialize<'de> for ReleaseStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("release status `{s}`")))
    }
}

words!(
    /// Who made a tag Hoist knows of.
    TagOrigin {
        /// Hoist created it.
        Hoist = "hoist",
        /// Found in the repository's listing.
        Scm = "scm",
        /// Named by a build's payload.
        Build = "build",
        /// Pushed by hand, learnt from Bitbucket's `repo:push` webhook.
        Push = "push",
    }
);

words!(
    /// Why a deployment was made.
    DeploymentKind {
        /// The release's own deploy, in the environment its ticket named.
        Release = "release",
        /// The release carried into a further environment.
        Promotion = "promotion",
        /// An earlier release deployed again to replace the current one.
        Rollback = "rollback",
    }
);

words!(
    /// Where a deployment is: triggered, then followed to its end in Spinnaker.
    DeploymentStatus {
        /// The trigger is being sent (for a promotion: its tag made first).
        Triggering = "triggering",
        /// A promotion's tag is made; CircleCI is to build it first (`build = true`).
        AwaitingBuild = "awaiting_build",
        /// CircleCI built the promotion's tag; the trigger is being sent.
        Built = "built",
        /// Gate accepted the trigger; no execution seen yet.
        Triggered = "triggered",
        /// An execution is running.
        Started = "started",
        /// Every execution succeeded. Final.
        Deployed = "deployed",
        /// An execution ended without success. Final.
        Failed = "failed",
        /// No execution started in time. Final.
        NotStarted = "not_started",
        /// Executions still ran when the deploy timeout passed. Final.
        TimedOut = "timed_out",
    }
);

impl DeploymentStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Deployed | Self::Failed | Self::NotStarted | Self::TimedOut
        )
    }
}

words!(
    /// Where a job is in the queue.
    JobState {
        Queued = "queued",
        Running = "running",
        Done = "done",
        /// Its last attempt failed; kept, and retryable by hand.
        Failed = "failed",
    }
);

/// A delivery's de-duplication key: who sent it, when the sender says the event happened (as sent;
/// empty when it gives none), and the sender's id for it. A redelivery repeats all three.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub source: Source,
    pub event_at: String,
    pub id: String,
}

/// An inbound webhook request about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub source: Source,
    /// The sender's delivery id, when it has one (de-duplication key).
    pub key: Option<String>,
    /// When the sender says the event happened, from the signed body, as sent (CircleCI's
    /// `happened_at`); empty when it gives none. Part of the de-duplication key, ahead of `key`:
    /// a redelivery repeats the event's time, and a key index in time order takes each new key
    /// at its end instead of in a random leaf.
    pub event_at: String,
    pub event: String,
    pub client_ip: Option<std::net::IpAddr>,
    pub body: String,
}

impl NewDelivery {
    pub fn dedupe_key(&self) -> Option<DeliveryKey> {
        self.key.as_ref().map(|id| DeliveryKey {
            source: self.source,
            event_at: self.event_at.clone(),
            id: id.clone(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: DeliveryId,
    pub source: Source,
    pub key: Option<String>,
    pub event_at: String,
    pub event: String,
    pub client_ip: Option<String>,
    pub received_at: Millis,
    pub body: String,
    pub outcome: String,
    pub release: Option<ReleaseId>,
}

/// A release a ticket starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub project: ProjectName,
    pub env: EnvName,
    pub repo: String,
    pub commit: CommitSha,
    pub issue: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Release {
    pub id: ReleaseId,
    pub project: ProjectName,
    pub env: EnvName,
    pub repo: String,
    /// The commit as the ticket named it.
    pub commit: CommitSha,
    /// The full hash, once Bitbucket confirmed the commit.
    pub full_commit: Option<CommitSha>,
    pub issue: Option<String>,
    pub status: ReleaseStatus,
    pub tag: Option<TagName>,
    pub version: Option<Version>,
    /// The commit already carried a tag of the family, which the release took.
    pub tag_reused: bool,
    pub build_url: Option<String>,
    pub build_status: Option<String>,
    pub deploy_event_id: Option<String>,
    /// The Slack thread of the release (its first message's `ts`).
    pub slack_ts: Option<String>,
    pub error: Option<String>,
    pub received_at: Millis,
    pub commit_verified_at: Option<Millis>,
    /// The commit's own date, as Bitbucket's commit answer gave it (`None` when it gave none).
    pub committed_at: Option<Millis>,
    pub tagged_at: Option<Millis>,
    pub built_at: Option<Millis>,
    pub deploy_triggered_at: Option<Millis>,
    /// When the deploy's first execution started, as Gate reports it.
    pub deploy_started_at: Option<Millis>,
    /// When the deploy ended with every execution succeeded, as Gate reports it.
    pub deployed_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub updated_at: Millis,
}

impl Release {
    /// The commit as precisely as known: the full hash once verified.
    pub fn best_commit(&self) -> &CommitSha {
        self.full_commit.as_ref().unwrap_or(&self.commit)
    }

    /// Lead time: ticket received to deploy confirmed finished (SPEC 3.4), once it is.
    pub fn lead_time_ms(&self) -> Option<Millis> {
        self.deployed_at.map(|t| t - self.received_at)
    }

    /// Ticket received to deploy triggered, once both happened (kept beside the lead time).
    pub fn trigger_lead_time_ms(&self) -> Option<Millis> {
        self.deploy_triggered_at.map(|t| t - self.received_at)
    }
}

/// One line of a release's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEvent {
    pub at: Millis,
    pub step: String,
    pub message: String,
}

/// A tag Hoist knows of, in one of a project's environment families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownTag {
    pub project: ProjectName,
    pub env: EnvName,
    pub name: TagName,
    pub commit: CommitSha,
    pub release: Option<ReleaseId>,
    pub origin: TagOrigin,
}

/// A job as the queue holds it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: String,
    pub release: Option<ReleaseId>,
    pub lane: String,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: Millis,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
}

/// One attempt at a job.
#[derive(Debug, Clone)]
pub struct JobAttempt {
    pub job: JobId,
    pub attempt: i64,
    pub worker: String,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// A tag as the repository lists it: any name (not necessarily of a family), on a full hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoTag {
    pub name: String,
    /// The commit's full hash, as the repository gives it.
    pub commit: String,
}

words!(
    /// How a person (or Hoist) asked for a promotion or gave an approval.
    Via {
        /// A button in the release's Slack thread.
        Slack = "slack",
        /// `POST /api/releases/{id}/...`.
        Api = "api",
        /// `hoist promote`, `hoist approve`, `hoist rollback`.
        Cli = "cli",
        /// The Jira issue moved to the environment's `promote_on_status`.
        Jira = "jira",
        /// `auto = true`: Hoist, once every condition held.
        Auto = "auto",
        /// A button on the dashboard (`GET /releases/{id}`), by the signed-in person.
        Dashboard = "dashboard",
    }
);

/// One person's approval of a release for an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub release: ReleaseId,
    pub env: EnvName,
    pub by: String,
    pub via: Via,
    pub at: Millis,
}

/// One pass of a release into an environment: the trigger sent to Spinnaker, and what became of it.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: DeploymentId,
    pub release: ReleaseId,
    pub project: ProjectName,
    pub env: EnvName,
    pub kind: DeploymentKind,
    pub tag: TagName,
    /// The Spinnaker webhook source triggered.
    pub source: String,
    /// The application whose executions are looked up (`*`: any).
    pub application: String,
    pub status: DeploymentStatus,
    /// Echo's id of the trigger event.
    pub event_id: Option<String>,
    pub created_at: Millis,
    pub triggered_at: Option<Millis>,
    /// When the first execution started, as Gate reports it.
    pub started_at: Option<Millis>,
    /// When the deployment ended: the executions' end as Gate reports it, or when Hoist gave up.
    pub finished_at: Option<Millis>,
    /// The first stage that failed, when one did.
    pub failed_stage: Option<String>,
    pub error: Option<String>,
    /// Who asked for it (a Slack user id, a name given to the API or CLI), and how.
    pub requested_by: Option<String>,
    pub requested_via: Option<Via>,
}

/// A Spinnaker pipeline execution, as Gate reports it (Orca's execution, the fields Hoist reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub id: String,
    pub application: String,
    /// The pipeline's name.
    pub name: String,
    /// Orca's status, as given (`RUNNING`, `SUCCEEDED`, `TERMINAL`...).
    pub status: String,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
    pub stages: Vec<Stage>,
}

/// One stage of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub kind: String,
    pub status: String,
}
