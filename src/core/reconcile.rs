//! Missed CircleCI webhooks (SPEC 16): a release tagged `[circleci] build_timeout_secs` ago with
//! no build outcome is looked up in CircleCI's API. What the look found decides what follows
//! here; the API's shapes are `clients::circleci`'s.

use crate::config::Config;
use crate::domain::{Millis, Release, ReleaseId, ReleaseStatus};

use super::build::{self, Build};
use super::job::{Job, NotifyEvent};
use super::notify_job;
use super::plan::Changes;

/// How long a look waits, at most, before asking again about a build that is still running
/// (`build_timeout`, when shorter).
pub const RECHECK_MS: Millis = 60_000;

fn recheck_ms(config: &Config) -> Millis {
    (config.circleci.build_timeout.as_millis() as Millis).min(RECHECK_MS)
}

/// What CircleCI's API says of the build of a release's tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// It finished: CircleCI's status, whether that is a success, the build's page.
    Finished {
        status: String,
        success: bool,
        url: Option<String>,
    },
    /// It is queued, running or on hold.
    Running,
    /// No pipeline of the `pipelines` looked at built the tag.
    Nothing { pipelines: usize },
}

/// Whether `r` still waits for its build's outcome.
pub fn waiting(r: &Release) -> bool {
    r.status == ReleaseStatus::Tagged
}

/// A CircleCI API v2 job or workflow status as an outcome: `Some(true)` succeeded,
/// `Some(false)` ended otherwise, `None` not over (queued, running, on hold, failing).
pub fn outcome(status: &str) -> Option<bool> {
    match status {
        "success" => Some(true),
        "failed"
        | "error"
        | "canceled"
        | "unauthorized"
        | "not_run"
        | "infrastructure_fail"
        | "timedout"
        | "terminated-unknown" => Some(false),
        _ => None,
    }
}

/// The first look at release `id`'s build, `build_timeout` after `now` (its tag).
pub fn first_look(config: &Config, id: ReleaseId, now: Millis) -> Option<Job> {
    config.circleci.token.as_ref()?;
    let after = config.circleci.build_timeout.as_millis() as Millis;
    Some(Job::reconcile(id, now + after))
}

/// What a look found does to `r`: a finished build continues it as its webhook would have, a
/// running one is looked at again later, none at all is said (in its timeline and in Slack).
pub fn decide(config: &Config, r: &Release, seen: &Seen, now: Millis) -> Changes {
    let Some(tag) = r.tag.as_ref().filter(|_| waiting(r)) else {
        return Changes::default();
    };
    match seen {
        Seen::Finished {
            status,
            success,
            url,
        } => build::decide(
            config,
            r,
            &Build {
                delivery: None,
                status,
                success: *success,
                url: url.as_deref(),
                tag,
                now,
                awaiting: None,
            },
        )
        .event(
            r.id,
            "build_reconciled",
            format!(
                "CircleCI's API says the build of {tag} ended `{status}`; its webhook never came"
            ),
        ),
        Seen::Running => Changes::default().job(Job::reconcile(r.id, now + recheck_ms(config))),
        Seen::Nothing { pipelines } => {
            let text = format!(
                "no CircleCI pipeline built {tag} (looked at the project's {pipelines} newest pipelines): check that tag pushes start pipelines and that the project's webhook points at Hoist with its secret"
            );
            Changes::default()
                .event(r.id, "build_missing", text.clone())
                .maybe_job(notify_job(config, r.id, NotifyEvent::Warning { text }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{config, release};

    #[test]
    fn a_look_continues_waits_or_says_nothing_came() {
        let c = config(true);
        let r = release();
        let done = decide(
            &c,
            &r,
            &Seen::Finished {
                status: "success".into(),
                success: true,
                url: Some("https://app.circleci.com/jobs/1".into()),
            },
            5_000,
        );
        assert!(done.jobs.iter().any(|j| j.spec.kind() == "deploy"));
        assert!(done.timeline.iter().any(|e| e.step == "build_reconciled"));
        assert!(done.delivery.is_none(), "no webhook, no delivery");

        let later = decide(&c, &r, &Seen::Running, 5_000);
        assert_eq!(later.jobs.len(), 1);
        assert_eq!(later.jobs[0].run_at, Some(5_000 + recheck_ms(&c)));

        let missing = decide(&c, &r, &Seen::Nothing { pipelines: 40 }, 5_000);
        assert!(missing.timeline.iter().any(|e| e.step == "build_missing"));
        assert!(missing.jobs.iter().any(|j| j.spec.kind() == "notify"));

        let mut built = release();
        built.status = ReleaseStatus::Built;
        assert_eq!(
            decide(&c, &built, &Seen::Running, 5_000),
            Changes::default()
        );
    }

    #[test]
    fn statuses_read_as_outcomes() {
        assert_eq!(outcome("success"), Some(true));
        for s in [
            "failed",
            "canceled",
            "infrastructure_fail",
            "timedout",
            "not_run",
        ] {
            assert_eq!(outcome(s), Some(false), "{s}");
        }
        for s in [
            "running",
            "queued",
            "on_hold",
            "failing",
            "blocked",
            "not_running",
        ] {
            assert_eq!(outcome(s), None, "{s}");
        }
    }
}
