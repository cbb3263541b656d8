//! Promotion (SPEC 13): whether a release may go into an environment now, and if not, which
//! condition is unmet and when it may lift. One version everywhere: the environment's tag is its
//! scheme over the release's version, on the release's commit.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::config::{Environment, Promotion};
use crate::domain::{
    Approval, Deployment, DeploymentId, DeploymentKind, DeploymentStatus, Millis, Release, TagName,
    Via,
};

use super::job::{Job, NotifyEvent};
use super::plan::Changes;
use super::plan::NewDeployment;

/// Why a release cannot be promoted into an environment now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// The environment is a first one: releases start there from tickets.
    NotPromotable { env: String },
    /// The release has no version yet (it was never tagged).
    NoVersion,
    /// Not deployed in the environment it would come from.
    NotDeployed { from: String },
    /// Deployed there, but not long enough.
    Soaking { from: String, until: Millis },
    /// A freeze window is open.
    Frozen { window: String, until: Millis },
    /// Not enough distinct approvers have approved.
    Approvals {
        have: usize,
        need: u32,
        approvers: Vec<String>,
    },
}

impl Unmet {
    /// When the condition lifts by itself (soak and freeze do; the others wait for someone).
    pub fn lifts_at(&self) -> Option<Millis> {
        match self {
            Self::Soaking { until, .. } | Self::Frozen { until, .. } => Some(*until),
            _ => None,
        }
    }
}

fn at(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPromotable { env } => write!(
                f,
                "`{env}` takes no promotions: it has no promote_from (releases start there from tickets)"
            ),
            Self::NoVersion => write!(f, "the release has no version yet: it was never tagged"),
            Self::NotDeployed { from } => write!(
                f,
                "the release is not deployed in `{from}` (its deploy there must be confirmed first)"
            ),
            Self::Soaking { from, until } => write!(
                f,
                "the release must soak in `{from}` until {} (soak_secs)",
                at(*until)
            ),
            Self::Frozen { window, until } => {
                write!(f, "freeze window `{window}` is open until {}", at(*until))
            }
            Self::Approvals {
                have,
                need,
                approvers,
            } => write!(
                f,
                "{have} of {need} approvals given (approvers: {})",
                approvers.join(", ")
            ),
        }
    }
}

/// The release's deployment into `env` that is under way or done, if any: a second request for
/// the same promotion answers it instead of starting another.
pub fn existing<'a>(env: &str, deployments: &'a [Deployment]) -> Option<&'a Deployment> {
    deployments.iter().find(|d| {
        d.env == *env
            && d.kind != DeploymentKind::Rollback
            && !matches!(
                d.status,
                DeploymentStatus::Failed
                    | DeploymentStatus::NotStarted
                    | DeploymentStatus::TimedOut
            )
    })
}

/// `by`'s approval of `r` for `env` was counted (`given` are the release's approvals now): a line
/// in its timeline, and Slack told how many of how many.
pub fn approved(
    config: &crate::config::Config,
    env: &Environment,
    r: &Release,
    given: &[Approval],
    by: &str,
    via: Via,
) -> Changes {
    let need = env.promotion.as_ref().map_or(0, |p| p.approvals);
    let have = env
        .promotion
        .as_ref()
        .map_or(0, |p| approvers_given(p, &env.name, given).len()) as u32;
    Changes::default()
        .event(
            r.id,
            "approved",
            format!("{by} ({via}) approved {} ({have} of {need})", env.name),
        )
        .maybe_job(super::notify_job(
            config,
            r.id,
            NotifyEvent::Approved {
                env: env.name.to_string(),
                by: by.to_string(),
                have,
                need,
            },
        ))
}

/// The distinct approvers on the list who approved `release` for `env`.
pub fn approvers_given<'a>(p: &Promotion, env: &str, approvals: &'a [Approval]) -> Vec<&'a str> {
    let mut given: Vec<&str> = approvals
        .iter()
        .filter(|a| a.env == *env && p.approvers.contains(&a.by))
        .map(|a| a.by.as_str())
        .collect();
    given.sort_unstable();
    given.dedup();
    given
}

/// Whether `by` may approve promotions into `env`.
pub fn may_approve(env: &Environment, by: &str) -> Result<(), String> {
    match &env.promotion {
        None => Err(format!(
            "`{}` takes no promotions, so no approvals",
            env.name
        )),
        Some(p) if p.approvals == 0 => Err(format!("`{}` needs no approval", env.name)),
        Some(p) if !p.approvers.iter().any(|a| a == by) => Err(format!(
            "`{by}` is not among the approvers of `{}` ({})",
            env.name,
            p.approvers.join(", ")
        )),
        Some(_) => Ok(()),
    }
}

/// Whether `r` may be promoted into `env` at `now`, given its deployments and approvals: the
/// first unmet condition, in the order a person fixes them.
pub fn check<'a>(
    env: &'a Environment,
    r: &Release,
    deployments: &[Deployment],
    approvals: &[Approval],
    now: Millis,
) -> Result<&'a Promotion, Unmet> {
    let Some(p) = &env.promotion else {
        return Err(Unmet::NotPromotable {
            env: env.name.to_string(),
        });
    };
    if r.version.is_none() {
        return Err(Unmet::NoVersion);
    }
    let from = p.from.to_string();
    let deployed = deployments
        .iter()
        .filter(|d| d.env == p.from && d.status == DeploymentStatus::Deployed)
        .filter(|d| d.kind != DeploymentKind::Rollback)
        .filter_map(|d| d.finished_at)
        .min();
    let Some(deployed) = deployed else {
        return Err(Unmet::NotDeployed { from });
    };
    let soaked = deployed + p.soak.as_millis() as Millis;
    if now < soaked {
        return Err(Unmet::Soaking {
            from,
            until: soaked,
        });
    }
    let given = approvers_given(p, &env.name, approvals).len();
    if given < p.approvals as usize {
        return Err(Unmet::Approvals {
            have: given,
            need: p.approvals,
            approvers: p.approvers.clone(),
        });
    }
    match frozen(p, now) {
        Some(unmet) => Err(unmet),
        None => Ok(p),
    }
}

/// The freeze window of `p` open at `now`, if one is.
pub fn frozen(p: &Promotion, now: Millis) -> Option<Unmet> {
    let t = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default();
    p.freeze.iter().find_map(|w| {
        w.open_until(t).map(|u| Unmet::Frozen {
            window: w.text.clone(),
            until: u.timestamp_millis(),
        })
    })
}

/// A promotion about to make its tag finds a freeze window open (it opened after the request):
/// the promotion is called off, saying why, and looked at again when the window closes (it goes
/// on then by itself only if it would have anyway: `auto`, or approved).
pub fn called_off(
    config: &crate::config::Config,
    r: &Release,
    d: &Deployment,
    unmet: &Unmet,
    now: Millis,
) -> Changes {
    let error = format!("promotion into {} called off: {unmet}", d.env);
    let mut changes = Changes::default()
        .deployment(
            d.id,
            super::plan::DeploymentChange::Finished {
                status: DeploymentStatus::Failed,
                at: now,
                failed_stage: None,
                error: Some(error.clone()),
            },
        )
        .event(r.id, "promotion_refused", error.clone())
        .maybe_job(super::notify_job(
            config,
            r.id,
            NotifyEvent::Warning { text: error },
        ));
    if let Some(at) = unmet.lifts_at() {
        changes = changes.job(Job::consider(r.id, &r.project, &d.env, Some(at)));
    }
    changes
}

/// The tag `r` gets in `env`: the environment's scheme over the release's one version.
pub fn tag_in(env: &Environment, r: &Release) -> Option<TagName> {
    r.version.map(|v| env.scheme.format(v))
}

/// The promotions a Jira issue moving to `status` asks for: in each project, the issue's newest
/// release that has a version goes into the environments that promote on `status`. `releases`
/// are the issue's, newest first.
pub fn on_status<'c>(
    config: &'c crate::config::Config,
    releases: &[Release],
    status: &str,
) -> Vec<(crate::domain::ReleaseId, &'c Environment)> {
    let mut asked = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in releases.iter().filter(|r| r.version.is_some()) {
        if seen.contains(&r.project.as_str()) {
            continue;
        }
        seen.push(r.project.as_str());
        let Some(project) = config.project(r.project.as_str()) else {
            continue;
        };
        asked.extend(
            project
                .environments
                .values()
                .filter(|e| {
                    e.promotion
                        .as_ref()
                        .and_then(|p| p.on_status.as_deref())
                        .is_some_and(|s| s.eq_ignore_ascii_case(status))
                })
                .map(|e| (r.id, e)),
        );
    }
    asked
}

/// What a promotion request comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it.
    Promote,
    /// It is under way or done already: this deployment.
    Already(DeploymentId),
    /// Refused, saying why.
    Refused(Unmet),
}

/// A request to promote `r` into `env` now.
pub fn decide(
    env: &Environment,
    r: &Release,
    deployments: &[Deployment],
    approvals: &[Approval],
    now: Millis,
) -> Decision {
    if env.promotion.is_none() {
        return Decision::Refused(Unmet::NotPromotable {
            env: env.name.to_string(),
        });
    }
    if let Some(d) = existing(&env.name, deployments) {
        return Decision::Already(d.id);
    }
    match check(env, r, deployments, approvals, now) {
        Ok(_) => Decision::Promote,
        Err(unmet) => Decision::Refused(unmet),
    }
}

/// What a look at a promotion that may go on by itself decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consider {
    /// Start it, in the name of `by` (Hoist for `auto`, else the approvers), through `via`.
    Promote { by: String, via: Via },
    /// Look again then (a soak or a freeze window ends).
    Later(Millis),
    /// Nothing to do by itself: a person decides (or it cannot happen), as said.
    Wait(String),
    /// Under way or done already.
    Already(DeploymentId),
}

/// Whether the promotion of `r` into `env` goes on by itself now: `auto`, or every approval it
/// needs given, and every other condition met.
pub fn consider(
    env: &Environment,
    r: &Release,
    deployments: &[Deployment],
    approvals: &[Approval],
    now: Millis,
) -> Consider {
    let Some(p) = &env.promotion else {
        return Consider::Wait(format!("`{}` takes no promotions", env.name));
    };
    if let Some(d) = existing(&env.name, deployments) {
        return Consider::Already(d.id);
    }
    let given = approvers_given(p, &env.name, approvals);
    let approved = p.approvals > 0 && given.len() >= p.approvals as usize;
    if !p.auto && !approved {
        return Consider::Wait("waiting for a person to promote or approve".into());
    }
    match check(env, r, deployments, approvals, now) {
        Ok(_) if p.auto && p.approvals == 0 => Consider::Promote {
            by: "hoist".into(),
            via: Via::Auto,
        },
        Ok(_) => {
            let last = approvals
                .iter()
                .filter(|a| a.env == env.name && given.contains(&a.by.as_str()))
                .max_by_key(|a| a.at);
            Consider::Promote {
                by: given.join(", "),
                via: last.map(|a| a.via).unwrap_or(Via::Auto),
            }
        }
        Err(unmet) => match unmet.lifts_at() {
            Some(at) => Consider::Later(at),
            None => Consider::Wait(unmet.to_string()),
        },
    }
}

/// A request to promote `r` into `env`, by `by` through `via`: the deployment recorded, its job
/// queued and Slack told, or the promotion already under way, or why not.
#[allow(clippy::too_many_arguments)]
pub fn request(
    config: &crate::config::Config,
    env: &Environment,
    r: &Release,
    deployments: &[Deployment],
    approvals: &[Approval],
    by: &str,
    via: Via,
    now: Millis,
) -> Result<Changes, Decision> {
    match decide(env, r, deployments, approvals, now) {
        Decision::Promote => {}
        other => return Err(other),
    }
    let tag = tag_in(env, r).ok_or(Decision::Refused(Unmet::NoVersion))?;
    let source = env.spinnaker_source.clone().unwrap_or_default();
    let new = NewDeployment {
        release: r.id,
        project: r.project.clone(),
        env: env.name.clone(),
        kind: DeploymentKind::Promotion,
        tag: tag.clone(),
        source,
        application: env.spinnaker_application.clone(),
        requested_by: Some(by.to_string()),
        requested_via: Some(via),
    };
    let mut changes = Changes::default()
        .event(
            r.id,
            "promotion_requested",
            format!(
                "{by} ({via}) promoted {} into {} as {tag}",
                r.tag.as_ref().map(|t| t.as_str()).unwrap_or("-"),
                env.name
            ),
        )
        .job(Job::promote(r.id, &r.project, &env.name))
        .maybe_job(super::notify_job(
            config,
            r.id,
            NotifyEvent::Promoted {
                env: env.name.to_string(),
                tag: tag.to_string(),
                by: by.to_string(),
                via: via.to_string(),
            },
        ));
    changes.new_deployments.push(new);
    Ok(changes)
}

/// Promotion `d`'s tag is made; with `build = true` CircleCI builds it before the trigger.
pub fn awaiting_build(r: &Release, d: &Deployment) -> Changes {
    Changes::default()
        .deployment(d.id, super::plan::DeploymentChange::AwaitingBuild)
        .event(
            r.id,
            "promotion_tagged",
            format!(
                "{} made for {}; waiting for CircleCI to build it (build = true)",
                d.tag, d.env
            ),
        )
}

/// CircleCI finished building promotion `d`'s tag (delivery `delivery`, status `status`): the
/// trigger goes next, or the promotion fails and says so.
pub fn built(
    config: &crate::config::Config,
    r: &Release,
    d: &Deployment,
    delivery: Option<crate::domain::DeliveryId>,
    status: &str,
    success: bool,
    now: Millis,
) -> Changes {
    let changes = Changes::default().maybe_delivery(
        delivery,
        format!("build {status} for {}, promotion into {}", d.tag, d.env),
        Some(r.id),
    );
    if success {
        return changes
            .deployment(d.id, super::plan::DeploymentChange::Built)
            .event(
                r.id,
                "promotion_built",
                format!("CircleCI build of {} succeeded", d.tag),
            )
            .job(Job::promote(r.id, &r.project, &d.env));
    }
    let error = format!("CircleCI build of {} {status}: not deployed", d.tag);
    changes
        .deployment(
            d.id,
            super::plan::DeploymentChange::Finished {
                status: DeploymentStatus::Failed,
                at: now,
                failed_stage: None,
                error: Some(error.clone()),
            },
        )
        .event(r.id, "promotion_build_failed", error)
        .maybe_job(super::notify_about(
            config,
            r.id,
            Some(d.id),
            NotifyEvent::BuildFailed {
                status: status.to_string(),
            },
        ))
}

/// Gate accepted the trigger of promotion `d`: the deployment records it (the release's own
/// status stays its first environment's), and the first look at the executions is due.
pub fn triggered(
    config: &crate::config::Config,
    r: &Release,
    d: &Deployment,
    event_id: Option<&str>,
    now: Millis,
) -> Changes {
    Changes::default()
        .deployment(
            d.id,
            super::plan::DeploymentChange::Triggered {
                event_id: event_id.map(str::to_string),
                at: now,
            },
        )
        .event(
            r.id,
            "promotion_triggered",
            format!(
                "Spinnaker trigger `{}` accepted {} for {} (event {})",
                d.source,
                d.tag,
                d.env,
                event_id.unwrap_or("-")
            ),
        )
        .job(Job::follow(
            d.id,
            0,
            now + super::follow::wait_ms(&config.spinnaker, 0),
        ))
}

/// The deployment a rollback of `env` redeploys: the one whose tag is `to`, or the latest one of
/// another release than the one deployed there now. `deployed` are the environment's
/// deployments, any status.
pub fn rollback_target<'a>(
    env: &str,
    deployed: &'a [Deployment],
    to: Option<&str>,
) -> Result<(&'a Deployment, Option<&'a Deployment>), String> {
    let mut done: Vec<&Deployment> = deployed
        .iter()
        .filter(|d| d.env == *env && d.status == DeploymentStatus::Deployed)
        .collect();
    done.sort_by_key(|d| std::cmp::Reverse((d.finished_at, d.id.0)));
    let current = done.first().copied();
    let target = match to {
        Some(tag) => done
            .iter()
            .find(|d| d.tag == *tag)
            .copied()
            .ok_or_else(|| format!("no release was ever deployed in `{env}` as {tag}"))?,
        None => {
            let now = current.ok_or_else(|| format!("nothing was ever deployed in `{env}`"))?;
            done.iter()
                .find(|d| d.release != now.release)
                .copied()
                .ok_or_else(|| {
                    format!("no earlier release was deployed in `{env}`: nothing to roll back to")
                })?
        }
    };
    if current.is_some_and(|c| c.release == target.release) {
        return Err(format!("{} is what `{env}` runs now", target.tag));
    }
    Ok((target, current))
}

/// A rollback of `env` to `target` (replacing `current`): the deployment recorded with the tag
/// it had (no new tag), its job queued, both releases' timelines told.
pub fn rollback(
    config: &crate::config::Config,
    env: &Environment,
    target: &Deployment,
    current: Option<&Deployment>,
    by: &str,
    via: Via,
) -> Changes {
    let new = NewDeployment {
        release: target.release,
        project: target.project.clone(),
        env: env.name.clone(),
        kind: DeploymentKind::Rollback,
        tag: target.tag.clone(),
        source: env.spinnaker_source.clone().unwrap_or_default(),
        application: env.spinnaker_application.clone(),
        requested_by: Some(by.to_string()),
        requested_via: Some(via),
    };
    let mut changes = Changes::default()
        .event(
            target.release,
            "rollback_requested",
            format!("{by} ({via}) rolled {} back to {}", env.name, target.tag),
        )
        .job(Job::promote(target.release, &target.project, &env.name))
        .maybe_job(super::notify_job(
            config,
            target.release,
            NotifyEvent::Promoted {
                env: env.name.to_string(),
                tag: target.tag.to_string(),
                by: by.to_string(),
                via: format!("{via}, rollback"),
            },
        ));
    if let Some(c) = current {
        changes = changes.event(
            c.release,
            "rolled_back",
            format!(
                "{by} ({via}) rolled {} back from {} to {}",
                env.name, c.tag, target.tag
            ),
        );
    }
    changes.new_deployments.push(new);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FreezeWindow;
    use crate::core::testing::release;
    use crate::domain::{Bump, EnvName, ReleaseId, TagScheme, Version};
    use std::time::Duration;

    const HOUR: Millis = 3_600_000;
    // 2026-12-09, a Wednesday, 12:00 UTC.
    const WEDNESDAY: Millis = 1_796_817_600_000;

    fn prod(approvals: u32, soak_secs: u64, freeze: &[&str]) -> Environment {
        Environment {
            name: EnvName::parse("prod").unwrap(),
            scheme: TagScheme::new("v{major}.{minor}.{patch}", Bump::Patch, None).unwrap(),
            initial: Version::new(0, 0, 1),
            spinnaker_source: Some("payments-api-prod".into()),
            spinnaker_application: "payments-api".into(),
            gate_url: None,
            parameters: Default::default(),
            promotion: Some(Promotion {
                from: EnvName::parse("qa").unwrap(),
                auto: false,
                approvals,
                approvers: vec!["U1".into(), "U2".into()],
                soak: Duration::from_secs(soak_secs),
                freeze: freeze
                    .iter()
                    .map(|w| FreezeWindow::parse(w).unwrap())
                    .collect(),
                build: false,
                on_status: None,
            }),
            jira_transition: None,
        }
    }

    fn deployed(env: &str, id: i64, status: DeploymentStatus, at: Millis) -> Deployment {
        let r = release();
        Deployment {
            id: DeploymentId(id),
            release: r.id,
            project: r.project,
            env: EnvName::parse(env).unwrap(),
            kind: DeploymentKind::Promotion,
            tag: TagName::parse("qa1.4.0").unwrap(),
            source: "s".into(),
            application: "a".into(),
            status,
            event_id: None,
            created_at: at - 1_000,
            triggered_at: Some(at - 1_000),
            started_at: Some(at - 500),
            finished_at: Some(at),
            failed_stage: None,
            error: None,
            requested_by: None,
            requested_via: None,
        }
    }

    fn approval(by: &str) -> Approval {
        Approval {
            release: ReleaseId(1),
            env: EnvName::parse("prod").unwrap(),
            by: by.into(),
            via: Via::Slack,
            at: WEDNESDAY,
        }
    }

    fn versioned() -> Release {
        let mut r = release();
        r.version = Some(Version::new(1, 4, 0));
        r
    }

    #[test]
    fn every_condition_in_turn() {
        let env = prod(2, 3600, &["Wed 12:30 - Wed 14:00 UTC"]);
        let r = versioned();
        let in_qa = [deployed(
            "qa",
            7,
            DeploymentStatus::Deployed,
            WEDNESDAY - 2 * HOUR,
        )];
        let two = [approval("U1"), approval("U2")];
        assert_eq!(
            check(&env, &r, &[], &two, WEDNESDAY).unwrap_err(),
            Unmet::NotDeployed { from: "qa".into() }
        );
        let running = [deployed("qa", 7, DeploymentStatus::Started, WEDNESDAY)];
        assert!(matches!(
            check(&env, &r, &running, &two, WEDNESDAY),
            Err(Unmet::NotDeployed { .. })
        ));
        let fresh = [deployed(
            "qa",
            7,
            DeploymentStatus::Deployed,
            WEDNESDAY - HOUR / 2,
        )];
        let soaking = check(&env, &r, &fresh, &two, WEDNESDAY).unwrap_err();
        assert_eq!(soaking.lifts_at(), Some(WEDNESDAY + HOUR / 2));
        assert!(
            soaking
                .to_string()
                .contains("soak in `qa` until 2026-12-09 12:30 UTC")
        );

        let one = [approval("U1"), approval("U1"), approval("U9")];
        let e = check(&env, &r, &in_qa, &one, WEDNESDAY).unwrap_err();
        assert_eq!(e.to_string(), "1 of 2 approvals given (approvers: U1, U2)");
        assert_eq!(e.lifts_at(), None, "an approval waits for a person");

        assert!(check(&env, &r, &in_qa, &two, WEDNESDAY).is_ok());
        let frozen = check(&env, &r, &in_qa, &two, WEDNESDAY + HOUR).unwrap_err();
        assert_eq!(
            frozen,
            Unmet::Frozen {
                window: "Wed 12:30 - Wed 14:00 UTC".into(),
                until: WEDNESDAY + 2 * HOUR
            }
        );
        assert!(check(&env, &r, &in_qa, &two, WEDNESDAY + 2 * HOUR).is_ok());
    }

    #[test]
    fn a_first_environment_or_an_untagged_release_is_refused() {
        let mut stg = prod(0, 0, &[]);
        stg.promotion = None;
        assert!(matches!(
            check(&stg, &versioned(), &[], &[], WEDNESDAY),
            Err(Unmet::NotPromotable { .. })
        ));
        assert_eq!(
            check(&prod(0, 0, &[]), &release(), &[], &[], WEDNESDAY).unwrap_err(),
            Unmet::NoVersion
        );
    }

    #[test]
    fn a_promotion_under_way_or_done_is_not_started_twice() {
        let env = prod(0, 0, &[]);
        let r = versioned();
        let in_qa = deployed("qa", 7, DeploymentStatus::Deployed, WEDNESDAY - HOUR);
        assert_eq!(
            decide(&env, &r, std::slice::from_ref(&in_qa), &[], WEDNESDAY),
            Decision::Promote
        );
        for status in [DeploymentStatus::Triggering, DeploymentStatus::Deployed] {
            let all = [in_qa.clone(), deployed("prod", 8, status, WEDNESDAY)];
            assert_eq!(
                decide(&env, &r, &all, &[], WEDNESDAY),
                Decision::Already(DeploymentId(8))
            );
        }
        let failed = [
            in_qa.clone(),
            deployed("prod", 8, DeploymentStatus::Failed, WEDNESDAY),
        ];
        assert_eq!(
            decide(&env, &r, &failed, &[], WEDNESDAY),
            Decision::Promote,
            "a failed promotion may be asked again"
        );
    }

    #[test]
    fn who_may_approve() {
        let env = prod(1, 0, &[]);
        assert!(may_approve(&env, "U2").is_ok());
        let e = may_approve(&env, "U9").unwrap_err();
        assert_eq!(e, "`U9` is not among the approvers of `prod` (U1, U2)");
        assert!(may_approve(&prod(0, 0, &[]), "U1").is_err());
        assert_eq!(
            tag_in(&env, &versioned()).unwrap().as_str(),
            "v1.4.0",
            "one version everywhere"
        );
    }

    #[test]
    fn a_build_of_the_promoted_tag_lets_the_trigger_go_or_fails_the_promotion() {
        let config = crate::core::testing::config(true);
        let r = versioned();
        let d = deployed("qa", 8, DeploymentStatus::AwaitingBuild, WEDNESDAY);
        let ok = built(
            &config,
            &r,
            &d,
            Some(crate::domain::DeliveryId(3)),
            "success",
            true,
            WEDNESDAY,
        );
        assert_eq!(ok.deployments.len(), 1);
        assert_eq!(ok.deployments[0].1.to(), DeploymentStatus::Built);
        assert!(matches!(
            ok.jobs[0].spec,
            crate::core::job::JobSpec::Promote { .. }
        ));
        let failed = built(
            &config,
            &r,
            &d,
            Some(crate::domain::DeliveryId(3)),
            "failed",
            false,
            WEDNESDAY,
        );
        assert_eq!(failed.deployments[0].1.to(), DeploymentStatus::Failed);
        assert!(
            failed.jobs.iter().all(|j| j.spec.kind() == "notify"),
            "nothing triggered"
        );
    }

    #[test]
    fn a_freeze_that_opened_after_the_request_calls_the_promotion_off_until_it_closes() {
        let config = crate::core::testing::config(true);
        let env = prod(0, 0, &["Wed 11:00 - Wed 13:00 UTC"]);
        let p = env.promotion.as_ref().unwrap();
        assert_eq!(frozen(p, WEDNESDAY - 2 * HOUR), None);
        let unmet = frozen(p, WEDNESDAY).expect("open at noon");
        assert_eq!(unmet.lifts_at(), Some(WEDNESDAY + HOUR));
        let d = deployed("prod", 9, DeploymentStatus::Triggering, WEDNESDAY);
        let off = called_off(&config, &versioned(), &d, &unmet, WEDNESDAY);
        assert_eq!(off.deployments[0].1.to(), DeploymentStatus::Failed);
        let again = off
            .jobs
            .iter()
            .find(|j| j.spec.kind() == "consider_promotion")
            .expect("looked at again");
        assert_eq!(again.run_at, Some(WEDNESDAY + HOUR));
    }

    #[test]
    fn a_status_promotes_the_issues_newest_tagged_release() {
        let text = crate::core::testing::config_text(false).replace(
            "[projects.environments.qa]\n",
            "[projects.environments.qa]\npromote_from = \"stg\"\npromote_on_status = \"Ready for QA\"\n",
        );
        let (file, _) = crate::config::ConfigFile::parse(&text).unwrap();
        let config = crate::config::Config::from_file(&file).unwrap();
        let mut newest = versioned();
        newest.id = ReleaseId(7);
        let mut untagged = release();
        untagged.id = ReleaseId(9);
        let releases = [untagged, newest, versioned()];
        let asked = on_status(&config, &releases, "ready for qa");
        assert_eq!(asked.len(), 1);
        assert_eq!((asked[0].0, asked[0].1.name.as_str()), (ReleaseId(7), "qa"));
        assert!(on_status(&config, &releases, "Done").is_empty());
    }
}
