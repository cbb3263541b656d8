//! The durable job queue.
//!
//! A job is `queued` until a worker claims it (`running`, with a lease), then `done` or, after its
//! last attempt, `failed` (kept, never deleted, and retryable by hand). Jobs that share a `lane`
//! run one at a time in id order: tag creation for one project and environment is a lane, so two
//! releases there get consecutive versions without racing, on one replica or several.

use serde::Serialize;
use sqlx::Row;

use super::{Backend, Result, Store, StoreError, Tx, now_ms, sql};
use crate::domain::JobSpec;

#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub release_id: Option<i64>,
    pub lane: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

const JOB_COLUMNS: &str = "id, kind, release_id, lane, state, attempts, max_attempts, run_at, last_error, created_at, updated_at, finished_at";

impl JobRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            release_id: r.try_get("release_id")?,
            lane: r.try_get("lane")?,
            state: r.try_get("state")?,
            attempts: r.try_get("attempts")?,
            max_attempts: r.try_get("max_attempts")?,
            run_at: r.try_get("run_at")?,
            last_error: r.try_get("last_error")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            finished_at: r.try_get("finished_at")?,
        })
    }
}

/// A job this worker holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub spec: JobSpec,
    /// This attempt's number, from 1.
    pub attempt: i64,
    pub max_attempts: i64,
    pub worker: String,
    pub created_at: i64,
}

/// A claim a new job is born with: the worker that will run it at once, and for how long its
/// lease holds before another may take the job over. Saves the claim's own commit (on PostgreSQL
/// an fsync) and a wake-up between the step that makes a job and the one that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BornClaim {
    pub worker: String,
    pub lease_ms: i64,
}

impl ClaimedJob {
    /// The job `id` as [`Tx::enqueue_claimed`] made it, running under `claim` (its first attempt).
    pub fn born(id: i64, spec: JobSpec, max_attempts: u32, claim: &BornClaim) -> Self {
        Self {
            id,
            spec,
            attempt: 1,
            max_attempts: i64::from(max_attempts),
            worker: claim.worker.clone(),
            created_at: now_ms(),
        }
    }
}

impl Store {
    /// How many claims this store has made (each one statement or transaction, found a job or
    /// not): what an idle worker costs the database.
    pub async fn claims_made(&self) -> u64 {
        *self.claims.lock().await
    }

    /// Claims the next runnable job: queued and due, or running with an expired lease (its worker
    /// died), and first in its lane with no other job of the lane running.
    pub async fn claim_job(&self, worker: &str, lease_ms: i64) -> Result<Option<ClaimedJob>> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        // Two index-backed lookups: a running job whose worker went silent (its lease expired)
        // comes first, then the oldest due queued job. Either must be the first unfinished job
        // of its lane, and no other job of the lane may be running (a later one runs while an
        // earlier one, retried by hand, is queued again).
        // The state test is written as the partial index `jobs_active_lane` states it, so that
        // both backends see the index answers it.
        let lane_free = "NOT EXISTS (SELECT 1 FROM jobs e WHERE e.lane = j.lane AND e.state IN ('queued', 'running')
                                        AND (e.id < j.id OR (e.state = 'running' AND e.id <> j.id)))";
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, claimed_by = $2, updated_at = $3
             WHERE id = COALESCE(
                (SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_until < $3 AND {lane_free}
                 ORDER BY j.lease_until LIMIT 1 {lock}),
                (SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.run_at <= $3 AND {lane_free}
                 ORDER BY j.run_at, j.id LIMIT 1 {lock}))
             RETURNING id, payload, attempts, max_attempts, created_at"
        );
        // The worker's loops claim one at a time: concurrent claims from one process would only
        // race for the same first rows (on PostgreSQL each loser still locks, re-reads and skips
        // them). With 8 loops on PostgreSQL and 700 matched webhooks/s on 2 cores, ingest's p50
        // and p99 were 21-24 ms and 65-108 ms with concurrent claims, 6-8 ms and 23-27 ms one at
        // a time. Other replicas' claims still meet at the database, where SKIP LOCKED settles it.
        let mut one = self.claims.lock().await;
        *one += 1;
        let now = now_ms();
        let row = match self.backend {
            // One statement, so one round trip: the claim and its attempt record commit together.
            Backend::Postgres => {
                let sql = format!(
                    "WITH claimed AS ({sql}),
                     attempt AS (INSERT INTO job_attempts (job_id, attempt, worker, started_at)
                                 SELECT id, attempts, $2, $3 FROM claimed)
                     SELECT id, payload, attempts, max_attempts, created_at FROM claimed"
                );
                // Planned anew each time (an unnamed statement), with the table as it is now. A
                // cached plan is made once, for the table as it was: while the queue was new
                // PostgreSQL planned the lane check as a scan of every unfinished job, and with
                // thousands of jobs waiting for a retry each claim then read them all (1.3 ms
                // per claim under `auto_explain` at 1,600 webhooks/s, and one claim at a time).
                // Planned per call, it is an index lookup per candidate: 0.08-0.12 ms.
                //
                // A job of the same lane born running in a commit this claim could not see yet
                // makes it fail on `jobs_running_lane` once that commits: claimed again, the
                // lane check then sees it.
                let mut tries = 0;
                loop {
                    let claimed = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .persistent(false)
                        .bind(now + lease_ms)
                        .bind(worker)
                        .bind(now)
                        .fetch_optional(&self.pool)
                        .await;
                    match claimed {
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() && tries < 3 => {
                            tracing::debug!(error = %e, "a claim met a job started in its lane meanwhile; claiming again");
                            tries += 1;
                        }
                        claimed => break claimed?,
                    }
                }
            }
            // SQLite has no writes inside WITH: the two statements share a transaction.
            Backend::Sqlite => {
                let mut tx = self.begin().await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now + lease_ms)
                    .bind(worker)
                    .bind(now)
                    .fetch_optional(tx.conn())
                    .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                sqlx::query(sql::START_ATTEMPT)
                    .bind(row.try_get::<i64, _>("id")?)
                    .bind(row.try_get::<i64, _>("attempts")?)
                    .bind(worker)
                    .bind(now)
                    .execute(tx.conn())
                    .await?;
                tx.commit().await?;
                Some(row)
            }
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let attempt: i64 = row.try_get("attempts")?;
        let payload: String = row.try_get("payload")?;
        let spec = serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("job {id} payload: {e}")))?;
        Ok(Some(ClaimedJob {
            id,
            spec,
            attempt,
            max_attempts: row.try_get("max_attempts")?,
            worker: worker.to_string(),
            created_at: row.try_get("created_at")?,
        }))
    }

    /// Extends a claimed job's lease; `false` if the claim was lost.
    pub async fn renew_lease(&self, job: &ClaimedJob, lease_ms: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND claimed_by = $3 AND attempts = $4 AND state = 'running'")
            .bind(now_ms() + lease_ms)
            .bind(job.id)
            .bind(&job.worker)
            .bind(job.attempt)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn jobs_for_release(&self, release_id: i64) -> Result<Vec<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE release_id = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(release_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    pub async fn jobs_in_state(&self, state: &str) -> Result<Vec<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(JobRow::from_row).collect()
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(JobRow::from_row).transpose()
    }

    /// Counts of jobs per state, for health and tests.
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// Puts a failed job back in the queue for a fresh set of attempts (`hoist retry`). A release
    /// the job had failed is reopened at the step the job performs.
    pub async fn retry_job(&self, id: i64) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', run_at = $1, attempts = 0, finished_at = NULL, updated_at = $1 WHERE id = $2 AND state = 'failed'",
        )
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let row = sqlx::query("SELECT kind, release_id FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
        let kind: String = row.try_get("kind")?;
        if let Some(release_id) = row.try_get::<Option<i64>, _>("release_id")? {
            tx.reopen_release(release_id, &kind).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Queues a stored delivery's work again (`hoist replay`): a build event is handled anew; a
    /// ticket whose release failed is tagged again. Answers the new job's id.
    pub async fn replay_delivery(&self, d: &super::Delivery) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let job = match (d.source.as_str(), d.release_id) {
            ("circleci", _) => Some(
                tx.enqueue(
                    &JobSpec::HandleBuild { delivery_id: d.id },
                    &format!("build:replay:{}", d.id),
                    15,
                    0,
                )
                .await?,
            ),
            ("jira", Some(release_id)) => match tx.release(release_id).await? {
                Some(r) if r.status == crate::domain::ReleaseStatus::Failed && r.tag.is_none() => {
                    tx.reopen_release(release_id, "create_tag").await?;
                    Some(
                        tx.enqueue(
                            &JobSpec::CreateTag { release_id },
                            &format!("tag:{}:{}", r.project, r.env),
                            15,
                            0,
                        )
                        .await?,
                    )
                }
                _ => None,
            },
            _ => None,
        };
        tx.commit().await?;
        Ok(job)
    }

    /// Attempts of a job: (attempt, worker, started, finished, outcome, error).
    pub async fn job_attempts(&self, job_id: i64) -> Result<Vec<serde_json::Value>> {
        let rows = sqlx::query("SELECT attempt, started_at, finished_at, outcome, error FROM job_attempts WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(serde_json::json!({
                    "attempt": r.try_get::<i64, _>("attempt")?,
                    "started_at": crate::http::api::rfc3339(r.try_get::<i64, _>("started_at")?),
                    "finished_at": r.try_get::<Option<i64>, _>("finished_at")?.map(crate::http::api::rfc3339),
                    "outcome": r.try_get::<Option<String>, _>("outcome")?,
                    "error": r.try_get::<Option<String>, _>("error")?,
                }))
            })
            .collect()
    }
}

impl Tx {
    /// Reopens a failed release at the step a job of `kind` performs.
    pub async fn reopen_release(&mut self, release_id: i64, kind: &str) -> Result<()> {
        let status = match kind {
            "create_tag" => "received",
            "deploy" => "built",
            _ => return Ok(()),
        };
        sqlx::query("UPDATE releases SET status = $1, error = NULL, is_open = 1, finished_at = NULL, updated_at = $2 WHERE id = $3 AND status = 'failed'")
            .bind(status)
            .bind(now_ms())
            .bind(release_id)
            .execute(self.conn())
            .await?;
        self.add_event(
            release_id,
            "retried",
            &format!("{kind} queued again by hand"),
        )
        .await
    }

    /// Adds a job, runnable after `delay_ms`.
    pub async fn enqueue(
        &mut self,
        spec: &JobSpec,
        lane: &str,
        max_attempts: u32,
        delay_ms: i64,
    ) -> Result<i64> {
        let now = now_ms();
        let payload =
            serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = sqlx::query(sql::ENQUEUE)
            .bind(spec.kind())
            .bind(spec.release_id())
            .bind(lane)
            .bind(payload)
            .bind(i64::from(max_attempts))
            .bind(now + delay_ms)
            .bind(now)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Adds a job born claimed by `claim` (running, its first attempt open), or queued when an
    /// unfinished job is ahead of it in its lane. Answers the job's id, and whether it is claimed.
    pub async fn enqueue_claimed(
        &mut self,
        spec: &JobSpec,
        lane: &str,
        max_attempts: u32,
        claim: &BornClaim,
    ) -> Result<(i64, bool)> {
        let now = now_ms();
        let payload =
            serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let postgres = self.is_postgres();
        // PostgreSQL opens the first attempt in the same statement (one round trip); SQLite has
        // no writes inside WITH, so a second statement does it.
        let text = if postgres {
            format!(
                "WITH job AS ({}),
                 attempt AS (INSERT INTO job_attempts (job_id, attempt, worker, started_at)
                             SELECT id, 1, $7, $6 FROM job WHERE state = 'running')
                 SELECT id, state FROM job",
                sql::ENQUEUE_CLAIMED
            )
        } else {
            sql::ENQUEUE_CLAIMED.to_string()
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(text))
            .bind(spec.kind())
            .bind(spec.release_id())
            .bind(lane)
            .bind(payload)
            .bind(i64::from(max_attempts))
            .bind(now)
            .bind(&claim.worker)
            .bind(now + claim.lease_ms)
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else {
            // A job of the lane started running in a commit the check could not see: this one
            // waits behind it.
            return Ok((self.enqueue(spec, lane, max_attempts, 0).await?, false));
        };
        let id: i64 = row.try_get("id")?;
        let claimed = row.try_get::<String, _>("state")? == "running";
        if claimed && !postgres {
            sqlx::query(sql::START_ATTEMPT)
                .bind(id)
                .bind(1_i64)
                .bind(&claim.worker)
                .bind(now)
                .execute(self.conn())
                .await?;
        }
        Ok((id, claimed))
    }

    /// Marks a claimed job done. `false` (and nothing written) when this worker no longer holds the
    /// claim: another worker took the job over, and its result is the one that counts.
    pub async fn finish_job(&mut self, job: &ClaimedJob, outcome: &str) -> Result<bool> {
        self.end_claim(job, End::done(outcome)).await
    }

    /// Records a failed attempt: back to the queue at `retry_at`, or `failed` for good when it is
    /// `None`.
    pub async fn fail_job(
        &mut self,
        job: &ClaimedJob,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool> {
        self.end_claim(job, End::failed(error, retry_at)).await
    }

    /// Ends this worker's claim on `job` (see [`End`]): the job moves to its new state only if
    /// the row still names this worker and attempt and is running; the attempt is closed either
    /// way. Answers whether the claim was still held.
    async fn end_claim(&mut self, job: &ClaimedJob, end: End<'_>) -> Result<bool> {
        if self.is_postgres() {
            return end.on_postgres(job, self.conn()).await;
        }
        let held = end
            .query(job, false)
            .execute(self.conn())
            .await?
            .rows_affected()
            == 1;
        self.close_attempt(job, held, end.outcome, end.error)
            .await?;
        Ok(held)
    }

    /// Closes this worker's attempt (SQLite; on PostgreSQL [`Self::end_claim`]'s one statement
    /// does it). The job's own row changed only if the claim was still `held`: the update before
    /// this checked that.
    async fn close_attempt(
        &mut self,
        job: &ClaimedJob,
        held: bool,
        outcome: &str,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE job_attempts SET finished_at = $1, outcome = $2, error = $3 WHERE job_id = $4 AND attempt = $5 AND worker = $6")
            .bind(now_ms())
            .bind(if held { outcome } else { "lost lease" })
            .bind(error)
            .bind(job.id)
            .bind(job.attempt)
            .bind(&job.worker)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

/// How a claimed job ends: its new `state` (finished now unless it is queued again at
/// `retry_at`), `error` as its last error if given, and its attempt's `outcome`.
#[derive(Clone, Copy)]
struct End<'a> {
    state: &'a str,
    retry_at: Option<i64>,
    error: Option<&'a str>,
    outcome: &'a str,
}

impl<'a> End<'a> {
    fn done(outcome: &'a str) -> Self {
        Self {
            state: "done",
            retry_at: None,
            error: None,
            outcome,
        }
    }

    /// Back to the queue at `retry_at`, or `failed` for good when it is `None`.
    fn failed(error: &'a str, retry_at: Option<i64>) -> Self {
        Self {
            state: if retry_at.is_some() {
                "queued"
            } else {
                "failed"
            },
            retry_at,
            error: Some(error),
            outcome: "error",
        }
    }

    /// The job's update. On PostgreSQL it also closes the attempt, with the outcome the update
    /// tells, and answers the number of job rows it changed: one statement, so one round trip
    /// and, outside a transaction, a commit of its own.
    fn query(
        self,
        job: &'a ClaimedJob,
        postgres: bool,
    ) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
        const END: &str = "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = COALESCE($3, last_error),
             lease_until = NULL, finished_at = $4, updated_at = $5
             WHERE id = $6 AND claimed_by = $7 AND attempts = $8 AND state = 'running'";
        let sql = if postgres {
            format!(
                "WITH job AS ({END} RETURNING id),
                 attempt AS (UPDATE job_attempts SET finished_at = $5,
                                    outcome = CASE WHEN EXISTS (SELECT 1 FROM job) THEN $9 ELSE 'lost lease' END, error = $3
                             WHERE job_id = $6 AND attempt = $8 AND worker = $7)
                 SELECT COUNT(*) FROM job"
            )
        } else {
            END.to_string()
        };
        let now = now_ms();
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(self.state)
            .bind(self.retry_at)
            .bind(self.error)
            .bind(if self.retry_at.is_some() {
                None
            } else {
                Some(now)
            })
            .bind(now)
            .bind(job.id)
            .bind(&job.worker)
            .bind(job.attempt);
        if postgres {
            query.bind(self.outcome)
        } else {
            query
        }
    }

    /// PostgreSQL's one statement on `db`: in a transaction, or on the pool, committed alone.
    /// Answers whether the claim was still held.
    async fn on_postgres<'c, E>(self, job: &ClaimedJob, db: E) -> Result<bool>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let row = self.query(job, true).fetch_one(db).await?;
        Ok(row.try_get::<i64, _>(0)? == 1)
    }
}

impl Store {
    /// [`Tx::finish_job`] alone, committed at once.
    pub async fn finish_job(&self, job: &ClaimedJob, outcome: &str) -> Result<bool> {
        self.end_claim(job, End::done(outcome)).await
    }

    /// [`Tx::fail_job`] alone, committed at once.
    pub async fn fail_job(
        &self,
        job: &ClaimedJob,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool> {
        self.end_claim(job, End::failed(error, retry_at)).await
    }

    /// A claim's end as a transaction of its own: on PostgreSQL the one statement, autocommitted
    /// (one round trip instead of three: `BEGIN`, the statement, `COMMIT`).
    async fn end_claim(&self, job: &ClaimedJob, end: End<'_>) -> Result<bool> {
        if self.backend == Backend::Postgres {
            return end.on_postgres(job, &self.pool).await;
        }
        let mut tx = self.begin().await?;
        let held = tx.end_claim(job, end).await?;
        tx.commit().await?;
        Ok(held)
    }
}
