//! CircleCI's outbound webhook payloads (`job-completed`, `workflow-completed`), built from the
//! samples in CircleCI's webhooks reference (`fixtures/circleci-*.json`) with only the values
//! replaced: `pipeline.vcs` for GitHub OAuth and Bitbucket Cloud projects, or
//! `pipeline.trigger_parameters` for GitLab, GitHub App and Bitbucket Data Center projects.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::{CircleCiSimConfig, PayloadShape};
use crate::iso_millis;

fn template(text: &str) -> Value {
    serde_json::from_str(text).expect("CircleCI fixture is JSON")
}

static JOB: LazyLock<Value> = LazyLock::new(|| {
    template(include_str!(
        "../../../fixtures/circleci-job-completed.json"
    ))
});
static WORKFLOW: LazyLock<Value> = LazyLock::new(|| {
    template(include_str!(
        "../../../fixtures/circleci-workflow-completed.json"
    ))
});
static GITLAB: LazyLock<Value> = LazyLock::new(|| {
    template(include_str!(
        "../../../fixtures/circleci-workflow-completed-gitlab.json"
    ))
});

/// Ids that stay the same for every event one simulated project sends.
#[derive(Debug, Clone)]
pub(crate) struct ProjectIds {
    pub project: String,
    pub organization: String,
    pub webhook: String,
    pub actor: String,
}

/// One simulated build of a commit.
pub(crate) struct Build<'a> {
    pub config: &'a CircleCiSimConfig,
    pub ids: &'a ProjectIds,
    pub tag: Option<&'a str>,
    pub commit: &'a str,
    pub status: &'a str,
    pub pipeline_number: u64,
    pub job_number: u64,
    pub finished: DateTime<Utc>,
}

impl Build<'_> {
    /// The two events of a finished build: `job-completed`, then `workflow-completed`.
    pub(crate) fn events(&self) -> Vec<(String, Value)> {
        let pipeline_id = uuid::Uuid::new_v4().to_string();
        let workflow_id = uuid::Uuid::new_v4().to_string();
        let pipeline = self.pipeline(&pipeline_id);
        let workflow = self.workflow(&workflow_id);

        let mut job = self.common(&JOB, "job-completed", pipeline.clone());
        job["happened_at"] = json!(iso_millis(self.finished - Duration::milliseconds(40)));
        job["workflow"] = workflow.clone();
        job["job"] = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "name": self.config.job_name,
            "started_at": iso_millis(self.finished - Duration::seconds(25)),
            "stopped_at": iso_millis(self.finished - Duration::milliseconds(100)),
            "status": job_status(self.status),
            "number": self.job_number
        });

        let mut workflow_event = self.common(&WORKFLOW, "workflow-completed", pipeline);
        workflow_event["happened_at"] = json!(iso_millis(self.finished));
        workflow_event["workflow"] = workflow;
        workflow_event["workflow"]["status"] = json!(self.status);

        vec![
            ("job-completed".to_string(), job),
            ("workflow-completed".to_string(), workflow_event),
        ]
    }

    fn common(&self, template: &Value, event_type: &str, pipeline: Value) -> Value {
        let mut event = template.clone();
        let config = self.config;
        event["id"] = json!(uuid::Uuid::new_v4().to_string());
        event["type"] = json!(event_type);
        event["webhook"] = json!({"id": self.ids.webhook, "name": "Hoist"});
        event["project"] = json!({
            "id": self.ids.project,
            "name": config.project_name,
            "slug": config.project_slug
        });
        event["organization"] = json!({"id": self.ids.organization, "name": config.org_name});
        event["pipeline"] = pipeline;
        event
    }

    fn workflow(&self, id: &str) -> Value {
        json!({
            "id": id,
            "name": self.config.workflow_name,
            "created_at": iso_millis(self.finished - Duration::seconds(30)),
            "stopped_at": iso_millis(self.finished - Duration::milliseconds(100)),
            "url": format!(
                "https://app.circleci.com/pipelines/{}/{}/workflows/{id}",
                self.config.project_slug, self.pipeline_number
            )
        })
    }

    fn pipeline(&self, id: &str) -> Value {
        let created = self.finished - Duration::seconds(31);
        let mut pipeline = json!({
            "id": id,
            "number": self.pipeline_number,
            "created_at": iso_millis(created),
        });
        match self.config.shape {
            PayloadShape::Vcs => {
                pipeline["trigger"] = json!({"type": "webhook"});
                pipeline["vcs"] = self.vcs(created);
            }
            PayloadShape::TriggerParameters => {
                let trigger_type = trigger_type(&self.config.vcs_provider);
                pipeline["trigger"] = json!({"type": trigger_type});
                pipeline["trigger_parameters"] = self.trigger_parameters(trigger_type, created);
            }
        }
        pipeline
    }

    fn vcs(&self, created: DateTime<Utc>) -> Value {
        let mut vcs = JOB["pipeline"]["vcs"].clone();
        let committed = (created - Duration::seconds(10))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        vcs["provider_name"] = json!(self.config.vcs_provider);
        vcs["origin_repository_url"] = json!(self.config.repo_url);
        vcs["target_repository_url"] = json!(self.config.repo_url);
        vcs["revision"] = json!(self.commit);
        vcs["commit"]["authored_at"] = json!(committed);
        vcs["commit"]["committed_at"] = json!(committed);
        let object = vcs.as_object_mut().expect("vcs is an object");
        // Tag builds often carry neither `branch` nor `tag`; `include_tag` decides.
        object.remove("branch");
        if let (true, Some(tag)) = (self.config.include_tag, self.tag) {
            object.insert("tag".to_string(), json!(tag));
        }
        vcs
    }

    fn trigger_parameters(&self, trigger_type: &str, created: DateTime<Utc>) -> Value {
        let mut params = GITLAB["pipeline"]["trigger_parameters"].clone();
        let tag = self.tag.filter(|_| self.config.include_tag);
        let (git_ref, branch) = match tag {
            Some(tag) => (format!("refs/tags/{tag}"), ""),
            None => ("refs/heads/main".to_string(), "main"),
        };
        let repo_name = self.config.project_name.as_str();
        params["git"] = json!({
            "tag": tag.unwrap_or(""),
            "checkout_sha": self.commit,
            "ref": git_ref,
            "branch": branch,
            "checkout_url": self.config.repo_url
        });
        params["circleci"] = json!({
            "event_time": iso_millis(created - Duration::milliseconds(400)),
            "actor_id": self.ids.actor,
            "event_type": "push",
            "trigger_type": trigger_type
        });
        let object = params
            .as_object_mut()
            .expect("trigger_parameters is an object");
        let mut provider = object.remove("gitlab").expect("sample has a gitlab map");
        provider["web_url"] = json!(self.config.repo_url.trim_end_matches(".git"));
        provider["repo_url"] = json!(self.config.repo_url);
        provider["repo_name"] = json!(repo_name);
        provider["ref"] = json!(git_ref);
        provider["branch"] = json!(branch);
        provider["checkout_sha"] = json!(self.commit);
        provider["commit_sha"] = json!(self.commit);
        provider["commit_timestamp"] = json!(
            (created - Duration::seconds(10))
                .format("%Y-%m-%dT%H:%M:%S+00:00")
                .to_string()
        );
        match trigger_type {
            "gitlab" => {
                object.insert("gitlab".to_string(), provider);
            }
            "github_app" => {
                // GitHub App pipelines carry the same fields, minus GitLab's own ids.
                if let Some(map) = provider.as_object_mut() {
                    map.remove("project_id");
                    map.remove("type");
                }
                object.insert("github_app".to_string(), provider);
            }
            _ => {}
        }
        params
    }
}

/// Job statuses have no `error`: a job that errored is `failed`.
fn job_status(status: &str) -> &str {
    match status {
        "error" => "failed",
        other => other,
    }
}

/// `pipeline.trigger.type` for a provider (another provider is passed through as given).
fn trigger_type(provider: &str) -> &str {
    match provider {
        "github" | "github_app" => "github_app",
        other => other,
    }
}
