//! Missed CircleCI webhooks (SPEC 16): asks CircleCI's API about a release's build when its
//! webhook has not come in `[circleci] build_timeout_secs`. The project's newest pipelines are
//! searched for the one whose `vcs.tag` is the release's tag, then its workflows and, for a
//! `build_job`, their jobs; [`crate::core::reconcile`] decides what the answer means.

use super::step::{Context, StepError, StepResult, finish};
use crate::clients::circleci::{CircleCi, Pipeline};
use crate::config::BuildName;
use crate::core::reconcile::{self, Seen};
use crate::domain::{ReleaseId, now_ms};
use crate::store::ClaimedJob;

/// Pages of pipelines looked at (20 a page): the tag's pipeline starts soon after the tag.
const MAX_PAGES: usize = 5;

pub async fn run(ctx: &Context, job: &ClaimedJob, release_id: ReleaseId) -> StepResult {
    let r = ctx
        .store
        .release(release_id)
        .await?
        .ok_or_else(|| StepError::Fatal(format!("release {release_id} does not exist")))?;
    let (Some(api), Some(tag)) = (&ctx.clients.circleci, r.tag.as_ref()) else {
        return finish(
            ctx,
            job,
            "no [circleci] token, or no tag",
            Default::default(),
        )
        .await;
    };
    if !reconcile::waiting(&r) {
        let outcome = format!("release is {}: its build's outcome came", r.status);
        return finish(ctx, job, &outcome, Default::default()).await;
    }
    let Some(project) = ctx.config.project(r.project.as_str()) else {
        return finish(ctx, job, "project no longer configured", Default::default()).await;
    };
    let Some(slug) = project.circleci_project.as_deref() else {
        let outcome = "the project has no circleci_project to ask CircleCI about";
        return finish(ctx, job, outcome, Default::default()).await;
    };

    let mut page: Option<String> = None;
    let mut looked = 0;
    let mut found: Option<Pipeline> = None;
    for _ in 0..MAX_PAGES {
        let (items, next) = api.pipelines(slug, page.as_deref()).await?;
        looked += items.len();
        found = items.into_iter().find(|p| {
            p.vcs
                .as_ref()
                .and_then(|v| v.tag.as_deref())
                .is_some_and(|t| t == tag.as_str())
        });
        match (&found, next) {
            (None, Some(next)) => page = Some(next),
            _ => break,
        }
    }
    let seen = match &found {
        None => Seen::Nothing { pipelines: looked },
        Some(p) => build_of(api, slug, p, &project.build).await?,
    };
    let outcome = match &seen {
        Seen::Finished { status, .. } => {
            format!("CircleCI says the build of {tag} ended `{status}`")
        }
        Seen::Running => format!("the build of {tag} is still running"),
        Seen::Nothing { pipelines } => format!("no pipeline of {pipelines} built {tag}"),
    };
    let changes = reconcile::decide(&ctx.config, &r, &seen, now_ms());
    finish(ctx, job, &outcome, changes).await
}

/// What the pipeline's workflows (and, for a `build_job`, their jobs) say of the build.
async fn build_of(
    api: &CircleCi,
    slug: &str,
    p: &Pipeline,
    build: &BuildName,
) -> Result<Seen, StepError> {
    let workflows = api.workflows(&p.id).await?;
    let page = |wf: &str, job: Option<i64>| {
        let base = format!(
            "https://app.circleci.com/pipelines/{slug}/{}/workflows/{wf}",
            p.number
        );
        Some(match job {
            Some(n) => format!("{base}/jobs/{n}"),
            None => base,
        })
    };
    let seen = |status: &str, url: Option<String>| match reconcile::outcome(status) {
        Some(success) => Seen::Finished {
            status: status.to_string(),
            success,
            url,
        },
        None => Seen::Running,
    };
    match build {
        BuildName::Workflow(name) => Ok(workflows
            .iter()
            .find(|w| w.name == *name)
            .map(|w| seen(&w.status, page(&w.id, None)))
            .unwrap_or(Seen::Nothing { pipelines: 1 })),
        BuildName::Job(name) => {
            for w in &workflows {
                let jobs = api.jobs(&w.id).await?;
                if let Some(j) = jobs.iter().find(|j| j.name == *name) {
                    return Ok(seen(&j.status, page(&w.id, j.job_number)));
                }
            }
            // The job may not have been scheduled yet while its workflow runs.
            let running = workflows
                .iter()
                .any(|w| reconcile::outcome(&w.status).is_none());
            Ok(if running {
                Seen::Running
            } else {
                Seen::Nothing { pipelines: 1 }
            })
        }
    }
}
