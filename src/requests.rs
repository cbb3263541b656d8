//! What people ask of a release (SPEC 13): a promotion into an environment, or an approval for
//! one, through the API, the CLI, a Slack button or Jira. Each reads the release's state, lets
//! [`crate::core::promote`] decide, and writes the plan; the answer says what happened or why not.

use crate::config::{Config, Environment};
use crate::core::job::Job;
use crate::core::plan::Changes;
use crate::core::promote::{self, Decision};
use crate::domain::{Approval, DeploymentId, EnvName, Release, ReleaseId, Via, now_ms};
use crate::store::{Store, StoreError};

/// Why a request changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No such release, or no such environment in its project.
    #[error("{0}")]
    NotFound(String),
    /// A condition is unmet (`409 not_promotable`).
    #[error("{0}")]
    NotPromotable(String),
    /// The person may not approve here.
    #[error("{0}")]
    NotApprover(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a promotion request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promoted {
    /// Started now.
    Started,
    /// Under way or done already: that deployment.
    Already(DeploymentId),
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// `false`: this person had approved already.
    pub counted: bool,
    /// The promotion the approvals completed, when every other condition held too.
    pub promoted: Option<Promoted>,
}

async fn release_and_env<'c>(
    store: &Store,
    config: &'c Config,
    release: ReleaseId,
    env: &str,
) -> Result<(Release, &'c Environment), Refused> {
    let r = store
        .release(release)
        .await?
        .ok_or_else(|| Refused::NotFound(format!("no release {release}")))?;
    let project = config.project(r.project.as_str()).ok_or_else(|| {
        Refused::NotFound(format!("project `{}` is no longer configured", r.project))
    })?;
    let env = project.environments.get(env).ok_or_else(|| {
        Refused::NotFound(format!(
            "project `{}` has no environment `{env}`",
            r.project
        ))
    })?;
    Ok((r, env))
}

/// Promotes `release` into `env` for `by`, if every condition holds.
pub async fn promote(
    store: &Store,
    config: &Config,
    release: ReleaseId,
    env: &str,
    by: &str,
    via: Via,
) -> Result<Promoted, Refused> {
    let (r, env) = release_and_env(store, config, release, env).await?;
    start(store, config, env, &r, by, via).await
}

async fn start(
    store: &Store,
    config: &Config,
    env: &Environment,
    r: &Release,
    by: &str,
    via: Via,
) -> Result<Promoted, Refused> {
    let deployments = store.deployments(r.id).await?;
    let approvals = store.approvals(r.id).await?;
    match promote::request(config, env, r, &deployments, &approvals, by, via, now_ms()) {
        Ok(changes) => match store.apply(changes).await {
            Ok(_) => Ok(Promoted::Started),
            // Another request recorded the same promotion between the read and the write.
            Err(StoreError::Stale(_)) => {
                let now = store.deployments(r.id).await?;
                promote::existing(&env.name, &now)
                    .map(|d| Promoted::Already(d.id))
                    .ok_or_else(|| {
                        Refused::NotPromotable("the promotion changed meanwhile: ask again".into())
                    })
            }
            Err(e) => Err(e.into()),
        },
        Err(Decision::Already(id)) => Ok(Promoted::Already(id)),
        Err(Decision::Refused(unmet)) => Err(Refused::NotPromotable(format!(
            "release {} cannot be promoted into {}: {unmet}",
            r.id, env.name
        ))),
        Err(Decision::Promote) => unreachable!("request answers Ok to promote"),
    }
}

/// Records `by`'s approval of `release` for `env`; when the approvals it needed are then all in
/// and every other condition holds, the promotion starts.
pub async fn approve(
    store: &Store,
    config: &Config,
    release: ReleaseId,
    env: &str,
    by: &str,
    via: Via,
) -> Result<Approved, Refused> {
    let (r, env) = release_and_env(store, config, release, env).await?;
    promote::may_approve(env, by).map_err(Refused::NotApprover)?;
    let counted = store
        .approve(Approval {
            release: r.id,
            env: EnvName::clone(&env.name),
            by: by.to_string(),
            via,
            at: now_ms(),
        })
        .await?;
    if counted {
        let given = store.approvals(r.id).await?;
        store
            .apply(promote::approved(config, env, &r, &given, by, via))
            .await?;
    }
    let promoted = match start(store, config, env, &r, by, via).await {
        Ok(p) => Some(p),
        Err(Refused::NotPromotable(_)) => {
            // Something else is unmet (a soak, a freeze window, more approvals): a look that
            // goes on by itself when it can, or again when it lifts.
            store
                .apply(Changes::default().job(Job::consider(r.id, &r.project, &env.name, None)))
                .await?;
            None
        }
        Err(e) => return Err(e),
    };
    Ok(Approved { counted, promoted })
}

/// What a rollback did: the release and tag now being deployed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub release: ReleaseId,
    pub tag: String,
}

/// Redeploys into `env` of `project` the release deployed there before the current one (or the
/// one deployed as `to`), with the tag it had.
pub async fn rollback(
    store: &Store,
    config: &Config,
    project: &str,
    env: &str,
    to: Option<&str>,
    by: &str,
    via: Via,
) -> Result<RolledBack, Refused> {
    let p = config
        .project(project)
        .ok_or_else(|| Refused::NotFound(format!("no project `{project}`")))?;
    let env = p.environments.get(env).ok_or_else(|| {
        Refused::NotFound(format!("project `{project}` has no environment `{env}`"))
    })?;
    let deployed = store.deployments_in(project, &env.name, 500).await?;
    if let Some(d) = deployed.iter().find(|d| {
        d.kind == crate::domain::DeploymentKind::Rollback
            && !matches!(
                d.status,
                crate::domain::DeploymentStatus::Deployed
                    | crate::domain::DeploymentStatus::Failed
                    | crate::domain::DeploymentStatus::NotStarted
                    | crate::domain::DeploymentStatus::TimedOut
            )
    }) {
        return Err(Refused::NotPromotable(format!(
            "a rollback of {} to {} is under way",
            env.name, d.tag
        )));
    }
    let (target, current) =
        promote::rollback_target(&env.name, &deployed, to).map_err(Refused::NotPromotable)?;
    let changes = promote::rollback(config, env, target, current, by, via);
    let done = RolledBack {
        release: target.release,
        tag: target.tag.to_string(),
    };
    store.apply(changes).await?;
    Ok(done)
}
