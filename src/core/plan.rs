//! Plans: what a decision asks the store to write, as data. The store carries a plan out in one
//! transaction (with the job that made it, if any); it decides nothing itself.

use crate::domain::{
    CommitSha, DeliveryId, DeploymentId, DeploymentKind, DeploymentStatus, EnvName, Millis,
    ProjectName, ReleaseId, ReleaseStatus, TagName, TagOrigin, Version, Via,
};

use super::job::Job;

/// A change to a release's record. Each moves the release's status as [`Self::transition`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseChange {
    /// Bitbucket confirmed the commit and gave its full hash, and its date when it gave one.
    CommitVerified {
        full: CommitSha,
        committed_at: Option<Millis>,
    },
    /// The release has its tag (made by Hoist, or found on the commit and reused).
    Tagged {
        tag: TagName,
        version: Version,
        reused: bool,
    },
    /// CircleCI finished building the tag.
    Built {
        status: String,
        url: Option<String>,
        success: bool,
    },
    /// Spinnaker's Gate accepted the deploy trigger.
    DeployTriggered { event_id: Option<String> },
    /// An execution of the trigger started, at `at` (Gate's time).
    DeployStarted { at: Millis },
    /// Every execution succeeded; the last ended at `at` (Gate's time).
    Deployed { at: Millis },
    /// The deploy ended without success: `DeployFailed`, `DeployNotStarted` or `DeployTimedOut`.
    DeployEnded {
        status: ReleaseStatus,
        error: String,
    },
    /// A step failed for good.
    Failed { error: String },
    /// A failed job was retried by hand: the release goes back to the step the job performs.
    Reopened { at: ReleaseStatus },
    /// The release's Slack thread (its first message).
    SlackThread { ts: String },
}

/// What a change does to a release's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status stays as it is (facts recorded beside it).
    Keep,
    /// Allowed from these statuses only; from any other, the change is not applied at all.
    To(ReleaseStatus, &'static [ReleaseStatus]),
}

impl ReleaseChange {
    /// The release's state machine, in one place.
    pub fn transition(&self) -> Transition {
        use ReleaseStatus::*;
        match self {
            Self::CommitVerified { .. } | Self::SlackThread { .. } => Transition::Keep,
            Self::Tagged { .. } => Transition::To(Tagged, &[Received]),
            // A build run again after it failed may succeed: the release deploys after all.
            Self::Built { success: true, .. } => {
                Transition::To(Built, &[Received, Tagged, BuildFailed])
            }
            Self::Built { success: false, .. } => {
                Transition::To(BuildFailed, &[Received, Tagged, Built, BuildFailed])
            }
            Self::DeployTriggered { .. } => Transition::To(DeployTriggered, &[Built]),
            Self::DeployStarted { .. } => Transition::To(DeployStarted, &[DeployTriggered]),
            Self::Deployed { .. } => Transition::To(Deployed, &[DeployTriggered, DeployStarted]),
            Self::DeployEnded { status, .. } => {
                Transition::To(*status, &[DeployTriggered, DeployStarted])
            }
            Self::Failed { .. } => Transition::To(Failed, &[Received, Tagged, Built]),
            Self::Reopened { at } => Transition::To(*at, &[Failed]),
        }
    }

    /// The status after this change from `from`, or `None` when the change does not apply there.
    pub fn apply(&self, from: ReleaseStatus) -> Option<ReleaseStatus> {
        match self.transition() {
            Transition::Keep => Some(from),
            Transition::To(to, allowed) => allowed.contains(&from).then_some(to),
        }
    }
}

/// A change to a deployment's record, allowed from the statuses [`Self::from`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentChange {
    /// A promotion's tag is made, and CircleCI is to build it before the trigger.
    AwaitingBuild,
    /// CircleCI built the promotion's tag: the trigger goes next.
    Built,
    /// Gate accepted the trigger at `at`, answering Echo's `event_id`.
    Triggered {
        event_id: Option<String>,
        at: Millis,
    },
    /// An execution started at `at` (Gate's time).
    Started { at: Millis },
    /// The deployment ended, `status` final, at `at`.
    Finished {
        status: DeploymentStatus,
        at: Millis,
        failed_stage: Option<String>,
        error: Option<String>,
    },
}

impl DeploymentChange {
    /// The status after the change.
    pub fn to(&self) -> DeploymentStatus {
        match self {
            Self::AwaitingBuild => DeploymentStatus::AwaitingBuild,
            Self::Built => DeploymentStatus::Built,
            Self::Triggered { .. } => DeploymentStatus::Triggered,
            Self::Started { .. } => DeploymentStatus::Started,
            Self::Finished { status, .. } => *status,
        }
    }

    /// The statuses the change applies from.
    pub fn from(&self) -> &'static [DeploymentStatus] {
        use DeploymentStatus::*;
        match self {
            Self::AwaitingBuild => &[Triggering],
            Self::Built => &[AwaitingBuild],
            Self::Triggered { .. } => &[Triggering, Built],
            Self::Started { .. } => &[Triggered],
            Self::Finished { .. } => &[Triggering, AwaitingBuild, Built, Triggered, Started],
        }
    }
}

/// An execution as last seen, to record (or update) under its deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSeen {
    pub deployment: DeploymentId,
    pub id: String,
    pub application: String,
    pub name: String,
    pub status: String,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub failed_stage: Option<String>,
}

/// A deployment about to be triggered: recorded first, so that its trigger and what follows it
/// have a record to hang on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    pub release: ReleaseId,
    pub project: ProjectName,
    pub env: EnvName,
    pub kind: DeploymentKind,
    pub tag: TagName,
    pub source: String,
    pub application: String,
    pub requested_by: Option<String>,
    pub requested_via: Option<Via>,
}

/// One line to add to a release's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub release: ReleaseId,
    pub step: &'static str,
    pub message: String,
}

/// A tag to record in Hoist's own list. A tag already known (same project and name) keeps its
/// first record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTag {
    pub project: ProjectName,
    pub env: EnvName,
    pub name: TagName,
    pub commit: CommitSha,
    pub version: Version,
    pub release: Option<ReleaseId>,
    pub origin: TagOrigin,
}

/// What a delivery led to, once a job has decided (a build event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub delivery: DeliveryId,
    pub outcome: String,
    pub release: Option<ReleaseId>,
}

/// Everything one decision writes, together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub releases: Vec<(ReleaseId, ReleaseChange)>,
    pub deployments: Vec<(DeploymentId, DeploymentChange)>,
    /// Deployments to record, still to be triggered. One that another request recorded first
    /// (the same promotion asked twice) makes the whole plan stale.
    pub new_deployments: Vec<NewDeployment>,
    pub executions: Vec<ExecutionSeen>,
    pub timeline: Vec<TimelineEntry>,
    pub jobs: Vec<Job>,
    pub tags: Vec<NewTag>,
    pub delivery: Option<DeliveryOutcome>,
}

impl Changes {
    pub fn release(mut self, id: ReleaseId, change: ReleaseChange) -> Self {
        self.releases.push((id, change));
        self
    }

    pub fn deployment(mut self, id: DeploymentId, change: DeploymentChange) -> Self {
        self.deployments.push((id, change));
        self
    }

    pub fn execution(mut self, seen: ExecutionSeen) -> Self {
        self.executions.push(seen);
        self
    }

    pub fn event(mut self, release: ReleaseId, step: &'static str, message: String) -> Self {
        self.timeline.push(TimelineEntry {
            release,
            step,
            message,
        });
        self
    }

    /// Adds everything `other` holds after what this one holds.
    pub fn extend(&mut self, other: Changes) {
        self.releases.extend(other.releases);
        self.deployments.extend(other.deployments);
        self.new_deployments.extend(other.new_deployments);
        self.executions.extend(other.executions);
        self.timeline.extend(other.timeline);
        self.jobs.extend(other.jobs);
        self.tags.extend(other.tags);
        if other.delivery.is_some() {
            self.delivery = other.delivery;
        }
    }

    pub fn job(mut self, job: Job) -> Self {
        self.jobs.push(job);
        self
    }

    /// Adds `job` when there is one (a notification when Slack is configured, say).
    pub fn maybe_job(mut self, job: impl IntoIterator<Item = Job>) -> Self {
        self.jobs.extend(job);
        self
    }

    pub fn tag(mut self, tag: NewTag) -> Self {
        self.tags.push(tag);
        self
    }

    pub fn delivery(
        mut self,
        delivery: DeliveryId,
        outcome: String,
        release: Option<ReleaseId>,
    ) -> Self {
        self.delivery = Some(DeliveryOutcome {
            delivery,
            outcome,
            release,
        });
        self
    }

    /// [`Changes::delivery`] when there is a delivery (a build found through CircleCI's API,
    /// not its webhook, has none).
    pub fn maybe_delivery(
        self,
        delivery: Option<DeliveryId>,
        outcome: String,
        release: Option<ReleaseId>,
    ) -> Self {
        match delivery {
            Some(d) => self.delivery(d, outcome, release),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReleaseStatus::*;

    fn tagged() -> ReleaseChange {
        ReleaseChange::Tagged {
            tag: TagName::parse("stg1.0.0").unwrap(),
            version: Version::new(1, 0, 0),
            reused: false,
        }
    }

    fn built(success: bool) -> ReleaseChange {
        ReleaseChange::Built {
            status: if success { "success" } else { "failed" }.into(),
            url: None,
            success,
        }
    }

    #[test]
    fn the_release_state_machine() {
        let triggered = ReleaseChange::DeployTriggered { event_id: None };
        let failed = ReleaseChange::Failed {
            error: "boom".into(),
        };
        let reopen_tag = ReleaseChange::Reopened { at: Received };
        let started = ReleaseChange::DeployStarted { at: 1 };
        let deployed = ReleaseChange::Deployed { at: 2 };
        let not_started = ReleaseChange::DeployEnded {
            status: DeployNotStarted,
            error: "no pipeline".into(),
        };
        // (change, from, to): `None` means the change does not apply from there.
        let table: &[(&ReleaseChange, ReleaseStatus, Option<ReleaseStatus>)] = &[
            (&tagged(), Received, Some(Tagged)),
            (&tagged(), Tagged, None),
            (&tagged(), Failed, None),
            (&built(true), Tagged, Some(Built)),
            (&built(true), Received, Some(Built)),
            (&built(true), DeployTriggered, None),
            (&built(true), BuildFailed, Some(Built)),
            (&built(true), Failed, None),
            (&built(false), Tagged, Some(BuildFailed)),
            (&built(false), Built, Some(BuildFailed)),
            (&built(false), DeployTriggered, None),
            (&triggered, Built, Some(DeployTriggered)),
            (&triggered, Tagged, None),
            (&triggered, DeployTriggered, None),
            (&started, DeployTriggered, Some(DeployStarted)),
            (&started, DeployStarted, None),
            (&deployed, DeployStarted, Some(Deployed)),
            (&deployed, DeployTriggered, Some(Deployed)),
            (&deployed, Built, None),
            (&deployed, Deployed, None),
            (&not_started, DeployTriggered, Some(DeployNotStarted)),
            (&not_started, Deployed, None),
            (&failed, DeployTriggered, None),
            (&failed, Received, Some(Failed)),
            (&failed, Built, Some(Failed)),
            (&failed, DeployTriggered, None),
            (&failed, BuildFailed, None),
            (&reopen_tag, Failed, Some(Received)),
            (&reopen_tag, Tagged, None),
        ];
        for (change, from, to) in table {
            assert_eq!(change.apply(*from), *to, "{change:?} from {from}");
        }
        for status in ReleaseStatus::ALL {
            let thread = ReleaseChange::SlackThread { ts: "1.2".into() };
            assert_eq!(
                thread.apply(*status),
                Some(*status),
                "facts keep the status"
            );
        }
    }

    #[test]
    fn a_final_release_moves_on_only_when_reopened_or_rebuilt() {
        for from in ReleaseStatus::ALL.iter().filter(|s| s.is_terminal()) {
            for change in [tagged(), ReleaseChange::DeployTriggered { event_id: None }] {
                assert_eq!(change.apply(*from), None, "{change:?} from {from}");
            }
            let rebuilt = built(true).apply(*from);
            assert_eq!(
                rebuilt.is_some(),
                *from == BuildFailed,
                "rebuilt from {from}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use ReleaseStatus::*;
    use proptest::prelude::*;

    fn change() -> impl Strategy<Value = ReleaseChange> {
        prop_oneof![
            Just(ReleaseChange::Tagged {
                tag: TagName::parse("stg1.0.0").unwrap(),
                version: Version::new(1, 0, 0),
                reused: false
            }),
            any::<bool>().prop_map(|success| ReleaseChange::Built {
                status: String::new(),
                url: None,
                success
            }),
            Just(ReleaseChange::DeployTriggered { event_id: None }),
            Just(ReleaseChange::Failed {
                error: String::new()
            }),
            Just(ReleaseChange::CommitVerified {
                full: CommitSha::parse(&"a".repeat(40)).unwrap(),
                committed_at: None,
            }),
        ]
    }

    proptest! {
        /// Whatever happens to a release, in any order, it is triggered at most once, never after
        /// it failed, only after it was built, and confirmed deployed only after its trigger.
        #[test]
        fn a_release_deploys_once_and_only_once_built(changes in proptest::collection::vec(change(), 0..12)) {
            let mut status = Received;
            let mut deploys = 0;
            let mut built = false;
            let mut triggered = false;
            for c in &changes {
                let Some(next) = c.apply(status) else { continue };
                if next == Built { built = true; }
                if next == DeployTriggered { triggered = true; }
                if matches!(next, Deployed | DeployStarted | DeployFailed) {
                    prop_assert!(triggered, "{next} before a trigger");
                }
                if next == DeployTriggered && status != DeployTriggered {
                    deploys += 1;
                    prop_assert!(built, "deployed without a build");
                }
                prop_assert!(status != Failed || next == Failed, "left Failed without a reopen");
                status = next;
            }
            prop_assert!(deploys <= 1);
        }
    }
}
