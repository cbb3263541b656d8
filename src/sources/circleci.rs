//! CircleCI outbound webhooks: `job-completed` and `workflow-completed`.
//!
//! Two payload shapes carry the commit: `pipeline.vcs.revision` (GitHub OAuth and Bitbucket Cloud
//! projects) and `pipeline.trigger_parameters.git.checkout_sha` (GitLab and GitHub App projects,
//! which have no `vcs`). Unknown fields are ignored and optional ones may be missing (CircleCI's
//! test ping sends an abbreviated payload).

use serde::Deserialize;

use super::InputError;
use crate::domain::CommitSha;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildEvent {
    /// The payload's top-level `id`: the de-duplication key.
    pub id: String,
    /// When CircleCI says the event happened (`happened_at`, ISO 8601), as sent: the same on
    /// every delivery of the event. Stored beside the key so the key's index grows at its end
    /// ([`crate::domain::NewDelivery::event_at`]); `None` when absent, empty or over 64 bytes.
    pub happened_at: Option<String>,
    pub kind: BuildKind,
    pub project_slug: Option<String>,
    pub project_name: Option<String>,
    /// The job's name (job-completed) or the workflow's (workflow-completed).
    pub name: Option<String>,
    pub status: Option<String>,
    pub commit: Option<CommitSha>,
    pub tag: Option<String>,
    pub build_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    Job,
    Workflow,
    /// Another event type (acknowledged and ignored).
    Other,
}

#[derive(Deserialize)]
struct Payload {
    id: Option<String>,
    happened_at: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    project: Option<Project>,
    pipeline: Option<Pipeline>,
    workflow: Option<Named>,
    job: Option<Named>,
}

#[derive(Deserialize)]
struct Project {
    name: Option<String>,
    slug: Option<String>,
}

#[derive(Deserialize)]
struct Pipeline {
    number: Option<u64>,
    vcs: Option<Vcs>,
    trigger_parameters: Option<TriggerParameters>,
}

#[derive(Deserialize)]
struct Vcs {
    revision: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct TriggerParameters {
    git: Option<Git>,
}

#[derive(Deserialize)]
struct Git {
    checkout_sha: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
    status: Option<String>,
    url: Option<String>,
    number: Option<u64>,
}

pub fn parse(body: &[u8], event_header: Option<&str>) -> Result<BuildEvent, InputError> {
    // Straight into the payload's shape, without a `serde_json::Value` in between (this is every
    // CircleCI webhook's path). No separate nesting pass: a typed parse recurses only as deep as
    // `Payload`'s own shape (a value of the wrong shape fails at its first byte), serde_json skips
    // unread values without recursing, and the HTTP layer has checked the configured limits.
    let p: Payload = serde_json::from_slice(body).map_err(|e| {
        if !e.is_data() {
            return InputError::json(&e);
        }
        InputError::invalid(
            "(body)",
            &format!(
                "not a CircleCI webhook payload: {}",
                super::quote(&e.to_string())
            ),
        )
    })?;
    let id = p.id.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        InputError::missing("id", " (CircleCI webhook payloads carry a top-level id)")
    })?;
    if id.len() > 200 {
        return Err(InputError::invalid("id", "longer than 200 characters"));
    }
    let kind_name = p.kind.as_deref().or(event_header).unwrap_or_default();
    let kind = match kind_name {
        "job-completed" => BuildKind::Job,
        "workflow-completed" => BuildKind::Workflow,
        _ => BuildKind::Other,
    };
    let (vcs, git) = match p.pipeline.as_ref() {
        Some(pl) => (
            pl.vcs.as_ref(),
            pl.trigger_parameters.as_ref().and_then(|t| t.git.as_ref()),
        ),
        None => (None, None),
    };
    let commit = vcs
        .and_then(|v| v.revision.clone())
        .or_else(|| git.and_then(|g| g.checkout_sha.clone()))
        .filter(|c| !c.is_empty())
        .map(|c| CommitSha::parse(&c))
        .transpose()
        .map_err(|_| InputError::invalid("pipeline.vcs.revision", "is not a commit hash"))?;
    let tag = vcs
        .and_then(|v| v.tag.clone())
        .or_else(|| git.and_then(|g| g.tag.clone()))
        .filter(|t| !t.is_empty());
    let named = match kind {
        BuildKind::Job => p.job.as_ref(),
        _ => p.workflow.as_ref(),
    };
    let workflow_url = p.workflow.as_ref().and_then(|w| w.url.clone());
    let build_url = match (kind, &p.project, p.job.as_ref().and_then(|j| j.number)) {
        // A job links to its own page when the slug and number are known.
        (
            BuildKind::Job,
            Some(Project {
                slug: Some(slug), ..
            }),
            Some(n),
        ) => {
            let number = p.pipeline.as_ref().and_then(|pl| pl.number);
            match (&workflow_url, number) {
                (Some(w), Some(_)) => Some(format!("{w}/jobs/{n}")),
                _ => Some(format!(
                    "https://app.circleci.com/pipelines/{slug}/jobs/{n}"
                )),
            }
        }
        _ => workflow_url,
    };
    Ok(BuildEvent {
        id,
        happened_at: p.happened_at.filter(|t| !t.is_empty() && t.len() <= 64),
        kind,
        project_slug: p.project.as_ref().and_then(|x| x.slug.clone()),
        project_name: p.project.as_ref().and_then(|x| x.name.clone()),
        name: named.and_then(|n| n.name.clone()),
        status: named.and_then(|n| n.status.clone()),
        commit,
        tag,
        build_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_completed_fixture() {
        let e = parse(
            include_bytes!("../../fixtures/circleci-job-completed.json"),
            None,
        )
        .unwrap();
        assert_eq!(e.id, "8bd71c28-4969-3677-8940-3e3a61c46660");
        assert_eq!(e.happened_at.as_deref(), Some("2021-09-01T22:49:34.279Z"));
        assert_eq!(e.kind, BuildKind::Job);
        assert_eq!(
            e.project_slug.as_deref(),
            Some("github/circleci/webhook-service")
        );
        assert_eq!(e.name.as_deref(), Some("test"));
        assert_eq!(e.status.as_deref(), Some("success"));
        assert_eq!(
            e.commit.as_ref().map(CommitSha::as_str),
            Some("1dc6aa69429bff4806ad6afe58d3d8f57e25973e")
        );
        assert_eq!(e.tag, None);
        assert!(e.build_url.unwrap().ends_with("/jobs/136"));
    }

    #[test]
    fn workflow_completed_fixture() {
        let e = parse(
            include_bytes!("../../fixtures/circleci-workflow-completed.json"),
            None,
        )
        .unwrap();
        assert_eq!(e.kind, BuildKind::Workflow);
        assert_eq!(e.name.as_deref(), Some("build-test-deploy"));
        assert_eq!(e.status.as_deref(), Some("success"));
        assert!(e.build_url.unwrap().contains("/workflows/"));
    }

    #[test]
    fn trigger_parameters_shape() {
        let body = br#"{"id": "x1", "type": "job-completed", "project": {"slug": "gh/acme/api"},
            "pipeline": {"number": 3, "trigger_parameters": {"git": {"checkout_sha": "ABCDEF1234567890abcdef1234567890abcdef12", "tag": "stg1.0.0"}}},
            "job": {"name": "build", "status": "failed", "number": 9}}"#;
        let e = parse(body, None).unwrap();
        assert_eq!(
            e.commit.as_ref().map(CommitSha::as_str),
            Some("abcdef1234567890abcdef1234567890abcdef12")
        );
        assert_eq!(e.tag.as_deref(), Some("stg1.0.0"));
        assert_eq!(e.status.as_deref(), Some("failed"));
    }

    #[test]
    fn abbreviated_ping_is_tolerated() {
        let e = parse(br#"{"id": "ping-1", "type": "ping"}"#, None).unwrap();
        assert_eq!(e.kind, BuildKind::Other);
        assert_eq!(e.commit, None);
        assert_eq!(e.happened_at, None);
    }

    /// The event time joins the de-duplication key only as a short string; an empty or
    /// oversized one is left out (the same way on every redelivery), not refused.
    #[test]
    fn happened_at_is_kept_only_when_short() {
        let at = |value: &str| {
            let body =
                format!(r#"{{"id": "e1", "type": "job-completed", "happened_at": {value}}}"#);
            parse(body.as_bytes(), None).unwrap().happened_at
        };
        assert_eq!(
            at(r#""2026-11-27T09:00:00.123Z""#).as_deref(),
            Some("2026-11-27T09:00:00.123Z")
        );
        assert_eq!(at(r#""""#), None);
        assert_eq!(at(&format!("{:?}", "9".repeat(65))), None);
        assert_eq!(at("null"), None);
    }

    #[test]
    fn missing_id_is_refused() {
        assert_eq!(
            parse(br#"{"type": "job-completed"}"#, None)
                .unwrap_err()
                .code,
            "missing_field"
        );
        assert_eq!(
            parse(br#"{"id": 5}"#, None).unwrap_err().code,
            "invalid_field"
        );
    }

    /// Parsing alone survives any nesting (the HTTP layer refuses bodies past the configured
    /// depth before this runs): serde_json skips unread values without recursing, and a nested
    /// value where `Payload` expects a string fails at its first bracket.
    #[test]
    fn deep_nesting_does_not_exhaust_the_stack() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let skipped = format!(
            r#"{{"id": "x", "type": "job-completed", "extra": {}}}"#,
            deep(100_000)
        );
        assert_eq!(parse(skipped.as_bytes(), None).unwrap().id, "x");
        let read = format!(r#"{{"id": "x", "job": {{"name": {}}}}}"#, deep(100_000));
        assert_eq!(
            parse(read.as_bytes(), None).unwrap_err().code,
            "invalid_field"
        );
    }
}
