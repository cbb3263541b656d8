//! Ticket -> tag (SPEC 3.1): verify the commit, reuse its tag or allocate the next version, create
//! it on the full hash, record it.

use std::collections::HashSet;

use super::{StepError, StepResult, notify_later};
use crate::app::App;
use crate::clients::bitbucket::Created;
use crate::domain::{NotifyEvent, ReleaseStatus, short_sha};
use crate::pipeline::version::{TagScheme, Version};
use crate::store::{ClaimedJob, NewTag, now_ms};

/// How many names to try when others keep taking the one Hoist picked.
const MAX_CONFLICTS: usize = 20;

pub async fn run(app: &App, job: &ClaimedJob, release_id: i64) -> StepResult {
    let r = app
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    if r.status != ReleaseStatus::Received || r.tag.is_some() {
        // Done by an earlier attempt whose result was already recorded.
        return super::finish_job(app, job, "already tagged").await;
    }
    let project = app.config.project(&r.project).ok_or_else(|| {
        StepError::Fatal(format!("project `{}` is no longer configured", r.project))
    })?;
    let (_, env) = project.env(Some(&r.env)).map_err(StepError::Fatal)?;
    let scheme = TagScheme::new(&env.tag, env.bump, env.patch_rollover)
        .map_err(|e| StepError::Fatal(e.to_string()))?;
    let initial = scheme
        .parse_version(&env.initial_version)
        .map_err(|e| StepError::Fatal(e.to_string()))?;
    let repo = &project.repo;

    // 1. The commit must exist; Bitbucket answers its full hash.
    let Some(full) = app.bitbucket.commit(repo, r.best_commit()).await? else {
        let msg = format!(
            "commit {} not found in {}/{repo}",
            short_sha(&r.commit),
            app.bitbucket.workspace()
        );
        let mut tx = app.store.begin().await?;
        if tx.finish_job(job, "commit not found").await? {
            tx.set_failed(r.id, &msg).await?;
            tx.add_event(r.id, "failed", &msg).await?;
            notify_later(
                &mut tx,
                app,
                r.id,
                NotifyEvent::Failed {
                    step: "commit check".into(),
                    error: msg.clone(),
                },
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(());
    };
    // Recording the check is independent of reading the tags: it runs while they are read (Hoist's
    // record, then the repository's listing when needed), and is committed before anything
    // else is.
    let verified = async {
        if r.commit_verified_at.is_some() {
            return Ok::<_, StepError>(());
        }
        let mut tx = app.store.begin().await?;
        tx.set_commit_verified(r.id, &full).await?;
        tx.add_event(
            r.id,
            "commit_verified",
            &format!(
                "commit {} exists in {}/{repo}",
                short_sha(&full),
                app.bitbucket.workspace()
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    };
    let lookup = async {
        let known = app.store.known_tags(&r.project, &r.env).await?;
        // 2. A commit that already carries a tag of this family keeps it: a re-assigned ticket
        //    must not mint a second version. Hoist's own record first (its highest version on
        //    this commit), then the repository.
        let own = known
            .iter()
            .filter(|t| t.commit == full)
            .filter_map(|t| scheme.parse_tag(&t.name).map(|v| (v, t.name.clone())))
            .max_by_key(|(v, _)| *v);
        if let Some((v, name)) = own {
            return Ok::<_, StepError>(Lookup::Own(v, name));
        }
        let tags = family_tags(app, repo, &scheme).await?;
        Ok(Lookup::Listed(known, tags))
    };
    // The first error ends both (a transaction dropped unfinished rolls back).
    let ((), looked) = tokio::try_join!(verified, lookup)?;
    let (known, tags) = match looked {
        Lookup::Own(v, name) => return record(app, job, &r, &name, v, &full, true, "hoist").await,
        Lookup::Listed(known, tags) => (known, tags),
    };
    if let Some((v, name)) = scheme.highest(
        tags.iter()
            .filter(|t| t.hash == full)
            .map(|t| t.name.as_str()),
    ) {
        return record(app, job, &r, name, v, &full, true, "scm").await;
    }

    // 3. The next version after the highest of all existing tags (and any Hoist recorded that a
    //    listing might not show yet).
    let mut names: Vec<String> = tags.into_iter().map(|t| t.name).collect();
    names.extend(known.into_iter().map(|t| t.name));
    let mut taken: HashSet<Version> = HashSet::new();
    for _ in 0..MAX_CONFLICTS {
        let alloc = scheme.next(names.iter().map(String::as_str), initial, &taken);
        // 4. Create it. "Already exists" means someone else took the name (take the next one) or
        //    an earlier attempt of ours made it (it is on this commit: ours).
        match app.bitbucket.create_tag(repo, &alloc.tag, &full).await? {
            Created::Created => {
                return record(
                    app,
                    job,
                    &r,
                    &alloc.tag,
                    alloc.version,
                    &full,
                    false,
                    "hoist",
                )
                .await;
            }
            Created::Exists => {
                let existing = app.bitbucket.tag(repo, &alloc.tag).await?;
                match existing {
                    Some(t) if t.hash == full => {
                        return record(
                            app,
                            job,
                            &r,
                            &alloc.tag,
                            alloc.version,
                            &full,
                            false,
                            "hoist",
                        )
                        .await;
                    }
                    _ => {
                        tracing::info!(release.id = r.id, tag = %alloc.tag, "tag taken by someone else; taking the next version");
                        taken.insert(alloc.version);
                        names.push(alloc.tag);
                    }
                }
            }
        }
    }
    Err(StepError::Fatal(format!(
        "gave up after {MAX_CONFLICTS} tags in a row were taken by others"
    )))
}

/// What the tag lookup found: a tag of the family Hoist recorded on this commit, or else what
/// Hoist and the repository know of the family.
enum Lookup {
    Own(Version, String),
    Listed(
        Vec<crate::store::TagRow>,
        Vec<crate::clients::bitbucket::Tag>,
    ),
}

/// The tags that decide the next version, in as few calls as possible.
///
/// Bitbucket's `sort=-name` is a natural sort, and members of one family differ only in their
/// numbers, so the first page in that order holds the family's highest versions. When that page
/// holds no member of the family (other names sort above it) the whole listing is read, every
/// page. Tags of this commit made by hand long ago are found by Hoist's own record, which
/// `repo:push` webhooks keep current; see ARCHITECTURE.md.
async fn family_tags(
    app: &App,
    repo: &str,
    scheme: &TagScheme,
) -> Result<Vec<crate::clients::bitbucket::Tag>, StepError> {
    let (first, more) = app
        .bitbucket
        .newest_tags(repo, scheme.filter_text())
        .await?;
    if !more || first.iter().any(|t| scheme.parse_tag(&t.name).is_some()) {
        return Ok(first);
    }
    Ok(app.bitbucket.tags(repo, scheme.filter_text()).await?)
}

#[allow(clippy::too_many_arguments)]
async fn record(
    app: &App,
    job: &ClaimedJob,
    r: &crate::store::Release,
    tag: &str,
    version: Version,
    full: &str,
    reused: bool,
    origin: &str,
) -> StepResult {
    let step_ms = now_ms() - r.received_at;
    let mut tx = app.store.begin().await?;
    if !tx
        .finish_job(job, if reused { "tag reused" } else { "tag created" })
        .await?
    {
        tx.rollback().await?;
        return Ok(());
    }
    tx.record_tag(&NewTag {
        project: &r.project,
        env: &r.env,
        name: tag,
        commit: full,
        version,
        release_id: Some(r.id),
        origin,
    })
    .await?;
    tx.set_tagged(r.id, tag, &version.to_string(), reused)
        .await?;
    let msg = if reused {
        format!(
            "commit {} already carries {tag}: reused, no new version",
            short_sha(full)
        )
    } else {
        format!("created tag {tag} on {}", short_sha(full))
    };
    tx.add_event(r.id, "tagged", &msg).await?;
    let event = if reused {
        NotifyEvent::TagReused { step_ms }
    } else {
        NotifyEvent::Tagged { step_ms }
    };
    notify_later(&mut tx, app, r.id, event).await?;
    tx.commit().await?;
    tracing::info!(release.id = r.id, tag, reused, "release tagged");
    Ok(())
}
