//! Build -> deploy (SPEC 3.2): which release a finished build belongs to, and what follows.
//!
//! The tag of a build is, in order: the tag the payload names; Hoist's own record of a tag on the
//! built commit; the repository's tags of each environment's family (an exact full-hash match, or
//! a short hash only where it is an unambiguous prefix). No tag: nothing is deployed.

use crate::config::{Config, Project};
use crate::domain::{
    CommitSha, DeliveryId, Deployment, EnvName, KnownTag, NewRelease, Release, ReleaseId,
    ReleaseStatus, RepoTag, TagName, TagOrigin, Version,
};

use super::job::{Job, NotifyEvent};
use super::notify_job;
use super::plan::{Changes, NewTag, ReleaseChange};

/// Whether a CircleCI status means the build succeeded; `None` for statuses that are not final.
pub fn build_outcome(status: &str) -> Option<bool> {
    match status {
        "success" => Some(true),
        "failed" | "error" | "canceled" | "unauthorized" | "failing" => Some(false),
        _ => None,
    }
}

/// The release tag a build was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub env: EnvName,
    pub tag: TagName,
    pub version: Version,
    /// The full hash the tag is on.
    pub commit: CommitSha,
    pub origin: TagOrigin,
}

/// The environment and version of a tag the payload names, if it is of one of the project's
/// families.
pub fn payload_tag(project: &Project, tag: &str) -> Option<(EnvName, TagName, Version)> {
    project.environments.values().find_map(|env| {
        let version = env.scheme.parse_tag(tag)?;
        Some((env.name.clone(), TagName::parse(tag).ok()?, version))
    })
}

/// The highest tag Hoist recorded for `commit` (full hash or prefix) in the first environment
/// (in name order) that has one. `known` holds Hoist's tags for the commit, every environment.
pub fn from_known(project: &Project, known: &[KnownTag]) -> Option<Found> {
    project.environments.values().find_map(|env| {
        known
            .iter()
            .filter(|t| t.env == env.name)
            .filter_map(|t| env.scheme.parse_tag(t.name.as_str()).map(|v| (v, t)))
            .max_by_key(|(v, _)| *v)
            .map(|(version, t)| Found {
                env: env.name.clone(),
                tag: t.name.clone(),
                version,
                commit: t.commit.clone(),
                origin: TagOrigin::Hoist,
            })
    })
}

/// What one environment's listing says about `commit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    Found(Found),
    None,
    /// A short hash that is a prefix of several tagged commits: no guess is made.
    Ambiguous,
}

/// The highest tag of environment `env`'s family on `commit` in the repository's listing.
pub fn from_listing(
    project: &Project,
    env: &EnvName,
    commit: &CommitSha,
    listed: &[RepoTag],
) -> Listed {
    let Some(e) = project.environments.get(env) else {
        return Listed::None;
    };
    let matching: Vec<(Version, &RepoTag)> = listed
        .iter()
        .filter(|t| {
            if commit.is_full() {
                t.commit == commit.as_str()
            } else {
                t.commit.starts_with(commit.as_str())
            }
        })
        .filter_map(|t| e.scheme.parse_tag(&t.name).map(|v| (v, t)))
        .collect();
    let hashes: std::collections::HashSet<&str> =
        matching.iter().map(|(_, t)| t.commit.as_str()).collect();
    if hashes.len() > 1 {
        return Listed::Ambiguous;
    }
    let Some((version, t)) = matching.into_iter().max_by_key(|(v, _)| *v) else {
        return Listed::None;
    };
    match (TagName::parse(&t.name), CommitSha::parse(&t.commit)) {
        (Ok(tag), Ok(commit)) => Listed::Found(Found {
            env: env.clone(),
            tag,
            version,
            commit,
            origin: TagOrigin::Scm,
        }),
        _ => Listed::None,
    }
}

/// No release tag for the built commit: recorded on the delivery, nothing deployed.
pub fn no_tag(delivery: DeliveryId, what: &str) -> Changes {
    Changes::default().delivery(
        delivery,
        format!("no release tag for commit {what}: nothing deployed"),
        None,
    )
}

/// A tag Hoist learnt of from a build (not its own record) joins its list.
pub fn learnt_tag(project: &Project, found: &Found) -> Option<NewTag> {
    (found.origin != TagOrigin::Hoist).then(|| NewTag {
        project: project.name.clone(),
        env: found.env.clone(),
        name: found.tag.clone(),
        commit: found.commit.clone(),
        version: found.version,
        release: None,
        origin: found.origin,
    })
}

/// A tag made by hand, with no ticket, still deploys: the release its build starts.
pub fn untracked_release(project: &Project, found: &Found) -> NewRelease {
    NewRelease {
        project: project.name.clone(),
        env: found.env.clone(),
        repo: project.repo.clone(),
        commit: found.commit.clone(),
        issue: None,
    }
}

/// What makes the release of [`untracked_release`] (id `id`) tagged, as if Hoist had found its tag.
pub fn adopted(id: ReleaseId, found: &Found) -> Changes {
    Changes::default()
        .release(
            id,
            ReleaseChange::CommitVerified {
                full: found.commit.clone(),
                // A build's payload carries no commit date; the release keeps none.
                committed_at: None,
            },
        )
        .release(
            id,
            ReleaseChange::Tagged {
                tag: found.tag.clone(),
                version: found.version,
                reused: true,
            },
        )
        .event(
            id,
            "tagged",
            format!(
                "tag {} was made outside Hoist; release started by its build",
                found.tag
            ),
        )
}

/// A finished build of release `r`'s tag.
#[derive(Debug, Clone)]
pub struct Build<'a> {
    /// The webhook's delivery; `None` for a build found through CircleCI's API (SPEC 16).
    pub delivery: Option<DeliveryId>,
    pub status: &'a str,
    pub success: bool,
    pub url: Option<&'a str>,
    pub tag: &'a TagName,
    pub now: i64,
    /// The release's promotion that made this tag and waits for its build (`build = true`).
    pub awaiting: Option<&'a Deployment>,
}

/// What a finished build does to its release: a successful one queues the deploy, a failed one
/// ends the release; a release already past that point, or failed, is left as it is.
pub fn decide(config: &Config, r: &Release, b: &Build) -> Changes {
    if r.tag.as_ref().is_some_and(|t| t != b.tag) {
        if let Some(d) = b.awaiting.filter(|d| {
            d.tag == *b.tag && d.status == crate::domain::DeploymentStatus::AwaitingBuild
        }) {
            return super::promote::built(config, r, d, b.delivery, b.status, b.success, b.now);
        }
        // The release's tag in a further environment (a promotion's), built by CircleCI too.
        return Changes::default().maybe_delivery(
            b.delivery,
            format!(
                "build {} of {}, the release's tag in a further environment: nothing to do",
                b.status, b.tag
            ),
            Some(r.id),
        );
    }
    let open = match r.status {
        ReleaseStatus::Received | ReleaseStatus::Tagged | ReleaseStatus::BuildFailed => true,
        ReleaseStatus::Built => !b.success,
        _ => false,
    };
    if !open && r.status != ReleaseStatus::Failed {
        return Changes::default().maybe_delivery(
            b.delivery,
            format!("release {} already {}: nothing more to do", r.id, r.status),
            Some(r.id),
        );
    }
    if r.status == ReleaseStatus::Failed {
        return Changes::default().maybe_delivery(
            b.delivery,
            format!("release {} had failed: nothing deployed", r.id),
            Some(r.id),
        );
    }
    let step_ms = b.now - r.tagged_at.unwrap_or(r.received_at);
    let changes = Changes::default()
        .release(
            r.id,
            ReleaseChange::Built {
                status: b.status.to_string(),
                url: b.url.map(str::to_string),
                success: b.success,
            },
        )
        .maybe_delivery(
            b.delivery,
            format!("build {} for {}", b.status, b.tag),
            Some(r.id),
        );
    if b.success {
        changes
            .event(
                r.id,
                "built",
                format!("CircleCI build of {} succeeded", b.tag),
            )
            .job(Job::deploy(r.id))
            .maybe_job(notify_job(
                config,
                r.id,
                NotifyEvent::BuildSucceeded { step_ms },
            ))
    } else {
        changes
            .event(
                r.id,
                "build_failed",
                format!("CircleCI build of {} {}: nothing deployed", b.tag, b.status),
            )
            .maybe_job(notify_job(
                config,
                r.id,
                NotifyEvent::BuildFailed {
                    status: b.status.to_string(),
                },
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_statuses() {
        let table = [
            ("success", Some(true)),
            ("failed", Some(false)),
            ("error", Some(false)),
            ("canceled", Some(false)),
            ("unauthorized", Some(false)),
            ("failing", Some(false)),
            ("running", None),
            ("on_hold", None),
            ("", None),
        ];
        for (status, outcome) in table {
            assert_eq!(build_outcome(status), outcome, "{status}");
        }
    }
}

#[cfg(test)]
mod decisions {
    use super::*;
    use crate::core::testing::{config, release};
    use ReleaseStatus::*;

    fn build(success: bool, tag: &TagName) -> Build<'_> {
        Build {
            delivery: Some(DeliveryId(7)),
            status: if success { "success" } else { "failed" },
            success,
            url: Some("https://circleci.example/1"),
            tag,
            now: 2_000,
            awaiting: None,
        }
    }

    #[test]
    fn what_a_finished_build_does() {
        let tag = TagName::parse("stg1.4.0").unwrap();
        let c = config(true);
        // (release status, build succeeded?, status written?, jobs queued, outcome's start)
        let table = [
            (
                Tagged,
                true,
                Some(Built),
                vec!["deploy", "notify"],
                "build success for stg1.4.0",
            ),
            (
                Tagged,
                false,
                Some(BuildFailed),
                vec!["notify"],
                "build failed for stg1.4.0",
            ),
            (
                BuildFailed,
                true,
                Some(Built),
                vec!["deploy", "notify"],
                "build success",
            ),
            (Built, true, None, vec![], "release 1 already built"),
            (
                Built,
                false,
                Some(BuildFailed),
                vec!["notify"],
                "build failed",
            ),
            (
                DeployTriggered,
                true,
                None,
                vec![],
                "release 1 already deploy_triggered",
            ),
            (
                DeployTriggered,
                false,
                None,
                vec![],
                "release 1 already deploy_triggered",
            ),
            (
                Failed,
                true,
                None,
                vec![],
                "release 1 had failed: nothing deployed",
            ),
        ];
        for (status, success, written, jobs, outcome) in table {
            let mut r = release();
            r.status = status;
            let changes = decide(&c, &r, &build(success, &tag));
            let wrote = changes
                .releases
                .first()
                .and_then(|(_, ch)| ch.apply(status));
            assert_eq!(wrote, written, "{status} {success}");
            let kinds: Vec<_> = changes.jobs.iter().map(|j| j.spec.kind()).collect();
            assert_eq!(kinds, jobs, "{status} {success}");
            let d = changes.delivery.unwrap();
            assert!(d.outcome.starts_with(outcome), "{}", d.outcome);
            assert_eq!(d.release, Some(r.id));
        }
        let quiet = decide(&config(false), &release(), &build(true, &tag));
        assert_eq!(
            quiet.jobs,
            [Job::deploy(ReleaseId(1))],
            "no Slack, no message"
        );
    }

    #[test]
    fn a_tag_is_found_in_the_listing_only_on_its_commit() {
        let c = config(false);
        let p = &c.projects[0];
        let stg = EnvName::parse("stg").unwrap();
        let a = "a".repeat(40);
        let listed = vec![
            RepoTag {
                name: "stg1.0.0".into(),
                commit: a.clone(),
            },
            RepoTag {
                name: "stg1.0.1".into(),
                commit: a.clone(),
            },
            RepoTag {
                name: "stg2.0.0".into(),
                commit: format!("ab{}", "0".repeat(38)),
            },
        ];
        let full = CommitSha::parse(&a).unwrap();
        let Listed::Found(f) = from_listing(p, &stg, &full, &listed) else {
            panic!("the full hash has tags")
        };
        assert_eq!((f.tag.as_str(), f.origin), ("stg1.0.1", TagOrigin::Scm));
        let short = CommitSha::parse("aaaaaaa").unwrap();
        assert!(matches!(
            from_listing(p, &stg, &short, &listed),
            Listed::Found(_)
        ));
        let ambiguous = CommitSha::parse(&format!("a{}", "0".repeat(6))).unwrap();
        assert_eq!(from_listing(p, &stg, &ambiguous, &listed), Listed::None);
        let both = CommitSha::parse("abcdef0").unwrap();
        let mixed = vec![
            RepoTag {
                name: "stg1.0.0".into(),
                commit: format!("abcdef0{}", "1".repeat(33)),
            },
            RepoTag {
                name: "stg1.0.1".into(),
                commit: format!("abcdef0{}", "2".repeat(33)),
            },
        ];
        assert_eq!(from_listing(p, &stg, &both, &mixed), Listed::Ambiguous);
        assert_eq!(
            payload_tag(p, "qa0.2.0").map(|(e, t, v)| (e.to_string(), t.to_string(), v)),
            Some(("qa".into(), "qa0.2.0".into(), Version::new(0, 2, 0)))
        );
        assert_eq!(payload_tag(p, "release-7"), None);
    }
}
