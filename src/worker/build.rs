//! Build -> release (SPEC 3.2): find the tag of the built commit, record the outcome, and queue
//! the deploy when the build succeeded. The rules are the core's ([`crate::core::build`]).

use super::step::{Context, StepError, StepResult, finish};
use crate::config::Project;
use crate::core::build::{self, Build, Found, Listed};
use crate::domain::{CommitSha, DeliveryId, TagOrigin, now_ms};
use crate::sources::circleci;
use crate::store::ClaimedJob;

pub async fn run(ctx: &Context, job: &ClaimedJob, delivery_id: DeliveryId) -> StepResult {
    let d = ctx
        .store
        .delivery(delivery_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("delivery {delivery_id} does not exist")))?;
    let ev = circleci::parse(d.body.as_bytes(), Some(&d.event))
        .map_err(|e| StepError::Fatal(e.message))?;
    let project = ctx
        .config
        .project_by_circleci(ev.project_slug.as_deref(), ev.project_name.as_deref())
        .ok_or_else(|| StepError::Fatal("the build's project is no longer configured".into()))?;
    let status = ev.status.clone().unwrap_or_default();
    let success = build::build_outcome(&status).unwrap_or(false);

    let Some(found) = resolve(ctx, project, ev.tag.as_deref(), ev.commit.as_ref()).await? else {
        let what = ev
            .commit
            .as_ref()
            .map(|c| c.short().to_string())
            .or(ev.tag.clone())
            .unwrap_or_else(|| "?".into());
        tracing::info!(delivery.id = d.id.0, commit = %what, "no release tag for the built commit");
        return finish(ctx, job, "no tag", build::no_tag(d.id, &what)).await;
    };

    let adopt = found.clone();
    let release = ctx
        .store
        .release_for_build(
            found.tag.clone(),
            build::learnt_tag(project, &found),
            build::untracked_release(project, &found),
            move |id| build::adopted(id, &adopt),
        )
        .await?;
    // Built before Hoist recorded the tag it made (the tag job's end was lost with a connection,
    // and the job runs again): handled once the tag is recorded, as a retry.
    if release.tag.is_none() && release.status == crate::domain::ReleaseStatus::Received {
        return Err(StepError::Store(crate::store::StoreError::Stale(format!(
            "release {} has no tag recorded yet; its build {} is handled once it has",
            release.id, found.tag
        ))));
    }
    // A build of the release's tag in a further environment: the promotion waiting for it.
    let deployments = if release.tag.as_ref() == Some(&found.tag) {
        Vec::new()
    } else {
        ctx.store.deployments(release.id).await?
    };
    let awaiting = deployments.iter().rev().find(|d| d.tag == found.tag);
    let changes = build::decide(
        &ctx.config,
        &release,
        &Build {
            delivery: Some(d.id),
            status: &status,
            success,
            url: ev.build_url.as_deref(),
            tag: &found.tag,
            now: now_ms(),
            awaiting,
        },
    );
    finish(ctx, job, "build recorded", changes).await?;
    tracing::info!(release.id = release.id.0, tag = %found.tag, %status, "build recorded");
    Ok(())
}

/// The release tag of a build: the tag the payload names, else Hoist's own record for the commit,
/// else the repository (every page of each environment's family).
async fn resolve(
    ctx: &Context,
    project: &Project,
    tag: Option<&str>,
    commit: Option<&CommitSha>,
) -> Result<Option<Found>, StepError> {
    let bitbucket = &ctx.clients.bitbucket;
    if let Some((env, tag, version)) = tag.and_then(|t| build::payload_tag(project, t)) {
        let commit = match commit {
            Some(c) if c.is_full() => c.clone(),
            _ => match bitbucket.tag(&project.repo, tag.as_str()).await? {
                Some(t) => CommitSha::parse(&t.commit).map_err(StepError::Fatal)?,
                None => return Ok(None),
            },
        };
        return Ok(Some(Found {
            env,
            tag,
            version,
            commit,
            origin: TagOrigin::Build,
        }));
    }
    // A tag of no configured family (a branch-like tag): the commit decides.
    let Some(commit) = commit else {
        return Ok(None);
    };
    let known = ctx.store.tags_for_commit(&project.name, commit).await?;
    if let Some(found) = build::from_known(project, &known) {
        return Ok(Some(found));
    }
    for env in project.environments.values() {
        let listed = bitbucket
            .tags(&project.repo, env.scheme.filter_text())
            .await?;
        match build::from_listing(project, &env.name, commit, &listed) {
            Listed::Found(found) => return Ok(Some(found)),
            Listed::Ambiguous => tracing::warn!(
                commit = %commit,
                "short commit hash matches several tagged commits; not guessing"
            ),
            Listed::None => {}
        }
    }
    Ok(None)
}
