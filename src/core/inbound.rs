//! Inbound deliveries: given a verified, parsed event and the configuration, what to record and
//! what it starts. The HTTP layer answers from the plan; the store writes it in one transaction.

use crate::config::{BuildName, Config};
use crate::domain::{DeliveryId, NewDelivery, NewRelease, ReleaseId, TagName, TagOrigin};
use crate::sources::bitbucket::Push;
use crate::sources::circleci::{BuildEvent, BuildKind};
use crate::sources::jira::{JiraEvent, StatusChange};
use crate::sources::quote;

use super::build::build_outcome;
use super::job::Job;
use super::plan::NewTag;

/// A delivery to record, and what it starts.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub delivery: NewDelivery,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Recorded only; `outcome` says why nothing follows.
    Record { outcome: String },
    /// A ticket: starts a release, or joins the release already open for the same project,
    /// environment and commit. The release's first job makes its tag.
    StartRelease(NewRelease),
    /// A finished build: a job finds its release and records the outcome.
    HandleBuild { outcome: String },
    /// Tags someone pushed by hand, of a project's families.
    RecordTags { outcome: String, tags: Vec<NewTag> },
    /// A Jira issue moved to a status that promotes releases: a job finds the issue's release
    /// and promotes it.
    PromoteOnStatus {
        outcome: String,
        issue: String,
        status: String,
        by: String,
    },
}

/// The outcome recorded on a ticket's delivery that starts a release.
pub const RELEASE_STARTED: &str = "release started";

impl Action {
    fn ignored(reason: &str) -> Self {
        Self::Record {
            outcome: format!("ignored: {reason}"),
        }
    }

    /// Why the delivery was ignored, when it was.
    pub fn ignored_reason(&self) -> Option<&str> {
        match self {
            Self::Record { outcome } => Some(outcome.strip_prefix("ignored: ").unwrap_or(outcome)),
            _ => None,
        }
    }

    /// The job a recorded delivery starts: a new release's tag job, a build's handling.
    pub fn first_job(&self, delivery: DeliveryId, release: Option<ReleaseId>) -> Option<Job> {
        match (self, release) {
            (Self::StartRelease(r), Some(id)) => Some(Job::create_tag(id, &r.project, &r.env)),
            (Self::HandleBuild { .. }, _) => Some(Job::handle_build(delivery)),
            (
                Self::PromoteOnStatus {
                    issue, status, by, ..
                },
                _,
            ) => Some(Job::promote_on_status(
                issue,
                status,
                by,
                delivery.to_string(),
            )),
            _ => None,
        }
    }
}

/// The first line of a new release's timeline.
pub fn started_message(r: &NewRelease) -> String {
    format!(
        "ticket {} asks for {} on {} ({})",
        r.issue.as_deref().unwrap_or("(none)"),
        r.commit,
        r.project,
        r.env
    )
}

/// The timeline line of another ticket for a commit whose release is open.
pub fn joined_message(r: &NewRelease) -> String {
    let issue = r
        .issue
        .as_deref()
        .map(|i| format!(" (issue {i})"))
        .unwrap_or_default();
    format!("another request for the same commit joined this release{issue}")
}

/// The outcome of a delivery that joins release `id`, open for its commit.
pub fn joined_outcome(id: ReleaseId) -> String {
    format!("joined open release {id}")
}

/// A request Hoist understood but cannot act on: the answer says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No project has the repository the request names (404).
    UnknownProject(String),
    /// The project has no such environment, or none was named and there is no default (422).
    UnknownEnvironment(String),
}

/// An issue moved to another status: a promotion when an environment promotes on that status.
fn status_changed(c: StatusChange, config: &Config) -> Action {
    let envs: Vec<String> = config
        .projects
        .iter()
        .flat_map(|p| p.environments.values().map(move |e| (p, e)))
        .filter(|(_, e)| {
            e.promotion
                .as_ref()
                .and_then(|p| p.on_status.as_deref())
                .is_some_and(|s| s.eq_ignore_ascii_case(&c.status))
        })
        .map(|(p, e)| format!("{}/{}", p.name, e.name))
        .collect();
    if envs.is_empty() {
        return Action::ignored(&format!(
            "no environment promotes on status {}",
            quote(&c.status)
        ));
    }
    Action::PromoteOnStatus {
        outcome: format!(
            "{} moved {} to {}: promotes into {}",
            c.by,
            c.issue,
            quote(&c.status),
            envs.join(", ")
        ),
        issue: c.issue,
        status: c.status,
        by: c.by,
    }
}

/// A Jira delivery: a ticket assignment starts a release; other updates are recorded, ignored.
pub fn jira(event: JiraEvent, config: &Config) -> Result<Action, Refusal> {
    let a = match event {
        JiraEvent::Ignored { reason, .. } => return Ok(Action::ignored(&reason)),
        JiraEvent::StatusChanged(c) => return Ok(status_changed(c, config)),
        JiraEvent::Assignment(a) => a,
    };
    let project = config.project_by_repo(&a.repo).ok_or_else(|| {
        Refusal::UnknownProject(format!(
            "no project has repo or name `{}`: add a [[projects]] entry or fix the ticket's repository",
            quote(&a.repo)
        ))
    })?;
    let env = project
        .env(a.env.as_deref())
        .map_err(Refusal::UnknownEnvironment)?;
    Ok(Action::StartRelease(NewRelease {
        project: project.name.clone(),
        env: env.name.clone(),
        repo: project.repo.clone(),
        commit: a.commit,
        issue: a.issue,
    }))
}

/// A CircleCI delivery: the configured build of a project, finished, is handled by a job; any
/// other event is recorded with the reason it was ignored.
pub fn build(ev: &BuildEvent, config: &Config) -> Action {
    match match_build(ev, config) {
        Ok(project) => Action::HandleBuild {
            outcome: format!("build of {project} queued"),
        },
        Err(reason) => Action::ignored(&reason),
    }
}

/// Which project a build belongs to, or why it is ignored.
fn match_build(ev: &BuildEvent, config: &Config) -> Result<String, String> {
    if ev.kind == BuildKind::Other {
        return Err("not a job-completed or workflow-completed event".into());
    }
    let project = config
        .project_by_circleci(ev.project_slug.as_deref(), ev.project_name.as_deref())
        .ok_or_else(|| {
            format!(
                "no project has circleci_project `{}`",
                quote(
                    ev.project_slug
                        .as_deref()
                        .or(ev.project_name.as_deref())
                        .unwrap_or("(none)")
                )
            )
        })?;
    let name = ev.name.as_deref().unwrap_or("");
    let matches = match (&project.build, ev.kind) {
        (BuildName::Job(job), BuildKind::Job) => job == name,
        (BuildName::Workflow(wf), BuildKind::Workflow) => wf == name,
        _ => false,
    };
    if !matches {
        let what = if ev.kind == BuildKind::Job {
            "job"
        } else {
            "workflow"
        };
        let wanted = match &project.build {
            BuildName::Job(j) => format!("job `{j}`"),
            BuildName::Workflow(w) => format!("workflow `{w}`"),
        };
        return Err(format!(
            "{what} `{}` is not {}'s build ({wanted})",
            quote(name),
            project.name
        ));
    }
    if ev.status.as_deref().and_then(build_outcome).is_none() {
        return Err(format!(
            "status `{}` is not a final outcome",
            quote(ev.status.as_deref().unwrap_or(""))
        ));
    }
    if ev.commit.is_none() && ev.tag.is_none() {
        return Err("the payload names neither a commit nor a tag".into());
    }
    Ok(project.name.to_string())
}

/// The reason a Bitbucket event other than a push is ignored.
pub fn not_a_push(event: &str, push_event: &str) -> Action {
    Action::ignored(&format!("event `{}` is not {push_event}", quote(event)))
}

/// What a push answers beyond the plan: the tags recorded and those of no family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSummary {
    pub project: Option<String>,
    pub recorded: Vec<String>,
    pub not_in_a_family: Vec<String>,
}

/// A Bitbucket push: the tags of the project's families it brought are recorded, so that version
/// allocation never offers a version someone took by hand.
pub fn push(push: &Push, config: &Config) -> (Action, PushSummary) {
    let Some(project) = config.project_by_repo(&push.repository) else {
        let reason = format!("no project has repository `{}`", quote(&push.repository));
        return (
            Action::ignored(&reason),
            PushSummary {
                project: None,
                recorded: Vec::new(),
                not_in_a_family: Vec::new(),
            },
        );
    };
    let mut tags = Vec::new();
    let mut others = Vec::new();
    for tag in &push.tags {
        let found = project.environments.values().find_map(|env| {
            env.scheme
                .parse_tag(&tag.name)
                .filter(storable)
                .map(|v| (env, v))
        });
        match (found, TagName::parse(&tag.name)) {
            (Some((env, version)), Ok(name)) => tags.push(NewTag {
                project: project.name.clone(),
                env: env.name.clone(),
                name,
                commit: tag.commit.clone(),
                version,
                release: None,
                origin: TagOrigin::Push,
            }),
            _ => others.push(quote(&tag.name)),
        }
    }
    let recorded: Vec<String> = tags.iter().map(|t| t.name.to_string()).collect();
    let outcome = format!(
        "push to {}: {} tag(s) of {}'s families recorded{}",
        push.repository,
        tags.len(),
        project.name,
        if recorded.is_empty() {
            String::new()
        } else {
            format!(" ({})", recorded.join(", "))
        }
    );
    (
        Action::RecordTags { outcome, tags },
        PushSummary {
            project: Some(project.name.to_string()),
            recorded,
            not_in_a_family: others,
        },
    )
}

/// The store keeps version numbers as signed 64-bit integers.
fn storable(v: &crate::domain::Version) -> bool {
    [v.major, v.minor, v.patch]
        .iter()
        .all(|n| *n <= i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::config;
    use crate::domain::CommitSha;
    use crate::sources::jira::Assignment;

    fn build_event(kind: BuildKind, slug: &str, name: &str, status: &str) -> BuildEvent {
        BuildEvent {
            id: "e1".into(),
            happened_at: None,
            kind,
            project_slug: Some(slug.into()),
            project_name: None,
            name: Some(name.into()),
            status: Some(status.into()),
            commit: Some(CommitSha::parse("abc1234").unwrap()),
            tag: None,
            build_url: None,
        }
    }

    #[test]
    fn which_builds_are_handled() {
        let c = config(false);
        let slug = "bitbucket/acme/payments-api";
        // (event, handled?, the reason's start when ignored)
        let table = [
            (build_event(BuildKind::Job, slug, "build", "success"), None),
            (build_event(BuildKind::Job, slug, "build", "failed"), None),
            (
                build_event(BuildKind::Job, slug, "test", "success"),
                Some("job `test` is not payments-api's build (job `build`)"),
            ),
            (
                build_event(BuildKind::Workflow, slug, "build", "success"),
                Some("workflow `build` is not payments-api's build"),
            ),
            (
                build_event(BuildKind::Job, "gh/other/repo", "build", "success"),
                Some("no project has circleci_project `gh/other/repo`"),
            ),
            (
                build_event(BuildKind::Job, slug, "build", "running"),
                Some("status `running` is not a final outcome"),
            ),
            (
                build_event(BuildKind::Other, slug, "build", "success"),
                Some("not a job-completed or workflow-completed event"),
            ),
        ];
        for (ev, ignored) in table {
            let action = build(&ev, &c);
            match ignored {
                None => assert_eq!(
                    action,
                    Action::HandleBuild {
                        outcome: "build of payments-api queued".into()
                    }
                ),
                Some(reason) => assert!(
                    action
                        .ignored_reason()
                        .is_some_and(|r| r.starts_with(reason)),
                    "{action:?} for {reason}"
                ),
            }
        }
        let mut untagged = build_event(BuildKind::Job, slug, "build", "success");
        untagged.commit = None;
        assert_eq!(
            build(&untagged, &c).ignored_reason(),
            Some("the payload names neither a commit nor a tag")
        );
    }

    fn ticket(repo: &str, env: Option<&str>) -> JiraEvent {
        JiraEvent::Assignment(Assignment {
            repo: repo.into(),
            commit: CommitSha::parse("abc1234").unwrap(),
            issue: Some("PAY-1".into()),
            env: env.map(str::to_string),
            event: "automation",
        })
    }

    #[test]
    fn a_ticket_starts_a_release_in_its_environment() {
        let c = config(false);
        let table = [
            (ticket("payments-api", None), Ok("stg")),
            (ticket("acme/payments-api", Some("qa")), Ok("qa")),
            (ticket("payments-api", Some("prod")), Err("prod")),
            (ticket("billing", None), Err("billing")),
        ];
        for (event, want) in table {
            match (jira(event, &c), want) {
                (Ok(Action::StartRelease(r)), Ok(env)) => {
                    assert_eq!(r.env.as_str(), env);
                    assert_eq!(r.project.as_str(), "payments-api");
                    let job = Action::StartRelease(r)
                        .first_job(DeliveryId(1), Some(ReleaseId(5)))
                        .unwrap();
                    assert_eq!(job.lane.to_string(), format!("tag:payments-api:{env}"));
                }
                (Err(Refusal::UnknownEnvironment(m)), Err(name))
                | (Err(Refusal::UnknownProject(m)), Err(name)) => {
                    assert!(m.contains(name), "{m}")
                }
                (got, want) => panic!("{got:?}, wanted {want:?}"),
            }
        }
        let ignored = JiraEvent::Ignored {
            event: "jira:issue_updated".into(),
            reason: "no assignee change".into(),
        };
        assert_eq!(
            jira(ignored, &c).unwrap().ignored_reason(),
            Some("no assignee change")
        );
    }

    #[test]
    fn pushed_tags_of_a_family_are_recorded() {
        let c = config(false);
        let hash = CommitSha::parse(&"a".repeat(40)).unwrap();
        let tag = |name: &str| crate::sources::bitbucket::PushedTag {
            name: name.into(),
            commit: hash.clone(),
        };
        let p = Push {
            repository: "acme/payments-api".into(),
            tags: vec![tag("stg1.2.3"), tag("qa0.1.0"), tag("v9"), tag("stgfoo")],
            other_changes: 1,
        };
        let (action, summary) = push(&p, &c);
        let Action::RecordTags { tags, outcome } = action else {
            panic!("{action:?}")
        };
        let names: Vec<_> = tags
            .iter()
            .map(|t| (t.name.as_str(), t.env.as_str()))
            .collect();
        assert_eq!(names, [("stg1.2.3", "stg"), ("qa0.1.0", "qa")]);
        assert_eq!(summary.not_in_a_family, ["v9", "stgfoo"]);
        assert!(
            outcome.contains("2 tag(s) of payments-api's families recorded (stg1.2.3, qa0.1.0)")
        );
        let elsewhere = Push {
            repository: "acme/other".into(),
            ..p
        };
        assert!(push(&elsewhere, &c).0.ignored_reason().is_some());
    }
}
