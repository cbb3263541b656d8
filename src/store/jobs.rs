//! The durable job queue.
//!
//! A job is `queued` until a worker claims it (`running`, with a lease), then `done` or, after its
//! last attempt, `failed` (kept, never deleted, and retryable by hand). Jobs of one lane run one
//! at a time in id order, on one replica or several: the claim takes only the first unfinished
//! job of a lane with none of it running, and the unique index `jobs_running_lane` holds that rule
//! where two replicas' claims meet at the same instant.

use std::sync::atomic::Ordering;

use super::db::{Conn, Row, params, time};
use super::{Result, Store, StoreError, records};
use crate::core::job::JobSpec;
use crate::core::plan::Changes;
use crate::domain::{JobAttempt, JobId, JobRecord, JobState, Millis, ReleaseId, now_ms};

/// A job this worker holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: JobId,
    pub spec: JobSpec,
    /// This attempt's number, from 1.
    pub attempt: i64,
    pub max_attempts: i64,
    pub worker: String,
    pub created_at: Millis,
}

const JOB_COLUMNS: &str = "id, kind, release_id, lane, state, attempts, max_attempts, run_at, last_error, created_at, updated_at, finished_at";

fn job_from(r: &Row) -> Result<JobRecord> {
    Ok(JobRecord {
        id: JobId(r.i64("id")?),
        kind: r.string("kind")?,
        release: r.opt_i64("release_id")?.map(ReleaseId),
        lane: r.string("lane")?,
        state: r.parse("state", |s| {
            JobState::parse(s).ok_or_else(|| format!("job state `{s}`"))
        })?,
        attempts: r.i64("attempts")?,
        max_attempts: r.i64("max_attempts")?,
        run_at: r.time("run_at")?,
        last_error: r.opt_string("last_error")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        finished_at: r.opt_time("finished_at")?,
    })
}

/// How a claim ends: the job's new state, when it runs again (a retry), the error it failed with,
/// and its attempt's outcome.
struct End<'a> {
    state: JobState,
    retry_at: Option<Millis>,
    error: Option<&'a str>,
    outcome: &'a str,
}

/// Ends this worker's claim on `job`: the job moves to its new state only if its row still names
/// this worker and attempt and is running; the attempt is closed either way. Answers whether the
/// claim was still held (if not, another worker took the job over, and its result counts).
async fn end_claim(c: &mut dyn Conn, job: &ClaimedJob, end: &End<'_>) -> Result<bool> {
    let now = now_ms();
    let finished = end.retry_at.is_none().then_some(now);
    let held = c
        .execute(
            "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = COALESCE($3, last_error),
                 lease_until = NULL, finished_at = $4, updated_at = $5
             WHERE id = $6 AND claimed_by = $7 AND attempts = $8 AND state = 'running'",
            params![
                end.state.as_str(),
                time(end.retry_at),
                end.error,
                time(finished),
                time(now),
                job.id.0,
                job.worker.as_str(),
                job.attempt
            ],
        )
        .await?
        == 1;
    c.execute(
        "UPDATE job_attempts SET finished_at = $1, outcome = $2, error = $3 WHERE job_id = $4 AND attempt = $5 AND worker = $6",
        params![
            time(now),
            if held { end.outcome } else { "lost lease" },
            end.error,
            job.id.0,
            job.attempt,
            job.worker.as_str()
        ],
    )
    .await?;
    Ok(held)
}

/// A running job whose worker went silent (its lease expired) comes first, then the oldest due
/// queued job. Either must be the first unfinished job of its lane, and no other job of the lane
/// may be running (a later one runs while an earlier one, retried by hand, is queued again). The
/// state test is written as the partial index `jobs_active_lane` states it, so that both backends
/// see the index answers it. `{lock}` is PostgreSQL's row lock, empty on SQLite.
const CLAIM: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, claimed_by = $2, updated_at = $3
     WHERE id = COALESCE(
        (SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_until < $3 AND {free}
         ORDER BY j.lease_until LIMIT 1 {lock}),
        (SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.run_at <= $3 AND {free}
         ORDER BY j.run_at, j.id LIMIT 1 {lock}))
     RETURNING id, payload, attempts, max_attempts, created_at";

const LANE_FREE: &str =
    "NOT EXISTS (SELECT 1 FROM jobs e WHERE e.lane = j.lane AND e.state IN ('queued', 'running')
     AND (e.id < j.id OR (e.state = 'running' AND e.id <> j.id)))";

fn claimed_from(r: &Row, worker: &str) -> Result<ClaimedJob> {
    let id = JobId(r.i64("id")?);
    let payload = r.string("payload")?;
    Ok(ClaimedJob {
        id,
        spec: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("job {id} payload: {e}")))?,
        attempt: r.i64("attempts")?,
        max_attempts: r.i64("max_attempts")?,
        worker: worker.to_string(),
        created_at: r.time("created_at")?,
    })
}

async fn claim(c: &mut dyn Conn, worker: &str, lease_ms: i64) -> Result<Option<ClaimedJob>> {
    let now = now_ms();
    if c.is_postgres() {
        // One statement, so one round trip: the claim and its attempt's record commit together.
        // Planned at each call: a plan cached while the queue was new read every unfinished job
        // per claim once thousands waited for a retry (docs/PERFORMANCE.md).
        let sql = format!(
            "WITH claimed AS ({}),
             attempt AS (INSERT INTO job_attempts (job_id, attempt, worker, started_at)
                         SELECT id, attempts, $2, $3 FROM claimed)
             SELECT id, payload, attempts, max_attempts, created_at FROM claimed",
            CLAIM
                .replace("{free}", LANE_FREE)
                .replace("{lock}", "FOR UPDATE SKIP LOCKED")
        );
        let rows = c
            .query_fresh(&sql, params![time(now + lease_ms), worker, time(now)])
            .await?;
        return rows.first().map(|r| claimed_from(r, worker)).transpose();
    }
    // SQLite has no writes inside WITH: two statements in the writer's transaction.
    let sql = CLAIM.replace("{free}", LANE_FREE).replace("{lock}", "");
    let Some(row) = c
        .query_opt(&sql, params![time(now + lease_ms), worker, time(now)])
        .await?
    else {
        return Ok(None);
    };
    let job = claimed_from(&row, worker)?;
    c.execute(
        "INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES ($1, $2, $3, $4)",
        params![job.id.0, job.attempt, worker, time(now)],
    )
    .await?;
    Ok(Some(job))
}

impl Store {
    /// Claims the next runnable job: queued and due, or running with an expired lease (its worker
    /// died), and first in its lane with no other job of the lane running.
    pub async fn claim_job(&self, worker: &str, lease_ms: i64) -> Result<Option<ClaimedJob>> {
        // The worker's loops claim one at a time: concurrent claims from one process would only
        // race for the same first rows. Other replicas' claims meet at the database, where
        // SKIP LOCKED settles it.
        let _one = self.claiming.lock().await;
        self.claims.fetch_add(1, Ordering::Relaxed);
        let worker = worker.to_string();
        let mut tries = 0;
        loop {
            let w = worker.clone();
            let claimed = self
                .write_alone(move |c| {
                    let w = w.clone();
                    Box::pin(async move { claim(c, &w, lease_ms).await })
                })
                .await;
            match claimed {
                // A job of the lane born running in a commit this claim could not see made it fail
                // on `jobs_running_lane`: claimed again, the lane check sees it.
                Err(e) if e.is_conflict() && tries < 3 => {
                    tracing::debug!(error = %e, "a claim met a job started in its lane meanwhile; claiming again");
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Extends a claimed job's lease; `false` if the claim was lost.
    pub async fn renew_lease(&self, job: &ClaimedJob, lease_ms: i64) -> Result<bool> {
        let job = job.clone();
        self.write_alone(move |c| {
            let job = job.clone();
            Box::pin(async move {
                let n = c
                    .execute(
                        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND claimed_by = $3 AND attempts = $4 AND state = 'running'",
                        params![
                            time(now_ms() + lease_ms),
                            job.id.0,
                            job.worker.as_str(),
                            job.attempt
                        ],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// Marks a claimed job done and writes `changes` with it, in one transaction. `false` (and
    /// nothing written) when this worker no longer holds the claim.
    pub async fn finish_job(
        &self,
        job: &ClaimedJob,
        outcome: &str,
        changes: Changes,
    ) -> Result<bool> {
        let (job, outcome, max) = (job.clone(), outcome.to_string(), self.max_attempts);
        self.write(move |c| {
            let (job, outcome, changes) = (job.clone(), outcome.clone(), changes.clone());
            Box::pin(async move {
                let end = End {
                    state: JobState::Done,
                    retry_at: None,
                    error: None,
                    outcome: &outcome,
                };
                if !end_claim(c, &job, &end).await? {
                    return Ok(false);
                }
                records::apply(c, &changes, max).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Records a failed attempt and queues the job again for `retry_at`.
    pub async fn retry_later(
        &self,
        job: &ClaimedJob,
        error: &str,
        retry_at: Millis,
    ) -> Result<bool> {
        let (job, error) = (job.clone(), error.to_string());
        self.write(move |c| {
            let (job, error) = (job.clone(), error.clone());
            Box::pin(async move {
                let end = End {
                    state: JobState::Queued,
                    retry_at: Some(retry_at),
                    error: Some(&error),
                    outcome: "error",
                };
                end_claim(c, &job, &end).await
            })
        })
        .await
    }

    /// Records the last attempt's failure: the job fails for good (kept, retryable by hand), and
    /// `changes` (what giving up means for its release) are written with it.
    pub async fn give_up(&self, job: &ClaimedJob, error: &str, changes: Changes) -> Result<bool> {
        let (job, error, max) = (job.clone(), error.to_string(), self.max_attempts);
        self.write(move |c| {
            let (job, error, changes) = (job.clone(), error.clone(), changes.clone());
            Box::pin(async move {
                let end = End {
                    state: JobState::Failed,
                    retry_at: None,
                    error: Some(&error),
                    outcome: "error",
                };
                if !end_claim(c, &job, &end).await? {
                    return Ok(false);
                }
                records::apply(c, &changes, max).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Puts a failed job back in the queue for a fresh set of attempts (`hoist retry`), with what
    /// `reopen(kind, release)` says retrying it means for its release. `false` when the job does
    /// not exist or has not failed.
    pub async fn retry_job(
        &self,
        id: JobId,
        reopen: fn(&str, Option<ReleaseId>) -> Changes,
    ) -> Result<bool> {
        let max = self.max_attempts;
        self.write(move |c| {
            Box::pin(async move {
                let now = now_ms();
                let n = c
                    .execute(
                        "UPDATE jobs SET state = 'queued', run_at = $1, attempts = 0, finished_at = NULL, updated_at = $1 WHERE id = $2 AND state = 'failed'",
                        params![time(now), id.0],
                    )
                    .await?;
                if n != 1 {
                    return Ok(false);
                }
                let row = c
                    .query_one("SELECT kind, release_id FROM jobs WHERE id = $1", params![id.0])
                    .await?;
                let changes = reopen(&row.string("kind")?, row.opt_i64("release_id")?.map(ReleaseId));
                records::apply(c, &changes, max).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Writes `changes` on their own, outside any job (a fact recorded while a job goes on).
    pub async fn apply(&self, changes: Changes) -> Result<Vec<JobId>> {
        let max = self.max_attempts;
        self.write(move |c| {
            let changes = changes.clone();
            Box::pin(async move { records::apply(c, &changes, max).await })
        })
        .await
    }

    pub async fn jobs_for_release(&self, release: ReleaseId) -> Result<Vec<JobRecord>> {
        self.read(move |c| {
            Box::pin(async move {
                let sql =
                    format!("SELECT {JOB_COLUMNS} FROM jobs WHERE release_id = $1 ORDER BY id");
                c.query(&sql, params![release.0])
                    .await?
                    .iter()
                    .map(job_from)
                    .collect()
            })
        })
        .await
    }

    pub async fn jobs_in_state(&self, state: JobState) -> Result<Vec<JobRecord>> {
        self.read(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY id");
                c.query(&sql, params![state.as_str()])
                    .await?
                    .iter()
                    .map(job_from)
                    .collect()
            })
        })
        .await
    }

    pub async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.read(move |c| {
            Box::pin(async move {
                let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
                c.query_opt(&sql, params![id.0])
                    .await?
                    .as_ref()
                    .map(job_from)
                    .transpose()
            })
        })
        .await
    }

    /// How many jobs are in each state.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>> {
        self.read(|c| {
            Box::pin(async move {
                c.query(
                    "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    let state = r.parse("state", |s| {
                        JobState::parse(s).ok_or_else(|| format!("job state `{s}`"))
                    })?;
                    Ok((state, r.i64("n")?))
                })
                .collect()
            })
        })
        .await
    }

    /// Every attempt at a job, first first.
    pub async fn job_attempts(&self, id: JobId) -> Result<Vec<JobAttempt>> {
        self.read(move |c| {
            Box::pin(async move {
                c.query(
                    "SELECT job_id, attempt, worker, started_at, finished_at, outcome, error FROM job_attempts WHERE job_id = $1 ORDER BY id",
                    params![id.0],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(JobAttempt {
                        job: JobId(r.i64("job_id")?),
                        attempt: r.i64("attempt")?,
                        worker: r.string("worker")?,
                        started_at: r.time("started_at")?,
                        finished_at: r.opt_time("finished_at")?,
                        outcome: r.opt_string("outcome")?,
                        error: r.opt_string("error")?,
                    })
                })
                .collect()
            })
        })
        .await
    }
}
