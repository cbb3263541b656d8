//! What a confirmed deploy opens (SPEC 13): the environments that take releases from the one it
//! reached. Each is looked at (a promotion that goes on by itself, `auto` or approved, starts
//! there), and where a person decides, the release's thread gets a button. The release's Jira
//! issue moves by the environment's `jira_transition` (SPEC 14).

use crate::config::Config;
use crate::domain::{EnvName, Release};

use super::job::{Job, NotifyEvent};
use super::notify_job;
use super::plan::Changes;

/// The release was just deployed in `env`.
pub fn after_deployed(config: &Config, r: &Release, env: &EnvName) -> Changes {
    let Some(project) = config.project(r.project.as_str()) else {
        return Changes::default();
    };
    let mut changes = Changes::default();
    let transition = project
        .environments
        .get(env)
        .is_some_and(|e| e.jira_transition.is_some());
    if transition && config.jira.write.is_some() && r.issue.is_some() {
        changes = changes.job(Job::jira_transition(r.id, env));
    }
    for next in project.environments.values() {
        let Some(p) = next.promotion.as_ref().filter(|p| p.from == *env) else {
            continue;
        };
        if p.auto || p.approvals > 0 {
            changes = changes.job(Job::consider(r.id, &r.project, &next.name, None));
        }
        if !p.auto || p.approvals > 0 {
            changes = changes.maybe_job(notify_job(
                config,
                r.id,
                NotifyEvent::PromotionReady {
                    env: next.name.to_string(),
                    approvals: p.approvals,
                },
            ));
        }
    }
    changes
}
