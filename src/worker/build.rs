//! Build -> release (SPEC 3.2): find the tag of the built commit, record the outcome, and queue
//! the deploy when the build succeeded.

use super::{StepError, StepResult, notify_later};
use crate::app::App;
use crate::config::ProjectConfig;
use crate::domain::{JobSpec, NotifyEvent, ReleaseStatus, short_sha};
use crate::pipeline::version::{TagScheme, Version};
use crate::sources::circleci;
use crate::store::{ClaimedJob, NewRelease, NewTag, now_ms};

/// A tag found for a build.
struct Found {
    env: String,
    tag: String,
    version: Version,
    commit: String,
    origin: &'static str,
}

pub async fn run(app: &App, job: &ClaimedJob, delivery_id: i64) -> StepResult {
    let d = app
        .store
        .delivery(delivery_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("delivery {delivery_id} does not exist")))?;
    let ev = circleci::parse(d.body.as_bytes(), Some(&d.event))
        .map_err(|e| StepError::Fatal(e.message))?;
    let project = app
        .config
        .project_by_circleci(ev.project_slug.as_deref(), ev.project_name.as_deref())
        .ok_or_else(|| StepError::Fatal("the build's project is no longer configured".into()))?;
    let status = ev.status.clone().unwrap_or_default();
    let success = circleci::outcome(&status).unwrap_or(false);

    let Some(found) = resolve(app, project, ev.tag.as_deref(), ev.commit.as_deref()).await? else {
        let what = ev
            .commit
            .as_deref()
            .map(short_sha)
            .or(ev.tag.as_deref())
            .unwrap_or("?")
            .to_string();
        let mut tx = app.store.begin().await?;
        if tx.finish_job(job, "no tag").await? {
            tx.set_delivery_outcome(
                d.id,
                &format!("no release tag for commit {what}: nothing deployed"),
                None,
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(delivery.id = d.id, commit = %what, "no release tag for the built commit");
        return Ok(());
    };

    let mut tx = app.store.begin().await?;
    if !tx.finish_job(job, "build recorded").await? {
        tx.rollback().await?;
        return Ok(());
    }
    // A tag found in Hoist's own record is recorded already.
    if found.origin != "hoist" {
        tx.record_tag(&NewTag {
            project: &project.name,
            env: &found.env,
            name: &found.tag,
            commit: &found.commit,
            version: found.version,
            release_id: None,
            origin: found.origin,
        })
        .await?;
    }
    let release = match tx
        .release_for_build(&project.name, &found.tag, &found.commit)
        .await?
    {
        Some(r) => r,
        None => {
            // A tag made by hand, with no ticket: it still deploys.
            let id = tx
                .insert_release(&NewRelease {
                    project: project.name.clone(),
                    env: found.env.clone(),
                    repo: project.repo.clone(),
                    commit: found.commit.clone(),
                    issue: None,
                })
                .await?;
            tx.set_commit_verified(id, &found.commit).await?;
            tx.set_tagged(id, &found.tag, &found.version.to_string(), true)
                .await?;
            tx.add_event(
                id,
                "tagged",
                &format!(
                    "tag {} was made outside Hoist; release started by its build",
                    found.tag
                ),
            )
            .await?;
            tx.release(id)
                .await?
                .ok_or_else(|| StepError::Fatal("release vanished".into()))?
        }
    };
    if release.status == ReleaseStatus::DeployTriggered
        || (release.status == ReleaseStatus::Built && success)
    {
        tx.set_delivery_outcome(
            d.id,
            &format!(
                "release {} already {}: nothing more to do",
                release.id, release.status
            ),
            Some(release.id),
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    if release.status == ReleaseStatus::Failed {
        tx.set_delivery_outcome(
            d.id,
            &format!("release {} had failed: nothing deployed", release.id),
            Some(release.id),
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    let step_ms = now_ms() - release.tagged_at.unwrap_or(release.received_at);
    let mut deploy = None;
    tx.set_built(release.id, &status, ev.build_url.as_deref(), success)
        .await?;
    if success {
        tx.add_event(
            release.id,
            "built",
            &format!("CircleCI build of {} succeeded", found.tag),
        )
        .await?;
        // This loop runs the deploy next: born claimed by it, the job needs no claim of its
        // own (a commit and a wake-up fewer between the build and the trigger).
        let spec = JobSpec::Deploy {
            release_id: release.id,
        };
        let lane = format!("deploy:{}", release.id);
        match app.own_claim() {
            Some(claim) => {
                let (id, claimed) = tx
                    .enqueue_claimed(&spec, &lane, app.max_attempts(), &claim)
                    .await?;
                deploy = claimed.then(|| ClaimedJob::born(id, spec, app.max_attempts(), &claim));
            }
            None => {
                tx.enqueue(&spec, &lane, app.max_attempts(), 0).await?;
            }
        }
        notify_later(
            &mut tx,
            app,
            release.id,
            NotifyEvent::BuildSucceeded { step_ms },
        )
        .await?;
    } else {
        tx.add_event(
            release.id,
            "build_failed",
            &format!("CircleCI build of {} {status}: nothing deployed", found.tag),
        )
        .await?;
        notify_later(
            &mut tx,
            app,
            release.id,
            NotifyEvent::BuildFailed {
                status: status.clone(),
            },
        )
        .await?;
    }
    tx.set_delivery_outcome(
        d.id,
        &format!("build {status} for {}", found.tag),
        Some(release.id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(release.id = release.id, tag = %found.tag, %status, "build recorded");
    if let Some(deploy) = deploy {
        app.hand_off(deploy, false);
    }
    Ok(())
}

/// The release tag of a build: the tag the payload names, else Hoist's own record for the commit,
/// else the repository (every page of each environment's family; exact full-hash match, a short
/// hash only as an unambiguous prefix).
async fn resolve(
    app: &App,
    project: &ProjectConfig,
    tag: Option<&str>,
    commit: Option<&str>,
) -> Result<Option<Found>, StepError> {
    let schemes: Vec<(String, TagScheme)> = project
        .environments
        .iter()
        .filter_map(|(name, e)| {
            TagScheme::new(&e.tag, e.bump, e.patch_rollover)
                .ok()
                .map(|s| (name.clone(), s))
        })
        .collect();
    if let Some(tag) = tag {
        for (env, s) in &schemes {
            if let Some(version) = s.parse_tag(tag) {
                let commit = match commit {
                    Some(c) if c.len() == 40 => c.to_string(),
                    _ => match app.bitbucket.tag(&project.repo, tag).await? {
                        Some(t) => t.hash,
                        None => return Ok(None),
                    },
                };
                return Ok(Some(Found {
                    env: env.clone(),
                    tag: tag.into(),
                    version,
                    commit,
                    origin: "build",
                }));
            }
        }
        // A tag of no configured family (a branch-like tag): fall back to the commit.
    }
    let Some(commit) = commit else {
        return Ok(None);
    };
    for (env, s) in &schemes {
        let known = app
            .store
            .tags_for_commit(&project.name, env, commit)
            .await?;
        if let Some((version, t)) = known
            .iter()
            .filter_map(|t| s.parse_tag(&t.name).map(|v| (v, t)))
            .max_by_key(|(v, _)| *v)
        {
            return Ok(Some(Found {
                env: env.clone(),
                tag: t.name.clone(),
                version,
                commit: t.commit.clone(),
                origin: "hoist",
            }));
        }
    }
    for (env, s) in &schemes {
        let tags = app.bitbucket.tags(&project.repo, s.filter_text()).await?;
        let matching: Vec<_> = tags
            .iter()
            .filter(|t| {
                if commit.len() == 40 {
                    t.hash == commit
                } else {
                    t.hash.starts_with(commit)
                }
            })
            .filter_map(|t| s.parse_tag(&t.name).map(|v| (v, t)))
            .collect();
        let hashes: std::collections::HashSet<&str> =
            matching.iter().map(|(_, t)| t.hash.as_str()).collect();
        if hashes.len() > 1 {
            tracing::warn!(
                commit,
                "short commit hash matches several tagged commits; not guessing"
            );
            continue;
        }
        if let Some((version, t)) = matching.into_iter().max_by_key(|(v, _)| *v) {
            return Ok(Some(Found {
                env: env.clone(),
                tag: t.name.clone(),
                version,
                commit: t.hash.clone(),
                origin: "scm",
            }));
        }
    }
    Ok(None)
}
