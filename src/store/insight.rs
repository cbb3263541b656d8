//! What the DORA figures read ([`crate::core::dora`]): one project and environment's deployments
//! that ended in a window, with their releases' times. One range of the index
//! `deployments_env (project, env, finished_at)` and a lookup of each row's release by its key:
//! the cost grows with the window's deployments, not with the history.

use super::db::{Conn, params, time};
use super::error::Result;
use super::handle::Store;
use crate::core::dora::{self, Day, Ended, Figures};
use crate::domain::{DeploymentKind, DeploymentStatus, EnvName, Millis, ProjectName};

/// The deployments of `project`'s `env` that ended between `since` and `until` (both included),
/// in the order they ended, among those whose trigger Gate accepted: a promotion called off, one
/// whose build failed or a trigger never sent or refused also end `failed`, but changed nothing
/// in the environment.
pub(super) async fn ended(
    c: &mut dyn Conn,
    project: &str,
    env: &str,
    since: Millis,
    until: Millis,
) -> Result<Vec<Ended>> {
    c.query(
        "SELECT d.kind, d.status, d.finished_at, r.received_at, r.committed_at
         FROM deployments d JOIN releases r ON r.id = d.release_id
         WHERE d.project = $1 AND d.env = $2 AND d.finished_at >= $3 AND d.finished_at <= $4
             AND d.triggered_at IS NOT NULL
         ORDER BY d.finished_at, d.id",
        params![project, env, time(since), time(until)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Ended {
            kind: r.parse("kind", |s| {
                DeploymentKind::parse(s).ok_or_else(|| format!("deployment kind `{s}`"))
            })?,
            status: r.parse("status", |s| {
                DeploymentStatus::parse(s).ok_or_else(|| format!("deployment status `{s}`"))
            })?,
            finished_at: r.time("finished_at")?,
            received_at: r.time("received_at")?,
            committed_at: r.opt_time("committed_at")?,
        })
    })
    .collect()
}

impl Store {
    /// The deployments of `project`'s `env` that ended in the `days` days ending at `now`.
    async fn ended_in(
        &self,
        project: &ProjectName,
        env: &EnvName,
        days: u32,
        now: Millis,
    ) -> Result<Vec<Ended>> {
        let (project, env) = (project.to_string(), env.to_string());
        let (since, until) = dora::window(days, now);
        self.read(move |c| Box::pin(async move { ended(c, &project, &env, since, until).await }))
            .await
    }

    /// The DORA figures of `project`'s `env` over the `days` days ending at `now`.
    pub async fn dora(
        &self,
        project: &ProjectName,
        env: &EnvName,
        days: u32,
        now: Millis,
    ) -> Result<Figures> {
        let ended = self.ended_in(project, env, days, now).await?;
        Ok(dora::figures(
            project.as_str(),
            env.as_str(),
            days,
            now,
            &ended,
        ))
    }

    /// The same window day by day (UTC), oldest first, days without deployments included.
    pub async fn dora_days(
        &self,
        project: &ProjectName,
        env: &EnvName,
        days: u32,
        now: Millis,
    ) -> Result<Vec<Day>> {
        let ended = self.ended_in(project, env, days, now).await?;
        Ok(dora::days(days, now, &ended))
    }

    /// [`Self::dora`] and [`Self::dora_days`] from one read (a page that shows both).
    pub async fn dora_with_days(
        &self,
        project: &ProjectName,
        env: &EnvName,
        days: u32,
        now: Millis,
    ) -> Result<(Figures, Vec<Day>)> {
        let ended = self.ended_in(project, env, days, now).await?;
        let figures = dora::figures(project.as_str(), env.as_str(), days, now, &ended);
        Ok((figures, dora::days(days, now, &ended)))
    }
}
