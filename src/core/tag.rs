//! Ticket -> tag (SPEC 3.1): which tag a release gets, and what is recorded once it has it.
//!
//! The worker's tag job asks the repository and the store; the decisions are here: a commit
//! that already carries a tag of its environment's family keeps it (Hoist's own record first, then
//! the repository's listing), else the next version after the highest of every tag of the family.

use std::collections::HashSet;

use crate::config::{Config, Environment};
use crate::domain::{
    Allocation, CommitSha, FoundCommit, KnownTag, Release, ReleaseStatus, RepoTag, TagName,
    TagOrigin, Version,
};

use super::job::NotifyEvent;
use super::notify_job;
use super::plan::{Changes, NewTag, ReleaseChange};

/// How many names to try when others keep taking the one Hoist picked.
pub const MAX_CONFLICTS: usize = 20;

/// Whether an earlier attempt already tagged the release.
pub fn already_tagged(r: &Release) -> bool {
    r.status != ReleaseStatus::Received || r.tag.is_some()
}

/// The commit the ticket named does not exist: the release fails, and Slack says so.
pub fn commit_missing(config: &Config, r: &Release) -> Changes {
    let msg = format!(
        "commit {} not found in {}/{}",
        r.commit.short(),
        config.bitbucket.workspace,
        r.repo
    );
    Changes::default()
        .release(r.id, ReleaseChange::Failed { error: msg.clone() })
        .event(r.id, "failed", msg.clone())
        .maybe_job(notify_job(
            config,
            r.id,
            NotifyEvent::Failed {
                step: "commit check".into(),
                error: msg,
            },
        ))
}

/// The commit exists, as `found` (its full hash and date). Nothing when an earlier attempt
/// recorded it.
pub fn commit_verified(config: &Config, r: &Release, found: &FoundCommit) -> Option<Changes> {
    if r.commit_verified_at.is_some() {
        return None;
    }
    let full = &found.full;
    Some(
        Changes::default()
            .release(
                r.id,
                ReleaseChange::CommitVerified {
                    full: full.clone(),
                    committed_at: found.committed_at,
                },
            )
            .event(
                r.id,
                "commit_verified",
                format!(
                    "commit {} exists in {}/{}",
                    full.short(),
                    config.bitbucket.workspace,
                    r.repo
                ),
            ),
    )
}

/// A tag of the family already on the commit, which the release reuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    pub name: TagName,
    pub version: Version,
    pub origin: TagOrigin,
}

/// The highest tag of the family that Hoist recorded on commit `full`.
pub fn own_tag(env: &Environment, full: &CommitSha, known: &[KnownTag]) -> Option<Reuse> {
    known
        .iter()
        .filter(|t| &t.commit == full)
        .filter_map(|t| env.scheme.parse_tag(t.name.as_str()).map(|v| (v, t)))
        .max_by_key(|(v, _)| *v)
        .map(|(version, t)| Reuse {
            name: t.name.clone(),
            version,
            origin: TagOrigin::Hoist,
        })
}

/// The highest tag of the family that the repository lists on commit `full`.
pub fn listed_tag(env: &Environment, full: &CommitSha, listed: &[RepoTag]) -> Option<Reuse> {
    let (version, name) = env.scheme.highest(
        listed
            .iter()
            .filter(|t| t.commit == full.as_str())
            .map(|t| t.name.as_str()),
    )?;
    Some(Reuse {
        name: TagName::parse(name).ok()?,
        version,
        origin: TagOrigin::Scm,
    })
}

/// Whether the first page of the family's listing (Bitbucket's natural `-name` order) settles the
/// next version: it does when it holds a member of the family, or is the whole listing. Members of
/// one family differ only in their numbers, so that page holds the family's highest versions.
pub fn first_page_suffices(env: &Environment, first: &[RepoTag], more: bool) -> bool {
    !more
        || first
            .iter()
            .any(|t| env.scheme.parse_tag(&t.name).is_some())
}

/// The tags allocation reads so far, and the versions found taken while creating.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    names: Vec<String>,
    taken: HashSet<Version>,
}

impl Allocator {
    /// Starts from what the repository lists and what Hoist recorded (which a listing might not
    /// show yet).
    pub fn new(listed: &[RepoTag], known: &[KnownTag]) -> Self {
        let mut names: Vec<String> = listed.iter().map(|t| t.name.clone()).collect();
        names.extend(known.iter().map(|t| t.name.to_string()));
        Self {
            names,
            taken: HashSet::new(),
        }
    }

    /// The next tag to try: the highest member bumped, skipping versions found taken.
    pub fn next(&self, env: &Environment) -> Allocation {
        env.scheme.next(
            self.names.iter().map(String::as_str),
            env.initial,
            &self.taken,
        )
    }

    /// The tag `a` turned out to exist on another commit: the next try skips it.
    pub fn taken(&mut self, a: &Allocation) {
        self.taken.insert(a.version);
        self.names.push(a.tag.to_string());
    }
}

/// What is recorded once the release has its tag: the tag in Hoist's list, the release tagged,
/// a timeline line, and a Slack message.
pub fn tagged(
    config: &Config,
    r: &Release,
    full: &CommitSha,
    tag: &Reuse,
    reused: bool,
    step_ms: i64,
    now: crate::domain::Millis,
) -> Changes {
    let msg = if reused {
        format!(
            "commit {} already carries {}: reused, no new version",
            full.short(),
            tag.name
        )
    } else {
        format!("created tag {} on {}", tag.name, full.short())
    };
    let event = if reused {
        NotifyEvent::TagReused { step_ms }
    } else {
        NotifyEvent::Tagged { step_ms }
    };
    Changes::default()
        .tag(NewTag {
            project: r.project.clone(),
            env: r.env.clone(),
            name: tag.name.clone(),
            commit: full.clone(),
            version: tag.version,
            release: Some(r.id),
            origin: tag.origin,
        })
        .release(
            r.id,
            ReleaseChange::Tagged {
                tag: tag.name.clone(),
                version: tag.version,
                reused,
            },
        )
        .event(r.id, "tagged", msg)
        .maybe_job(notify_job(config, r.id, event))
        .maybe_job(super::reconcile::first_look(config, r.id, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Bump, EnvName, ProjectName, TagScheme};

    fn env() -> Environment {
        Environment {
            name: EnvName::parse("stg").unwrap(),
            scheme: TagScheme::new("stg{major}.{minor}.{patch}", Bump::Patch, Some(99)).unwrap(),
            initial: Version::new(0, 0, 1),
            spinnaker_source: None,
            spinnaker_application: "*".into(),
            gate_url: None,
            promotion: None,
            jira_transition: None,
            parameters: Default::default(),
        }
    }

    fn sha(c: char) -> CommitSha {
        CommitSha::parse(&c.to_string().repeat(40)).unwrap()
    }

    fn listed(name: &str, c: char) -> RepoTag {
        RepoTag {
            name: name.into(),
            commit: c.to_string().repeat(40),
        }
    }

    fn known(name: &str, c: char) -> KnownTag {
        KnownTag {
            project: ProjectName::parse("api").unwrap(),
            env: EnvName::parse("stg").unwrap(),
            name: TagName::parse(name).unwrap(),
            commit: sha(c),
            release: None,
            origin: TagOrigin::Hoist,
        }
    }

    #[test]
    fn a_commit_keeps_its_highest_family_tag() {
        let e = env();
        let repo = [
            listed("stg1.0.0", 'a'),
            listed("stg1.0.2", 'a'),
            listed("stgfoo", 'a'),
            listed("stg1.0.9", 'b'),
        ];
        let found = listed_tag(&e, &sha('a'), &repo).unwrap();
        assert_eq!(
            (found.name.as_str(), found.origin),
            ("stg1.0.2", TagOrigin::Scm)
        );
        assert_eq!(listed_tag(&e, &sha('c'), &repo), None);

        let mine = [known("stg2.0.0", 'a'), known("stg2.0.1", 'b')];
        let own = own_tag(&e, &sha('a'), &mine).unwrap();
        assert_eq!(
            (own.name.as_str(), own.origin),
            ("stg2.0.0", TagOrigin::Hoist)
        );
        assert_eq!(own_tag(&e, &sha('c'), &mine), None);
    }

    #[test]
    fn allocation_counts_listed_and_recorded_tags_and_skips_taken_ones() {
        let e = env();
        let mut a = Allocator::new(&[listed("stg1.3.98", 'a')], &[known("stg1.3.99", 'b')]);
        let first = a.next(&e);
        assert_eq!(first.tag.as_str(), "stg1.4.0", "rollover after 99");
        a.taken(&first);
        assert_eq!(a.next(&e).tag.as_str(), "stg1.4.1");
        assert_eq!(Allocator::default().next(&e).tag.as_str(), "stg0.0.1");
    }

    #[test]
    fn the_first_page_suffices_when_it_holds_a_member() {
        let e = env();
        let other = [listed("zzz-other", 'a')];
        let member = [listed("zzz-other", 'a'), listed("stg1.0.0", 'b')];
        let table = [
            (&other[..], true, false),
            (&other[..], false, true),
            (&member[..], true, true),
            (&[][..], false, true),
        ];
        for (page, more, suffices) in table {
            assert_eq!(
                first_page_suffices(&e, page, more),
                suffices,
                "{page:?} {more}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::{Bump, EnvName, ProjectName, TagScheme};
    use proptest::prelude::*;

    proptest! {
        /// Whatever the repository lists and Hoist recorded, and however many names others take
        /// meanwhile, the next tag is above every member of the family and never one found taken.
        #[test]
        fn allocation_is_above_every_member_and_skips_taken(
            listed in proptest::collection::vec((0u64..5, 0u64..120, 0u64..120), 0..30),
            known in proptest::collection::vec((0u64..5, 0u64..120, 0u64..120), 0..10),
            conflicts in 0usize..5,
        ) {
            let env = Environment {
                name: EnvName::parse("stg").unwrap(),
                scheme: TagScheme::new("stg{major}.{minor}.{patch}", Bump::Patch, Some(99)).unwrap(),
                initial: Version::new(0, 0, 1),
                spinnaker_source: None,
                spinnaker_application: "*".into(),
                gate_url: None,
                promotion: None,
                jira_transition: None,
                parameters: Default::default(),
            };
            let listed: Vec<RepoTag> = listed.iter().map(|&(a, b, c)| RepoTag {
                name: env.scheme.format(Version::new(a, b, c)).to_string(),
                commit: "f".repeat(40),
            }).collect();
            let known: Vec<KnownTag> = known.iter().map(|&(a, b, c)| KnownTag {
                project: ProjectName::parse("api").unwrap(),
                env: env.name.clone(),
                name: env.scheme.format(Version::new(a, b, c)),
                commit: CommitSha::parse(&"e".repeat(40)).unwrap(),
                release: None,
                origin: TagOrigin::Hoist,
            }).collect();
            let mut allocator = Allocator::new(&listed, &known);
            let mut taken = Vec::new();
            for _ in 0..conflicts {
                let a = allocator.next(&env);
                taken.push(a.version);
                allocator.taken(&a);
            }
            let a = allocator.next(&env);
            for t in listed.iter().map(|t| t.name.as_str()).chain(known.iter().map(|t| t.name.as_str())) {
                prop_assert!(a.version > env.scheme.parse_tag(t).unwrap());
            }
            prop_assert!(!taken.contains(&a.version));
        }
    }
}
