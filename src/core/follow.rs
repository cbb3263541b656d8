//! Deploy tracking (SPEC 12): after a trigger, what Gate's executions mean for the deployment.
//!
//! Gate's answer to a trigger only says Echo queued the event. The worker looks at what it
//! started, one look per job, each job queuing the next after a wait that doubles up to
//! `[spinnaker] poll_max_secs`: first a search by the trigger's `eventId`, then each execution
//! until it is final. Several executions for one event: deployed when all succeed, failed as soon
//! as any fails. No execution within `start_timeout_secs`: not started; still running after
//! `deploy_timeout_secs` (from the trigger): timed out.

use crate::config::{Config, Spinnaker};
use crate::domain::{
    Deployment, DeploymentKind, DeploymentStatus, Execution, Millis, Release, ReleaseStatus,
};

use super::job::{Job, NotifyEvent};
use super::notify::dur;
use super::notify_about;
use super::plan::{Changes, DeploymentChange, ExecutionSeen, ReleaseChange};

/// How long the `poll`th look waits after the one before (the first, after the trigger).
pub fn wait_ms(sp: &Spinnaker, poll: u32) -> Millis {
    let min = sp.poll_min.as_millis() as i64;
    let max = sp.poll_max.as_millis() as i64;
    min.saturating_mul(1 << poll.min(30)).min(max.max(min))
}

/// Where an execution is, by Orca's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `NOT_STARTED`, `BUFFERED`, `RUNNING`, `PAUSED`, `SUSPENDED`, `REDIRECT`, or a status Hoist
    /// does not know (it keeps looking).
    Running,
    /// `SUCCEEDED`; `FAILED_CONTINUE` succeeds with a warning.
    Succeeded { warning: bool },
    /// `TERMINAL`, `CANCELED`, `STOPPED`, `SKIPPED`.
    Failed,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "SUCCEEDED" => Phase::Succeeded { warning: false },
        "FAILED_CONTINUE" => Phase::Succeeded { warning: true },
        "TERMINAL" | "CANCELED" | "STOPPED" | "SKIPPED" => Phase::Failed,
        _ => Phase::Running,
    }
}

/// The stage that failed: the first `TERMINAL` one, else the first that ended without success.
pub fn failed_stage(e: &Execution) -> Option<String> {
    e.stages
        .iter()
        .find(|s| s.status == "TERMINAL")
        .or_else(|| e.stages.iter().find(|s| phase(&s.status) == Phase::Failed))
        .map(|s| s.name.clone())
}

/// The execution's page in Deck, when `[spinnaker] deck_url` is set.
pub fn deck_link(sp: &Spinnaker, application: &str, execution: &str) -> Option<String> {
    sp.deck_url
        .as_ref()
        .map(|deck| format!("{deck}/#/applications/{application}/executions/details/{execution}"))
}

/// What a look asks Gate: the search by event while no execution is known, else each execution
/// not yet final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    Search,
    Executions(Vec<String>),
}

pub fn look(recorded: &[ExecutionSeen]) -> Look {
    if recorded.is_empty() {
        return Look::Search;
    }
    Look::Executions(
        recorded
            .iter()
            .filter(|e| phase(&e.status) == Phase::Running)
            .map(|e| e.id.clone())
            .collect(),
    )
}

/// Whether the deployment is still being followed (an earlier attempt may have ended it).
pub fn following(d: &Deployment) -> bool {
    matches!(
        d.status,
        DeploymentStatus::Triggered | DeploymentStatus::Started
    )
}

/// What one look saw, and what it means.
pub struct Seen<'a> {
    pub release: &'a Release,
    pub deployment: &'a Deployment,
    /// This look's number (0 for the first after the trigger).
    pub poll: u32,
    /// Executions recorded by earlier looks.
    pub recorded: &'a [ExecutionSeen],
    /// What Gate answered this time.
    pub fresh: Vec<Execution>,
    pub now: Millis,
}

/// An execution as it is recorded under the deployment.
fn seen(d: &Deployment, e: &Execution) -> ExecutionSeen {
    ExecutionSeen {
        deployment: d.id,
        id: e.id.clone(),
        application: e.application.clone(),
        name: e.name.clone(),
        status: e.status.clone(),
        started_at: e.start_time,
        ended_at: e.end_time,
        failed_stage: (phase(&e.status) == Phase::Failed)
            .then(|| failed_stage(e))
            .flatten(),
    }
}

/// The deployment's executions now: those recorded, updated by what this look saw.
fn merged(recorded: &[ExecutionSeen], fresh: &[ExecutionSeen]) -> Vec<ExecutionSeen> {
    let mut all: Vec<ExecutionSeen> = recorded
        .iter()
        .filter(|r| !fresh.iter().any(|f| f.id == r.id))
        .cloned()
        .collect();
    all.extend(fresh.iter().cloned());
    all
}

/// What a look at a deployment's executions decides: what to record, whether the deploy has
/// started or ended (and the release with it, for the release's own deployment), and otherwise
/// the next look.
pub fn decide(config: &Config, s: Seen) -> Changes {
    let sp = &config.spinnaker;
    let d = s.deployment;
    let r = s.release;
    let fresh: Vec<ExecutionSeen> = s.fresh.iter().map(|e| seen(d, e)).collect();
    let all = merged(s.recorded, &fresh);
    let mut changes = fresh
        .into_iter()
        .fold(Changes::default(), |c, e| c.execution(e));
    let since_trigger = s.now - d.triggered_at.unwrap_or(d.created_at);
    let own = d.kind == DeploymentKind::Release;
    // Messages about a promotion or a rollback name its environment and tag.
    let target = (!own).then_some(d.id);
    let waited_secs = since_trigger / 1000;

    if all.is_empty() {
        if since_trigger < sp.start_timeout.as_millis() as i64 {
            return changes.job(next(sp, d, s.poll, s.now));
        }
        let check = format!(
            "check that application `{}` (the environment's spinnaker_application) has a pipeline with an enabled webhook trigger whose source is `{}` (and that its payload constraints match), and that Gate found the event {}",
            d.application,
            d.source,
            d.event_id.as_deref().unwrap_or("-")
        );
        let error = format!(
            "no pipeline execution started within {} of the trigger: {check}",
            dur(since_trigger)
        );
        changes = end(
            changes,
            d,
            r,
            own,
            DeploymentStatus::NotStarted,
            s.now,
            None,
            &error,
        )
        .event(r.id, "deploy_not_started", error.clone())
        .maybe_job(notify_about(
            config,
            r.id,
            target,
            NotifyEvent::DeployNotStarted { waited_secs, check },
        ));
        return changes;
    }

    // Queued executions (`NOT_STARTED`, waiting behind another run) have no start time yet.
    let first = all
        .iter()
        .filter(|e| e.started_at.is_some() || phase(&e.status) != Phase::Running)
        .min_by_key(|e| e.started_at.unwrap_or(Millis::MAX));
    if let (DeploymentStatus::Triggered, Some(first)) = (d.status, first) {
        let at = first.started_at.unwrap_or(s.now);
        let link = deck_link(sp, &first.application, &first.id);
        let mut message = format!(
            "pipeline `{}` started (execution {} of {})",
            first.name, first.id, first.application
        );
        if all.len() > 1 {
            message.push_str(&format!("; {} executions in all", all.len()));
        }
        if let Some(link) = &link {
            message.push_str(&format!(": {link}"));
        }
        changes = changes
            .deployment(d.id, DeploymentChange::Started { at })
            .event(r.id, "deploy_started", message)
            .maybe_job(notify_about(
                config,
                r.id,
                target,
                NotifyEvent::DeployStarted {
                    pipeline: first.name.clone(),
                    execution: first.id.clone(),
                    link,
                },
            ));
        if own {
            changes = changes.release(r.id, ReleaseChange::DeployStarted { at });
        }
    }

    if let Some(failed) = all.iter().find(|e| phase(&e.status) == Phase::Failed) {
        let at = failed.ended_at.unwrap_or(s.now);
        let link = deck_link(sp, &failed.application, &failed.id);
        let stage = failed.failed_stage.clone();
        let mut error = format!(
            "pipeline `{}` (execution {}) ended {}",
            failed.name, failed.id, failed.status
        );
        if let Some(stage) = &stage {
            error.push_str(&format!(" at stage `{stage}`"));
        }
        // Slack shows the link itself; the timeline spells it out.
        let (check, told) = match &link {
            Some(link) => (
                "open the execution in Deck:".to_string(),
                format!("{error}; see the execution in Deck: {link}"),
            ),
            None => {
                let check = format!(
                    "see execution {} of application {} in Deck",
                    failed.id, failed.application
                );
                (check.clone(), format!("{error}; {check}"))
            }
        };
        return end(
            changes,
            d,
            r,
            own,
            DeploymentStatus::Failed,
            at,
            stage.clone(),
            &error,
        )
        .event(r.id, "deploy_failed", told)
        .maybe_job(notify_about(
            config,
            r.id,
            target,
            NotifyEvent::DeployFailed {
                pipeline: failed.name.clone(),
                status: failed.status.clone(),
                stage,
                link,
                check,
            },
        ));
    }

    if all
        .iter()
        .all(|e| matches!(phase(&e.status), Phase::Succeeded { .. }))
    {
        let at = all.iter().filter_map(|e| e.ended_at).max().unwrap_or(s.now);
        let warned: Vec<&str> = all
            .iter()
            .filter(|e| phase(&e.status) == (Phase::Succeeded { warning: true }))
            .map(|e| e.name.as_str())
            .collect();
        let mut message = format!(
            "{} deployed: {} execution(s) succeeded, {} after the trigger",
            d.tag,
            all.len(),
            dur(at - d.triggered_at.unwrap_or(d.created_at))
        );
        if !warned.is_empty() {
            message.push_str(&format!(
                " (with failed stages allowed to continue in {})",
                warned.join(", ")
            ));
        }
        changes = changes
            .deployment(
                d.id,
                DeploymentChange::Finished {
                    status: DeploymentStatus::Deployed,
                    at,
                    failed_stage: None,
                    error: None,
                },
            )
            .event(r.id, "deployed", message)
            .maybe_job(notify_about(
                config,
                r.id,
                target,
                NotifyEvent::Deployed {
                    step_ms: at - d.triggered_at.unwrap_or(d.created_at),
                },
            ));
        if own {
            changes = changes.release(r.id, ReleaseChange::Deployed { at });
        }
        if d.kind != DeploymentKind::Rollback {
            changes.extend(super::onward::after_deployed(config, r, &d.env));
        }
        return changes;
    }

    if since_trigger < sp.deploy_timeout.as_millis() as i64 {
        return changes.job(next(sp, d, s.poll, s.now));
    }
    let running = all
        .iter()
        .find(|e| phase(&e.status) == Phase::Running)
        .expect("neither failed nor all succeeded: one runs");
    let link = deck_link(sp, &running.application, &running.id);
    let error = format!(
        "pipeline `{}` (execution {}) still {} {} after the trigger (spinnaker.deploy_timeout_secs)",
        running.name,
        running.id,
        running.status,
        dur(since_trigger)
    );
    end(
        changes,
        d,
        r,
        own,
        DeploymentStatus::TimedOut,
        s.now,
        None,
        &error,
    )
    .event(r.id, "deploy_timed_out", error.clone())
    .maybe_job(notify_about(
        config,
        r.id,
        target,
        NotifyEvent::DeployTimedOut { waited_secs, link },
    ))
}

/// The next look at `d`.
fn next(sp: &Spinnaker, d: &Deployment, poll: u32, now: Millis) -> Job {
    let poll = poll.saturating_add(1);
    Job::follow(d.id, poll, now + wait_ms(sp, poll))
}

/// A deployment that ended without success, and its release's status for its own deployment.
#[allow(clippy::too_many_arguments)]
fn end(
    changes: Changes,
    d: &Deployment,
    r: &Release,
    own: bool,
    status: DeploymentStatus,
    at: Millis,
    failed_stage: Option<String>,
    error: &str,
) -> Changes {
    let changes = changes.deployment(
        d.id,
        DeploymentChange::Finished {
            status,
            at,
            failed_stage,
            error: Some(error.to_string()),
        },
    );
    if !own {
        return changes;
    }
    let release = match status {
        DeploymentStatus::NotStarted => ReleaseStatus::DeployNotStarted,
        DeploymentStatus::TimedOut => ReleaseStatus::DeployTimedOut,
        _ => ReleaseStatus::DeployFailed,
    };
    changes.release(
        r.id,
        ReleaseChange::DeployEnded {
            status: release,
            error: error.to_string(),
        },
    )
}

/// Following a deployment failed for good (Gate refused, or kept failing past every retry): the
/// deployment fails with the reason, and the release with it for its own deployment.
pub fn gave_up(config: &Config, r: &Release, d: &Deployment, error: &str, now: Millis) -> Changes {
    let own = d.kind == DeploymentKind::Release;
    let target = (!own).then_some(d.id);
    let check = format!(
        "Gate's answer while following the deploy: {error} (application `{}`, source `{}`)",
        d.application, d.source
    );
    end(
        Changes::default(),
        d,
        r,
        own,
        DeploymentStatus::Failed,
        now,
        None,
        &format!("could not follow the deploy: {error}"),
    )
    .event(
        r.id,
        "deploy_failed",
        format!("could not follow the deploy: {check}"),
    )
    .maybe_job(notify_about(
        config,
        r.id,
        target,
        NotifyEvent::DeployFailed {
            pipeline: String::new(),
            status: "unknown".into(),
            stage: None,
            link: None,
            check,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::job::JobSpec;
    use crate::core::testing::{config, release};
    use crate::domain::{DeploymentId, Stage, TagName};

    const TRIGGERED: Millis = 10_000;

    fn deployment(status: DeploymentStatus) -> Deployment {
        let r = release();
        Deployment {
            id: DeploymentId(7),
            release: r.id,
            project: r.project.clone(),
            env: r.env.clone(),
            kind: DeploymentKind::Release,
            tag: TagName::parse("stg1.4.0").unwrap(),
            source: "payments-api-stg".into(),
            application: "payments-api".into(),
            status,
            event_id: Some("ev-1".into()),
            created_at: TRIGGERED - 5,
            triggered_at: Some(TRIGGERED),
            started_at: None,
            finished_at: None,
            failed_stage: None,
            error: None,
            requested_by: None,
            requested_via: None,
        }
    }

    fn execution(id: &str, status: &str, stages: &[(&str, &str)]) -> Execution {
        Execution {
            id: id.into(),
            application: "payments-api".into(),
            name: format!("deploy-{id}"),
            status: status.into(),
            start_time: Some(TRIGGERED + 100),
            end_time: (phase(status) != Phase::Running).then_some(TRIGGERED + 5_000),
            stages: stages
                .iter()
                .map(|(name, status)| Stage {
                    name: name.to_string(),
                    kind: "deployManifest".into(),
                    status: status.to_string(),
                })
                .collect(),
        }
    }

    /// A look `after` ms past the trigger that saw `fresh`, with `recorded` from earlier looks.
    fn look_at(
        d: &Deployment,
        recorded: &[ExecutionSeen],
        fresh: Vec<Execution>,
        after: Millis,
    ) -> Changes {
        let mut r = release();
        r.status = ReleaseStatus::DeployTriggered;
        decide(
            &config(true),
            Seen {
                release: &r,
                deployment: d,
                poll: 2,
                recorded,
                fresh,
                now: TRIGGERED + after,
            },
        )
    }

    fn steps(c: &Changes) -> Vec<&'static str> {
        c.timeline.iter().map(|t| t.step).collect()
    }

    fn follows(c: &Changes) -> Vec<(u32, Option<Millis>)> {
        c.jobs
            .iter()
            .filter_map(|j| match j.spec {
                JobSpec::FollowDeploy { poll, .. } => Some((poll, j.run_at)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn statuses_map_as_orca_means_them() {
        for s in [
            "NOT_STARTED",
            "BUFFERED",
            "RUNNING",
            "PAUSED",
            "SUSPENDED",
            "REDIRECT",
            "SOMETHING_NEW",
        ] {
            assert_eq!(phase(s), Phase::Running, "{s}");
        }
        assert_eq!(phase("SUCCEEDED"), Phase::Succeeded { warning: false });
        assert_eq!(phase("FAILED_CONTINUE"), Phase::Succeeded { warning: true });
        for s in ["TERMINAL", "CANCELED", "STOPPED", "SKIPPED"] {
            assert_eq!(phase(s), Phase::Failed, "{s}");
        }
    }

    #[test]
    fn the_failed_stage_is_the_first_terminal_one() {
        let e = execution(
            "a",
            "TERMINAL",
            &[
                ("Bake", "SUCCEEDED"),
                ("Canary", "STOPPED"),
                ("Deploy", "TERMINAL"),
            ],
        );
        assert_eq!(failed_stage(&e).as_deref(), Some("Deploy"));
        let e = execution(
            "a",
            "CANCELED",
            &[("Bake", "SUCCEEDED"), ("Wait", "CANCELED")],
        );
        assert_eq!(failed_stage(&e).as_deref(), Some("Wait"));
        assert_eq!(failed_stage(&execution("a", "CANCELED", &[])), None);
    }

    #[test]
    fn nothing_found_looks_again_until_the_start_timeout() {
        let d = deployment(DeploymentStatus::Triggered);
        let c = look_at(&d, &[], vec![], 3_000);
        assert!(c.releases.is_empty() && c.deployments.is_empty());
        assert_eq!(follows(&c), [(3, Some(TRIGGERED + 3_000 + 8_000))]);

        let c = look_at(&d, &[], vec![], 120_000);
        assert_eq!(steps(&c), ["deploy_not_started"]);
        assert!(follows(&c).is_empty());
        let (_, change) = &c.releases[0];
        let ReleaseChange::DeployEnded { status, error } = change else {
            panic!("{change:?}")
        };
        assert_eq!(*status, ReleaseStatus::DeployNotStarted);
        assert!(error.contains("source is `payments-api-stg`"), "{error}");
        assert!(error.contains("application `payments-api`"), "{error}");
    }

    #[test]
    fn a_running_execution_starts_the_deploy_at_gates_time_and_is_looked_at_again() {
        let d = deployment(DeploymentStatus::Triggered);
        let c = look_at(&d, &[], vec![execution("a", "RUNNING", &[])], 1_000);
        assert_eq!(steps(&c), ["deploy_started"]);
        assert_eq!(
            c.releases[0].1,
            ReleaseChange::DeployStarted {
                at: TRIGGERED + 100
            }
        );
        assert_eq!(c.executions.len(), 1);
        assert_eq!(follows(&c).len(), 1);
        assert!(
            c.timeline[0]
                .message
                .contains("pipeline `deploy-a` started")
        );
    }

    #[test]
    fn a_queued_execution_has_not_started_the_deploy() {
        let d = deployment(DeploymentStatus::Triggered);
        let mut queued = execution("a", "NOT_STARTED", &[]);
        queued.start_time = None;
        let c = look_at(&d, &[], vec![queued], 1_000);
        assert!(steps(&c).is_empty(), "{:?}", steps(&c));
        assert_eq!(c.executions.len(), 1, "recorded, so the next look polls it");
        assert_eq!(follows(&c).len(), 1);
    }

    #[test]
    fn all_succeeded_is_deployed_at_the_last_end() {
        let d = deployment(DeploymentStatus::Started);
        let mut late = execution("b", "FAILED_CONTINUE", &[("Smoke", "FAILED_CONTINUE")]);
        late.end_time = Some(TRIGGERED + 9_000);
        let c = look_at(
            &d,
            &[],
            vec![execution("a", "SUCCEEDED", &[]), late],
            10_000,
        );
        assert_eq!(steps(&c), ["deployed"]);
        assert_eq!(
            c.releases[0].1,
            ReleaseChange::Deployed {
                at: TRIGGERED + 9_000
            }
        );
        assert!(
            c.timeline[0].message.contains("deploy-b"),
            "the warning names it"
        );
        assert!(follows(&c).is_empty());
    }

    #[test]
    fn one_failed_execution_fails_the_deploy_while_others_run() {
        let d = deployment(DeploymentStatus::Started);
        let c = look_at(
            &d,
            &[],
            vec![
                execution("a", "RUNNING", &[]),
                execution("b", "TERMINAL", &[("Deploy (Manifest)", "TERMINAL")]),
            ],
            6_000,
        );
        assert_eq!(steps(&c), ["deploy_failed"]);
        let ReleaseChange::DeployEnded { status, error } = &c.releases[0].1 else {
            panic!()
        };
        assert_eq!(*status, ReleaseStatus::DeployFailed);
        assert!(
            error.contains("ended TERMINAL at stage `Deploy (Manifest)`"),
            "{error}"
        );
        assert!(follows(&c).is_empty());
    }

    #[test]
    fn executions_seen_before_count_with_the_fresh_ones() {
        let d = deployment(DeploymentStatus::Started);
        let earlier = seen(&d, &execution("a", "SUCCEEDED", &[]));
        let c = look_at(
            &d,
            std::slice::from_ref(&earlier),
            vec![execution("b", "RUNNING", &[])],
            6_000,
        );
        assert!(steps(&c).is_empty(), "b still runs");
        assert_eq!(
            look(std::slice::from_ref(&earlier)),
            Look::Executions(vec![])
        );
        let running = seen(&d, &execution("b", "RUNNING", &[]));
        assert_eq!(
            look(&[earlier, running]),
            Look::Executions(vec!["b".into()]),
            "only those not final are asked for again"
        );
        assert_eq!(look(&[]), Look::Search);
    }

    #[test]
    fn still_running_at_the_deploy_timeout_is_timed_out() {
        let d = deployment(DeploymentStatus::Started);
        let c = look_at(&d, &[], vec![execution("a", "RUNNING", &[])], 3_600_000);
        assert_eq!(steps(&c), ["deploy_timed_out"]);
        let ReleaseChange::DeployEnded { status, error } = &c.releases[0].1 else {
            panic!()
        };
        assert_eq!(*status, ReleaseStatus::DeployTimedOut);
        assert!(error.contains("still RUNNING"), "{error}");
    }

    #[test]
    fn another_environments_deployment_leaves_the_release_alone() {
        let mut d = deployment(DeploymentStatus::Started);
        d.kind = DeploymentKind::Promotion;
        let c = look_at(&d, &[], vec![execution("a", "SUCCEEDED", &[])], 6_000);
        assert!(c.releases.is_empty());
        assert_eq!(c.deployments.len(), 1);
        assert_eq!(steps(&c), ["deployed"]);
    }

    #[test]
    fn a_deck_link_only_when_deck_is_configured() {
        let mut sp = Spinnaker::default();
        assert_eq!(deck_link(&sp, "app", "01X"), None);
        sp.deck_url = Some("https://deck.acme.example".into());
        assert_eq!(
            deck_link(&sp, "app", "01X").as_deref(),
            Some("https://deck.acme.example/#/applications/app/executions/details/01X")
        );
    }
}
