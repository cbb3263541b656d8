//! Deploy (SPEC 3.2): the Spinnaker trigger's parameters, and what is recorded once Gate accepted
//! it.

use std::collections::BTreeMap;

use crate::config::{Config, Environment};
use crate::domain::{DeploymentId, DeploymentKind, Release, ReleaseStatus, TagName};

use super::follow;
use super::job::{Job, NotifyEvent};
use super::notify_job;
use super::plan::{Changes, DeploymentChange, NewDeployment, ReleaseChange};

/// The release's own deployment, in its environment, with the trigger's `source`.
pub fn release_deployment(r: &Release, env: &Environment, source: &str) -> Option<NewDeployment> {
    Some(NewDeployment {
        release: r.id,
        project: r.project.clone(),
        env: r.env.clone(),
        kind: DeploymentKind::Release,
        tag: r.tag.clone()?,
        source: source.to_string(),
        application: env.spinnaker_application.clone(),
        requested_by: None,
        requested_via: None,
    })
}

/// Whether the release is waiting for its trigger (an earlier attempt may have sent it already).
pub fn ready(r: &Release) -> bool {
    r.status == ReleaseStatus::Built
}

/// The trigger's `parameters` for deploying `tag` into `env`: the environment's templates over
/// the release's facts (`{tag}` and `{env}` are the deployment's, `{build_tag}` the tag CircleCI
/// built: the release's first, or with `build = true` the deployment's own).
pub fn parameters(r: &Release, env: &Environment, tag: &TagName) -> BTreeMap<String, String> {
    let commit = r.best_commit();
    let value = |name: &str| -> String {
        match name {
            "tag" => tag.to_string(),
            "version" => r.version.map(|v| v.to_string()).unwrap_or_default(),
            "commit" => commit.to_string(),
            "short_commit" => commit.short().to_string(),
            "repo" => r.repo.clone(),
            "project" => r.project.to_string(),
            "env" => env.name.to_string(),
            "issue" => r.issue.clone().unwrap_or_default(),
            "build_url" => r.build_url.clone().unwrap_or_default(),
            // The tag CircleCI built: the release's first environment's, or this environment's
            // own when it is built there (`build = true`).
            "build_tag" if env.promotion.as_ref().is_some_and(|p| p.build) => tag.to_string(),
            "build_tag" => r.tag.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            _ => String::new(),
        }
    };
    env.parameters
        .iter()
        .map(|(key, template)| (key.clone(), template.render(value)))
        .collect()
}

/// Gate accepted the trigger of `deployment` for `source`, answering `event_id`: the deployment
/// and release record it, and the first look at the executions is due after the first wait.
pub fn triggered(
    config: &Config,
    r: &Release,
    deployment: DeploymentId,
    source: &str,
    event_id: Option<&str>,
    now: i64,
) -> Changes {
    let step_ms = now - r.built_at.unwrap_or(r.received_at);
    Changes::default()
        .deployment(
            deployment,
            DeploymentChange::Triggered {
                event_id: event_id.map(str::to_string),
                at: now,
            },
        )
        .release(
            r.id,
            ReleaseChange::DeployTriggered {
                event_id: event_id.map(str::to_string),
            },
        )
        .event(
            r.id,
            "deploy_triggered",
            format!(
                "Spinnaker trigger `{source}` accepted {} (event {})",
                r.tag.as_ref().map(|t| t.as_str()).unwrap_or(""),
                event_id.unwrap_or("-")
            ),
        )
        .maybe_job(notify_job(
            config,
            r.id,
            NotifyEvent::DeployTriggered { step_ms },
        ))
        .job(Job::follow(
            deployment,
            0,
            now + follow::wait_ms(&config.spinnaker, 0),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::release;
    use crate::domain::{Bump, EnvName, TagScheme, Template, Version};

    #[test]
    fn parameters_render_the_release_facts() {
        let env = Environment {
            name: EnvName::parse("stg").unwrap(),
            scheme: TagScheme::new("stg{major}.{minor}.{patch}", Bump::Patch, None).unwrap(),
            initial: Version::new(0, 0, 1),
            spinnaker_source: Some("payments-api-stg".into()),
            spinnaker_application: "*".into(),
            gate_url: None,
            promotion: None,
            jira_transition: None,
            parameters: [
                ("tag", "{tag}"),
                (
                    "label",
                    "{project}/{env} {short_commit} for {issue}{build_url}",
                ),
            ]
            .into_iter()
            .map(|(k, t)| (k.to_string(), Template::parse(t).unwrap()))
            .collect(),
        };
        let r = release();
        let p = parameters(&r, &env, r.tag.as_ref().unwrap());
        assert_eq!(p["tag"], "stg1.4.0");
        assert_eq!(p["label"], "payments-api/stg abc1234 for PAY-1");
        let mut qa = env.clone();
        qa.name = EnvName::parse("qa").unwrap();
        qa.parameters
            .insert("image".into(), Template::parse("{build_tag}").unwrap());
        let p = parameters(&r, &qa, &TagName::parse("qa1.4.0").unwrap());
        assert_eq!(
            (p["tag"].as_str(), p["image"].as_str()),
            ("qa1.4.0", "stg1.4.0"),
            "a promotion deploys its own tag of the artifact built for the first"
        );
        assert!(p["label"].starts_with("payments-api/qa "));
    }
}
