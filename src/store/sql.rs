//! SQL text that both of the store's drivers run: sqlx (every statement, both backends) and
//! rusqlite (SQLite's ingest thread, [`super::sqlite_ingest`]). Written once with `$n`
//! placeholders: PostgreSQL numbers them, and SQLite binds `$n` by its first appearance, so every
//! statement here names `$1`, `$2`, ... first in that order.

pub const FIND_DUPLICATE: &str = "SELECT id, release_id FROM deliveries
     WHERE source = $1 AND event_at = $2 AND delivery_key = $3";

pub const INSERT_DELIVERY: &str = "INSERT INTO deliveries (source, event_at, delivery_key, event, client_ip, received_at, body, outcome, release_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";

/// [`INSERT_DELIVERY`] that does nothing (and returns no row) when the key was seen before.
pub const INSERT_DELIVERY_ONCE: &str = "INSERT INTO deliveries (source, event_at, delivery_key, event, client_ip, received_at, body, outcome, release_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (source, event_at, delivery_key) WHERE delivery_key IS NOT NULL DO NOTHING RETURNING id";

pub const OPEN_RELEASE: &str =
    "SELECT id FROM releases WHERE project = $1 AND env = $2 AND commit_sha = $3 AND is_open = 1";

pub const INSERT_RELEASE: &str =
    "INSERT INTO releases (project, env, repo, commit_sha, issue, status, received_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id";

pub const ADD_EVENT: &str =
    "INSERT INTO release_events (release_id, at, step, message) VALUES ($1, $2, $3, $4)";

pub const ENQUEUE: &str = "INSERT INTO jobs (kind, release_id, lane, payload, state, attempts, max_attempts, run_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7) RETURNING id";

/// [`ENQUEUE`], the job born claimed by worker `$7` with its lease until `$8` (its first attempt
/// running), unless an unfinished job is ahead of it in its lane: then queued, as [`ENQUEUE`]
/// would. Returns the id and the state it was born in; no row when a job of the lane started
/// running in a commit the check could not see (`jobs_running_lane`): the caller then enqueues
/// it queued.
pub const ENQUEUE_CLAIMED: &str = "INSERT INTO jobs (kind, release_id, lane, payload, state, attempts, max_attempts, run_at, created_at, updated_at, claimed_by, lease_until)
     SELECT $1, $2, $3, $4, s.state, CASE WHEN s.state = 'running' THEN 1 ELSE 0 END, $5, $6, $6, $6,
            CASE WHEN s.state = 'running' THEN $7 END, CASE WHEN s.state = 'running' THEN $8 END
     FROM (SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs e WHERE e.lane = $3 AND e.state IN ('queued', 'running'))
                       THEN 'queued' ELSE 'running' END AS state) s
     WHERE true
     ON CONFLICT (lane) WHERE state = 'running' DO NOTHING
     RETURNING id, state";

/// A job's attempt begins: (job, attempt, worker, started at).
pub const START_ATTEMPT: &str =
    "INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES ($1, $2, $3, $4)";
