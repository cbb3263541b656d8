//! The store's API for the job queue: claiming, leases, a job's end with what it wrote, and what
//! people do by hand (retry a failed job).

use std::sync::atomic::Ordering;

use super::db::{params, time};
use super::error::Result;
use super::handle::Store;
use super::jobs::{ClaimedJob, End, JOB_COLUMNS, PG_LEASE_UNTIL, claim, end_claim, job_from};
use super::records;
use crate::core::plan::Changes;
use crate::domain::{JobAttempt, JobId, JobRecord, JobState, Millis, ReleaseId, now_ms};

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

    /// Lets the jobs `worker` has claimed be claimed again at once, all but those in `running`: a
    /// claim or a job's end whose answer was lost with its connection may have committed, and
    /// this process is not running those jobs. Claims younger than a second are left alone: their
    /// jobs may be on their way from the claim to running. Answers how many were let go.
    pub async fn release_lost_claims(&self, worker: &str, running: Vec<JobId>) -> Result<u64> {
        let worker = worker.to_string();
        self.write(move |c| {
            let (worker, running) = (worker.clone(), running.clone());
            Box::pin(async move {
                let held = c
                    .query(
                        "SELECT id FROM jobs WHERE claimed_by = $1 AND state = 'running' AND updated_at < $2",
                        params![worker.as_str(), time(now_ms() - 1_000)],
                    )
                    .await?;
                let mut let_go = 0;
                for row in held {
                    let id = JobId(row.i64("id")?);
                    if running.contains(&id) {
                        continue;
                    }
                    let_go += c
                        .execute(
                            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND claimed_by = $3 AND state = 'running'",
                            params![time(0), id.0, worker.as_str()],
                        )
                        .await?;
                }
                Ok(let_go)
            })
        })
        .await
    }

    /// Extends a claimed job's lease; `false` if the claim was lost.
    pub async fn renew_lease(&self, job: &ClaimedJob, lease_ms: i64) -> Result<bool> {
        let job = job.clone();
        self.write_alone(move |c| {
            let job = job.clone();
            Box::pin(async move {
                let sql = "UPDATE jobs SET lease_until = {until} WHERE id = $2 AND claimed_by = $3 AND attempts = $4 AND state = 'running'";
                let n = if c.is_postgres() {
                    let sql = sql.replace("{until}", PG_LEASE_UNTIL);
                    c.execute(
                        &sql,
                        params![lease_ms, job.id.0, job.worker.as_str(), job.attempt],
                    )
                    .await?
                } else {
                    let sql = sql.replace("{until}", "$1");
                    let until = time(now_ms() + lease_ms);
                    c.execute(
                        &sql,
                        params![until, job.id.0, job.worker.as_str(), job.attempt],
                    )
                    .await?
                };
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

    /// How many jobs are queued, running and failed: each counted on its own partial index
    /// (`jobs_queued`, `jobs_running`, `jobs_failed`), never over every job done (`/metrics`).
    pub async fn open_job_counts(&self) -> Result<Vec<(JobState, i64)>> {
        self.read(|c| {
            Box::pin(async move {
                let row = c
                    .query_one(
                        "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 'queued') AS queued,
                                (SELECT COUNT(*) FROM jobs WHERE state = 'running') AS running,
                                (SELECT COUNT(*) FROM jobs WHERE state = 'failed') AS failed",
                        &[],
                    )
                    .await?;
                [JobState::Queued, JobState::Running, JobState::Failed]
                    .into_iter()
                    .map(|s| Ok((s, row.i64(s.as_str())?)))
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
