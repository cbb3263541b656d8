//! The durable job queue.
//!
//! A job is `queued` until a worker claims it (`running`, with a lease), then `done` or, after its
//! last attempt, `failed` (kept, never deleted, and retryable by hand). Jobs of one lane run one
//! at a time in id order, on one replica or several: the claim takes only the first unfinished
//! job of a lane with none of it running, and the unique index `jobs_running_lane` holds that rule
//! where two replicas' claims meet at the same instant.

use super::db::{Conn, Row, params, time};
use super::error::{Result, StoreError};
use crate::core::job::JobSpec;
use crate::domain::{JobId, JobRecord, JobState, Millis, ReleaseId, now_ms};

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

pub(super) const JOB_COLUMNS: &str = "id, kind, release_id, lane, state, attempts, max_attempts, run_at, last_error, created_at, updated_at, finished_at";

pub(super) fn job_from(r: &Row) -> Result<JobRecord> {
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
pub(super) struct End<'a> {
    pub(super) state: JobState,
    pub(super) retry_at: Option<Millis>,
    pub(super) error: Option<&'a str>,
    pub(super) outcome: &'a str,
}

/// Ends this worker's claim on `job`: the job moves to its new state only if its row still names
/// this worker and attempt and is running; the attempt is closed either way. Answers whether the
/// claim was still held (if not, another worker took the job over, and its result counts).
pub(super) async fn end_claim(c: &mut dyn Conn, job: &ClaimedJob, end: &End<'_>) -> Result<bool> {
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

/// Lets every running job be claimed at once: the process that claimed them is gone (it held the
/// store's lock, which this process now holds).
pub(super) async fn release_claims(c: &mut dyn Conn) -> Result<()> {
    let n = c
        .execute(
            "UPDATE jobs SET lease_until = $1 WHERE state = 'running'",
            params![time(0)],
        )
        .await?;
    if n > 0 {
        tracing::info!(
            jobs = n,
            "took over the jobs a previous process had claimed"
        );
    }
    Ok(())
}

/// Leases on PostgreSQL are the database server's time, not the replicas': `$1` is the lease in
/// milliseconds. Replicas whose clocks differ by seconds still agree on when a lease ran out.
pub(super) const PG_LEASE_UNTIL: &str =
    "(statement_timestamp() + $1::bigint * interval '1 millisecond')";
const PG_NOW: &str = "statement_timestamp()";

/// A running job whose worker went silent (its lease expired) comes first, then the oldest due
/// queued job. Either must be the first unfinished job of its lane, and no other job of the lane
/// may be running (a later one runs while an earlier one, retried by hand, is queued again). The
/// state test is written as the partial index `jobs_active_lane` states it, so that both backends
/// see the index answers it. `{lock}` is PostgreSQL's row lock, empty on SQLite.
const CLAIM: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = {lease_until}, claimed_by = $2, updated_at = $3
     WHERE id = COALESCE(
        (SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_until < {now} AND {free}
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

pub(super) async fn claim(
    c: &mut dyn Conn,
    worker: &str,
    lease_ms: i64,
) -> Result<Option<ClaimedJob>> {
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
                .replace("{lease_until}", PG_LEASE_UNTIL)
                .replace("{now}", PG_NOW)
        );
        let rows = c
            .query_fresh(&sql, params![lease_ms, worker, time(now)])
            .await?;
        return rows.first().map(|r| claimed_from(r, worker)).transpose();
    }
    // SQLite has no writes inside WITH: two statements in the writer's transaction.
    let sql = CLAIM
        .replace("{free}", LANE_FREE)
        .replace("{lock}", "")
        .replace("{lease_until}", "$1")
        .replace("{now}", "$3");
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
