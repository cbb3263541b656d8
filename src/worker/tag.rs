//! Ticket -> tag (SPEC 3.1): verify the commit, reuse its tag or allocate the next version, create
//! it on the full hash, record it. The choices are the core's ([`crate::core::tag`]); this asks
//! Bitbucket and the store for what they need.

use super::step::{Context, StepError, StepResult, finish};
use crate::clients::bitbucket::Created;
use crate::config::{Environment, Project};
use crate::core::tag::{self, Allocator, MAX_CONFLICTS, Reuse};
use crate::domain::{CommitSha, KnownTag, Release, ReleaseId, RepoTag, TagOrigin, now_ms};
use crate::store::ClaimedJob;

pub async fn run(ctx: &Context, job: &ClaimedJob, release_id: ReleaseId) -> StepResult {
    let r = ctx
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    if tag::already_tagged(&r) {
        return finish(ctx, job, "already tagged", Default::default()).await;
    }
    let (project, env) = configured(ctx, &r)?;
    let bitbucket = &ctx.clients.bitbucket;

    // The commit must exist; Bitbucket answers its full hash and its date.
    let Some(found) = bitbucket.commit(&project.repo, r.best_commit()).await? else {
        let changes = tag::commit_missing(&ctx.config, &r);
        return finish(ctx, job, "commit not found", changes).await;
    };
    let full = found.full.clone();
    // Recording the check is independent of reading the tags: it is committed while they are
    // read (Hoist's record, then the repository's listing when needed).
    let verified = async {
        if let Some(changes) = tag::commit_verified(&ctx.config, &r, &found) {
            ctx.store.apply(changes).await?;
        }
        Ok::<_, StepError>(())
    };
    let lookup = async {
        let known = ctx.store.known_tags(&r.project, &r.env).await?;
        if let Some(own) = tag::own_tag(env, &full, &known) {
            return Ok::<_, StepError>(Lookup::Reuse(own));
        }
        let listed = family_tags(ctx, project, env).await?;
        Ok(match tag::listed_tag(env, &full, &listed) {
            Some(found) => Lookup::Reuse(found),
            None => Lookup::Allocate(known, listed),
        })
    };
    // The first error ends both.
    let ((), looked) = tokio::try_join!(verified, lookup)?;
    let (known, listed) = match looked {
        Lookup::Reuse(found) => return record(ctx, job, &r, &full, &found, true).await,
        Lookup::Allocate(known, listed) => (known, listed),
    };

    // The next version after the highest of every tag of the family; created on the full hash.
    // "Already exists" means someone else took the name (take the next one) or an earlier attempt
    // of ours made it (it is on this commit: ours).
    let mut allocator = Allocator::new(&listed, &known);
    for _ in 0..MAX_CONFLICTS {
        let a = allocator.next(env);
        let ours = match bitbucket
            .create_tag(&project.repo, a.tag.as_str(), &full)
            .await?
        {
            Created::Created => true,
            Created::Exists => bitbucket
                .tag(&project.repo, a.tag.as_str())
                .await?
                .is_some_and(|t| t.commit == full.as_str()),
        };
        if ours {
            let made = Reuse {
                name: a.tag,
                version: a.version,
                origin: TagOrigin::Hoist,
            };
            return record(ctx, job, &r, &full, &made, false).await;
        }
        tracing::info!(release.id = r.id.0, tag = %a.tag, "tag taken by someone else; taking the next version");
        allocator.taken(&a);
    }
    Err(StepError::Fatal(format!(
        "gave up after {MAX_CONFLICTS} tags in a row were taken by others"
    )))
}

/// What the lookup found: a tag of the family already on the commit, or else what Hoist and the
/// repository know of the family.
enum Lookup {
    Reuse(Reuse),
    Allocate(Vec<KnownTag>, Vec<RepoTag>),
}

/// The release's project and environment, as configured now.
pub(super) fn configured<'c>(
    ctx: &'c Context,
    r: &Release,
) -> Result<(&'c Project, &'c Environment), StepError> {
    let project = ctx.config.project(r.project.as_str()).ok_or_else(|| {
        StepError::Fatal(format!("project `{}` is no longer configured", r.project))
    })?;
    let env = project
        .env(Some(r.env.as_str()))
        .map_err(StepError::Fatal)?;
    Ok((project, env))
}

/// The tags that decide the next version, in as few calls as possible: the first page in
/// Bitbucket's natural `-name` order, and every page only when that one does not settle it
/// ([`tag::first_page_suffices`]). Tags of this commit made by hand long ago are found by Hoist's
/// own record, which `repo:push` webhooks keep current; see ARCHITECTURE.md.
async fn family_tags(
    ctx: &Context,
    project: &Project,
    env: &Environment,
) -> Result<Vec<RepoTag>, StepError> {
    let bitbucket = &ctx.clients.bitbucket;
    let filter = env.scheme.filter_text();
    let (first, more) = bitbucket.newest_tags(&project.repo, filter).await?;
    if tag::first_page_suffices(env, &first, more) {
        return Ok(first);
    }
    Ok(bitbucket.tags(&project.repo, filter).await?)
}

async fn record(
    ctx: &Context,
    job: &ClaimedJob,
    r: &Release,
    full: &CommitSha,
    tag: &Reuse,
    reused: bool,
) -> StepResult {
    let step_ms = now_ms() - r.received_at;
    let changes = tag::tagged(&ctx.config, r, full, tag, reused, step_ms, now_ms());
    let outcome = if reused { "tag reused" } else { "tag created" };
    finish(ctx, job, outcome, changes).await?;
    tracing::info!(release.id = r.id.0, tag = %tag.name, reused, "release tagged");
    Ok(())
}
