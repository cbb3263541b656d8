//! Plans: what a decision asks the store to write, as data. The store carries a plan out in one
//! transaction (with the job that made it, if any); it decides nothing itself.

use crate::domain::{
    CommitSha, DeliveryId, EnvName, ProjectName, ReleaseId, ReleaseStatus, TagName, TagOrigin,
    Version,
};

use super::job::Job;

/// A change to a release's record. Each moves the release's status as [`Self::transition`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseChange {
    /// Bitbucket confirmed the commit and gave its full hash.
    CommitVerified { full: CommitSha },
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

    pub fn event(mut self, release: ReleaseId, step: &'static str, message: String) -> Self {
        self.timeline.push(TimelineEntry {
            release,
            step,
            message,
        });
        self
    }

    pub fn job(mut self, job: Job) -> Self {
        self.jobs.push(job);
        self
    }

    /// Adds `job` when there is one (a notification when Slack is configured, say).
    pub fn maybe_job(mut self, job: Option<Job>) -> Self {
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
                full: CommitSha::parse(&"a".repeat(40)).unwrap()
            }),
        ]
    }

    proptest! {
        /// Whatever happens to a release, in any order, it is deployed at most once, never after
        /// it failed, and only after it was built.
        #[test]
        fn a_release_deploys_once_and_only_once_built(changes in proptest::collection::vec(change(), 0..12)) {
            let mut status = Received;
            let mut deploys = 0;
            let mut built = false;
            for c in &changes {
                let Some(next) = c.apply(status) else { continue };
                if next == Built { built = true; }
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
