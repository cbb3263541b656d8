//! The store's API for what happened: releases, their timelines, deliveries and known tags.

use super::deployments;
use super::error::{Result, StoreError};
use super::handle::Store;
use super::records::{
    ReleaseFilter, apply, delivery, events, events_since, insert_release, known_tags, record_tag,
    release, release_for_build, releases, releases_of_issue, tags_for_commit,
};
use crate::core::plan::NewDeployment;
use crate::core::plan::{Changes, ExecutionSeen, NewTag};
use crate::domain::{
    Approval, CommitSha, Delivery, DeliveryId, Deployment, DeploymentId, EnvName, JobId, KnownTag,
    NewRelease, ProjectName, Release, ReleaseEvent, ReleaseId, TagName,
};

impl Store {
    pub async fn release(&self, id: ReleaseId) -> Result<Option<Release>> {
        self.read(move |c| Box::pin(release(c, id))).await
    }

    /// Releases, newest first, before release `before` when given.
    pub async fn releases(&self, limit: i64, before: Option<ReleaseId>) -> Result<Vec<Release>> {
        self.releases_where(limit, before, ReleaseFilter::default())
            .await
    }

    /// Releases that pass `only`, newest first, before release `before` when given.
    pub async fn releases_where(
        &self,
        limit: i64,
        before: Option<ReleaseId>,
        only: ReleaseFilter,
    ) -> Result<Vec<Release>> {
        self.read(move |c| {
            let only = only.clone();
            Box::pin(async move { releases(c, limit, before, &only).await })
        })
        .await
    }

    /// The releases of a Jira issue, newest first.
    pub async fn releases_of_issue(&self, issue: &str) -> Result<Vec<Release>> {
        let issue = issue.to_string();
        self.read(move |c| {
            let issue = issue.clone();
            Box::pin(async move { releases_of_issue(c, &issue).await })
        })
        .await
    }

    pub async fn events(&self, release: ReleaseId) -> Result<Vec<ReleaseEvent>> {
        self.read(move |c| Box::pin(events(c, release))).await
    }

    /// Timeline events of every release after event id `after`: (event id, release, event).
    pub async fn events_since(&self, after: i64) -> Result<Vec<(i64, ReleaseId, ReleaseEvent)>> {
        self.read(move |c| Box::pin(events_since(c, after))).await
    }

    pub async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>> {
        self.read(move |c| Box::pin(delivery(c, id))).await
    }

    pub async fn deliveries_count(&self) -> Result<i64> {
        self.query_i64("SELECT COUNT(*) AS n FROM deliveries").await
    }

    /// Tags Hoist knows on a project's commit (full hash or an unambiguous prefix), every
    /// environment.
    pub async fn tags_for_commit(
        &self,
        project: &ProjectName,
        commit: &CommitSha,
    ) -> Result<Vec<KnownTag>> {
        let (project, commit) = (project.clone(), commit.clone());
        self.read(move |c| Box::pin(async move { tags_for_commit(c, &project, &commit).await }))
            .await
    }

    /// Every tag of one project's environment that Hoist knows.
    pub async fn known_tags(&self, project: &ProjectName, env: &EnvName) -> Result<Vec<KnownTag>> {
        let (project, env) = (project.clone(), env.clone());
        self.read(move |c| Box::pin(async move { known_tags(c, &project, &env).await }))
            .await
    }

    /// The release a build of `tag` on `commit` belongs to. A tag Hoist learnt from the build
    /// (`learnt`) joins its list; a release found nowhere is started as `untracked`, with the
    /// changes `adopted` gives for its id. One transaction.
    pub async fn release_for_build(
        &self,
        tag: TagName,
        learnt: Option<NewTag>,
        untracked: NewRelease,
        adopted: impl Fn(ReleaseId) -> Changes + Clone + Send + 'static,
    ) -> Result<Release> {
        let max = self.max_attempts;
        self.write(move |c| {
            let (tag, learnt, untracked, adopted) = (
                tag.clone(),
                learnt.clone(),
                untracked.clone(),
                adopted.clone(),
            );
            Box::pin(async move {
                if let Some(t) = &learnt {
                    record_tag(c, t).await?;
                }
                let found =
                    release_for_build(c, &untracked.project, &tag, &untracked.commit).await?;
                let id = match found {
                    Some(r) => return Ok(r),
                    None => insert_release(c, &untracked).await?,
                };
                apply(c, &adopted(id), max).await?;
                release(c, id)
                    .await?
                    .ok_or_else(|| StoreError::Failed(format!("release {id} vanished")))
            })
        })
        .await
    }

    /// Queues a stored delivery's work again (`hoist replay`), as `decide` says for the delivery
    /// and its release; answers the first job queued, `None` when there is nothing to replay.
    pub async fn replay(
        &self,
        id: DeliveryId,
        decide: fn(&Delivery, Option<&Release>) -> Option<Changes>,
    ) -> Result<Option<JobId>> {
        let max = self.max_attempts;
        self.write(move |c| {
            Box::pin(async move {
                let Some(d) = delivery(c, id).await? else {
                    return Ok(None);
                };
                let r = match d.release {
                    Some(r) => release(c, r).await?,
                    None => None,
                };
                let Some(changes) = decide(&d, r.as_ref()) else {
                    return Ok(None);
                };
                Ok(apply(c, &changes, max).await?.first().copied())
            })
        })
        .await
    }
}

impl Store {
    /// The deployment `new` describes, recorded before its trigger is sent (or the one a run of
    /// the same job recorded before it crashed, still being triggered).
    pub async fn start_deployment(&self, new: NewDeployment) -> Result<Deployment> {
        self.write(move |c| {
            let new = new.clone();
            Box::pin(async move { deployments::start(c, &new).await })
        })
        .await
    }

    pub async fn deployment(&self, id: DeploymentId) -> Result<Option<Deployment>> {
        self.read(move |c| Box::pin(deployments::deployment(c, id)))
            .await
    }

    /// A release's deployments, first first.
    pub async fn deployments(&self, release: ReleaseId) -> Result<Vec<Deployment>> {
        self.read(move |c| Box::pin(deployments::of_release(c, release)))
            .await
    }

    /// The release that carries `tag` (its own, or one of its deployments').
    pub async fn release_by_tag(&self, tag: &str) -> Result<Option<ReleaseId>> {
        let tag = tag.to_string();
        self.read(move |c| {
            let tag = tag.clone();
            Box::pin(async move { deployments::release_by_tag(c, &tag).await })
        })
        .await
    }

    /// A project's deployments into one environment, newest first (at most `limit`).
    pub async fn deployments_in(
        &self,
        project: &str,
        env: &str,
        limit: i64,
    ) -> Result<Vec<Deployment>> {
        let (project, env) = (project.to_string(), env.to_string());
        self.read(move |c| {
            let (project, env) = (project.clone(), env.clone());
            Box::pin(async move { deployments::in_env(c, &project, &env, limit).await })
        })
        .await
    }

    /// Records an approval; `false` when that person had approved already.
    pub async fn approve(&self, approval: Approval) -> Result<bool> {
        self.write(move |c| {
            let a = approval.clone();
            Box::pin(async move { deployments::approve(c, &a).await })
        })
        .await
    }

    /// A release's approvals, oldest first.
    pub async fn approvals(&self, release: ReleaseId) -> Result<Vec<Approval>> {
        self.read(move |c| Box::pin(deployments::approvals(c, release)))
            .await
    }

    /// A deployment's executions as last seen.
    pub async fn executions(&self, deployment: DeploymentId) -> Result<Vec<ExecutionSeen>> {
        self.read(move |c| Box::pin(deployments::executions(c, deployment)))
            .await
    }
}
