//! Deliveries, releases, their timeline, and tags.

use sqlx::Row;

use super::model::{Delivery, Ingested, NewDelivery, NewRelease, Release, ReleaseEvent, TagRow};
use super::{Result, Store, Tx, now_ms, sql};
use crate::domain::ReleaseStatus;

impl Store {
    pub async fn release(&self, id: i64) -> Result<Option<Release>> {
        let sql = format!("SELECT {} FROM releases WHERE id = $1", Release::COLUMNS);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Release::from_row).transpose()
    }

    /// Releases, newest first.
    pub async fn releases(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<Release>> {
        let sql = format!(
            "SELECT {} FROM releases WHERE id < $1 ORDER BY id DESC LIMIT $2",
            Release::COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before_id.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Release::from_row).collect()
    }

    pub async fn events(&self, release_id: i64) -> Result<Vec<ReleaseEvent>> {
        let rows = sqlx::query(
            "SELECT at, step, message FROM release_events WHERE release_id = $1 ORDER BY id",
        )
        .bind(release_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReleaseEvent {
                    at: r.try_get("at")?,
                    step: r.try_get("step")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    /// Timeline events of every release after event id `after`, for the demo's live view.
    pub async fn events_since(&self, after: i64) -> Result<Vec<(i64, i64, ReleaseEvent)>> {
        let rows = sqlx::query("SELECT id, release_id, at, step, message FROM release_events WHERE id > $1 ORDER BY id")
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("release_id")?,
                    ReleaseEvent {
                        at: r.try_get("at")?,
                        step: r.try_get("step")?,
                        message: r.try_get("message")?,
                    },
                ))
            })
            .collect()
    }

    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        let sql = format!("SELECT {} FROM deliveries WHERE id = $1", Delivery::COLUMNS);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Delivery::from_row).transpose()
    }

    pub async fn deliveries_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM deliveries")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Tags Hoist knows for a project's commit (full hash or unambiguous prefix).
    pub async fn tags_for_commit(
        &self,
        project: &str,
        env: &str,
        commit: &str,
    ) -> Result<Vec<TagRow>> {
        let rows = sqlx::query(
            "SELECT project, env, name, commit_sha, release_id, origin FROM tags
             WHERE project = $1 AND env = $2 AND (commit_sha = $3 OR substr(commit_sha, 1, length($3)) = $3)
             ORDER BY major DESC, minor DESC, patch DESC",
        )
        .bind(project)
        .bind(env)
        .bind(commit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tag_from_row).collect()
    }

    /// Every tag of one project's environment that Hoist knows, for skipping taken versions.
    pub async fn known_tags(&self, project: &str, env: &str) -> Result<Vec<TagRow>> {
        let rows = sqlx::query(
            "SELECT project, env, name, commit_sha, release_id, origin FROM tags WHERE project = $1 AND env = $2",
        )
        .bind(project)
        .bind(env)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tag_from_row).collect()
    }
}

/// [`sql::INSERT_DELIVERY`] or [`sql::INSERT_DELIVERY_ONCE`] with a delivery's values.
fn delivery_query<'q>(
    statement: &'static str,
    d: &'q NewDelivery,
    outcome: &'q str,
    release_id: Option<i64>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(statement)
        .bind(d.source)
        .bind(&d.event_at)
        .bind(d.key.as_deref())
        .bind(&d.event)
        .bind(d.client_ip.as_deref())
        .bind(now_ms())
        .bind(&d.body)
        .bind(outcome)
        .bind(release_id)
}

/// A tag to record.
pub struct NewTag<'a> {
    pub project: &'a str,
    pub env: &'a str,
    pub name: &'a str,
    pub commit: &'a str,
    pub version: crate::pipeline::version::Version,
    pub release_id: Option<i64>,
    /// `hoist` (made by Hoist), `scm` (found in the repository), `build` (named by a build).
    pub origin: &'a str,
}

fn tag_from_row(r: &sqlx::any::AnyRow) -> Result<TagRow> {
    Ok(TagRow {
        project: r.try_get("project")?,
        env: r.try_get("env")?,
        name: r.try_get("name")?,
        commit: r.try_get("commit_sha")?,
        release_id: r.try_get("release_id")?,
        origin: r.try_get("origin")?,
    })
}

impl Tx {
    pub(super) async fn find_duplicate(&mut self, d: &NewDelivery) -> Result<Option<Ingested>> {
        let Some(key) = &d.key else { return Ok(None) };
        let row = sqlx::query(sql::FIND_DUPLICATE)
            .bind(d.source)
            .bind(&d.event_at)
            .bind(key)
            .fetch_optional(self.conn())
            .await?;
        row.map(|r| {
            Ok(Ingested::Duplicate {
                delivery_id: r.try_get("id")?,
                release_id: r.try_get("release_id")?,
            })
        })
        .transpose()
    }

    pub(super) async fn insert_delivery(
        &mut self,
        d: &NewDelivery,
        outcome: &str,
        release_id: Option<i64>,
    ) -> Result<i64> {
        let row = delivery_query(sql::INSERT_DELIVERY, d, outcome, release_id)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Records a delivery unless its key was seen before (`None`: a duplicate, nothing written).
    pub(super) async fn insert_delivery_once(
        &mut self,
        d: &NewDelivery,
        outcome: &str,
    ) -> Result<Option<i64>> {
        let row = delivery_query(sql::INSERT_DELIVERY_ONCE, d, outcome, None)
            .fetch_optional(self.conn())
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Updates what a delivery led to (a build event, once its job has decided).
    pub async fn set_delivery_outcome(
        &mut self,
        id: i64,
        outcome: &str,
        release_id: Option<i64>,
    ) -> Result<()> {
        sqlx::query("UPDATE deliveries SET outcome = $1, release_id = COALESCE($2, release_id) WHERE id = $3")
            .bind(outcome)
            .bind(release_id)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub(super) async fn open_release(
        &mut self,
        project: &str,
        env: &str,
        commit: &str,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(sql::OPEN_RELEASE)
            .bind(project)
            .bind(env)
            .bind(commit)
            .fetch_optional(self.conn())
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    pub async fn insert_release(&mut self, r: &NewRelease) -> Result<i64> {
        let now = now_ms();
        let row = sqlx::query(sql::INSERT_RELEASE)
            .bind(&r.project)
            .bind(&r.env)
            .bind(&r.repo)
            .bind(&r.commit)
            .bind(r.issue.as_deref())
            .bind(ReleaseStatus::Received.as_str())
            .bind(now)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn release(&mut self, id: i64) -> Result<Option<Release>> {
        let sql = format!("SELECT {} FROM releases WHERE id = $1", Release::COLUMNS);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(Release::from_row).transpose()
    }

    /// The most recent release of a project that carries `tag` or was made for `commit`.
    pub async fn release_for_build(
        &mut self,
        project: &str,
        tag: &str,
        commit: &str,
    ) -> Result<Option<Release>> {
        let sql = format!(
            "SELECT {} FROM releases WHERE project = $1 AND (tag = $2 OR full_commit = $3 OR commit_sha = $3) ORDER BY CASE WHEN tag = $2 THEN 1 ELSE 0 END DESC, id DESC LIMIT 1",
            Release::COLUMNS
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(tag)
            .bind(commit)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(Release::from_row).transpose()
    }

    pub async fn add_event(&mut self, release_id: i64, step: &str, message: &str) -> Result<()> {
        sqlx::query(sql::ADD_EVENT)
            .bind(release_id)
            .bind(now_ms())
            .bind(step)
            .bind(message)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn set_commit_verified(&mut self, id: i64, full_commit: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query("UPDATE releases SET full_commit = $1, commit_verified_at = COALESCE(commit_verified_at, $2), updated_at = $2 WHERE id = $3")
            .bind(full_commit)
            .bind(now)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn set_tagged(
        &mut self,
        id: i64,
        tag: &str,
        version: &str,
        reused: bool,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE releases SET tag = $1, version = $2, tag_reused = $3, status = $4, tagged_at = $5, updated_at = $5
             WHERE id = $6 AND status = 'received'",
        )
        .bind(tag)
        .bind(version)
        .bind(i64::from(reused))
        .bind(ReleaseStatus::Tagged.as_str())
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records a build outcome on a release. `success` moves it to built, anything else to
    /// build-failed (terminal).
    pub async fn set_built(
        &mut self,
        id: i64,
        status: &str,
        build_url: Option<&str>,
        success: bool,
    ) -> Result<()> {
        let now = now_ms();
        let (new_status, open, finished) = if success {
            (ReleaseStatus::Built, 1_i64, None)
        } else {
            (ReleaseStatus::BuildFailed, 0, Some(now))
        };
        sqlx::query(
            "UPDATE releases SET build_status = $1, build_url = COALESCE($2, build_url), status = $3, built_at = $4,
             is_open = $5, finished_at = $6, updated_at = $4 WHERE id = $7",
        )
        .bind(status)
        .bind(build_url)
        .bind(new_status.as_str())
        .bind(now)
        .bind(open)
        .bind(finished)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_deploy_triggered(&mut self, id: i64, event_id: Option<&str>) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE releases SET deploy_event_id = $1, status = $2, deploy_triggered_at = $3, finished_at = $3,
             is_open = 0, updated_at = $3 WHERE id = $4",
        )
        .bind(event_id)
        .bind(ReleaseStatus::DeployTriggered.as_str())
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_failed(&mut self, id: i64, error: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE releases SET status = $1, error = $2, is_open = 0, finished_at = $3, updated_at = $3 WHERE id = $4",
        )
        .bind(ReleaseStatus::Failed.as_str())
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_slack_ts(&mut self, id: i64, ts: &str) -> Result<()> {
        sqlx::query("UPDATE releases SET slack_ts = COALESCE(slack_ts, $1) WHERE id = $2")
            .bind(ts)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records a tag. A tag already known (same project and name) is left as it is; the answer
    /// says which commit it is on.
    pub async fn record_tag(&mut self, t: &NewTag<'_>) -> Result<String> {
        let (project, env, name, commit, version, release_id, origin) = (
            t.project,
            t.env,
            t.name,
            t.commit,
            t.version,
            t.release_id,
            t.origin,
        );
        sqlx::query(
            "INSERT INTO tags (project, env, name, commit_sha, major, minor, patch, release_id, origin, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (project, name) DO NOTHING",
        )
        .bind(project)
        .bind(env)
        .bind(name)
        .bind(commit)
        .bind(version.major as i64)
        .bind(version.minor as i64)
        .bind(version.patch as i64)
        .bind(release_id)
        .bind(origin)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        let row = sqlx::query("SELECT commit_sha FROM tags WHERE project = $1 AND name = $2")
            .bind(project)
            .bind(name)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get("commit_sha")?)
    }
}

/// A tag someone pushed to the repository by hand, of a configured family (`origin = "push"`).
#[derive(Debug, Clone)]
pub struct PushedTag {
    pub project: String,
    pub env: String,
    pub name: String,
    pub commit: String,
    pub version: crate::pipeline::version::Version,
}

impl Store {
    /// Records a Bitbucket push delivery and the family tags it brought, in one transaction, so
    /// that version allocation ([`Store::known_tags`]) sees tags made outside Hoist. A delivery
    /// whose key was seen before changes nothing; a tag already known keeps its first record.
    pub async fn ingest_push(
        &self,
        delivery: NewDelivery,
        outcome: &str,
        tags: Vec<PushedTag>,
    ) -> Result<Ingested> {
        let outcome = outcome.to_string();
        self.with_tx(|tx| {
            let (delivery, outcome, tags) = (delivery.clone(), outcome.clone(), tags.clone());
            Box::pin(async move {
                if let Some(dup) = tx.find_duplicate(&delivery).await? {
                    return Ok(dup);
                }
                let delivery_id = tx.insert_delivery(&delivery, &outcome, None).await?;
                for t in &tags {
                    tx.record_tag(&NewTag {
                        project: &t.project,
                        env: &t.env,
                        name: &t.name,
                        commit: &t.commit,
                        version: t.version,
                        release_id: None,
                        origin: "push",
                    })
                    .await?;
                }
                Ok(Ingested::Ignored { delivery_id })
            })
        })
        .await
    }
}
