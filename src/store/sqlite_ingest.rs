//! SQLite's ingest writer: one OS thread with a rusqlite connection of its own on the store's file.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every statement to it and its
//! answer back: two thread wake-ups per statement, which is most of an ingest's cost and caps a
//! single writer far below what SQLite can commit. This thread instead takes a whole batch from
//! the channel, runs it with cached prepared statements in one `BEGIN IMMEDIATE` transaction
//! (each request inside its own savepoint, so one failure does not undo the others), commits, and
//! answers: one wake-up each way per request. It takes the store's in-process writer lock for
//! each batch, ahead of the async store's writers ([`super::write_lock`]), so it never competes
//! with them in SQLite's busy handler.
//!
//! The statements are the async store's ([`super::sql`]) and the steps mirror
//! [`super::Tx::apply_ingest`]; the tests of `tests/it` run both (SQLite and PostgreSQL).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use super::ingest::{
    Ingest, MAX_BATCH, RELEASE_STARTED, Request, Writer, batch, fail_all, joined_outcome,
    no_duplicate, take_waiting,
};
use super::model::{Ingested, NewDelivery, NewRelease};
use super::write_lock::WriteLock;
use super::{BornClaim, Result, StoreError, now_ms, sql};
use crate::domain::JobSpec;

/// The size the WAL file is cut back to when it starts over after a burst.
pub(super) const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How often the checkpointer copies committed WAL frames into the database file while writes
/// come in, and how often it looks when none came since its last turn.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(10);
const CHECKPOINT_IDLE: Duration = Duration::from_millis(250);

/// Frames the last checkpoint pass may leave for the one that holds the writer lock.
const TAIL_FRAMES: i64 = 64;

/// While requests come faster than [`GATHER_RATE`] a second (measured over windows of
/// [`RATE_WINDOW`]), a batch smaller than [`GATHER_UNTIL`] waits up to [`GATHER_FOR`], in steps of
/// [`GATHER_STEP`] (sleeps, which the kernel may stretch by some tens of microseconds each), for
/// more to join it. A commit has a fixed cost (its transaction, file locks, the WAL frames of every
/// page it touched, the wake-ups) that a bigger batch shares: at 4,000, 6,000 and 12,000
/// webhooks/s the process's CPU per webhook fell by 14-26% (docs/PERFORMANCE.md). Slower than
/// that, a wait gathers too few to pay for itself, and a request on a quiet store is applied at
/// once; the wait adds at most a few tenths of a millisecond to a request's answer.
const GATHER_RATE: f64 = 4_000.0;
const RATE_WINDOW: Duration = Duration::from_millis(10);
const GATHER_UNTIL: usize = 32;
const GATHER_FOR: Duration = Duration::from_micros(300);
const GATHER_STEP: Duration = Duration::from_micros(100);

/// Opens the connections (so that a failure is the caller's) and starts the ingest thread and
/// the checkpointer, which stops when the ingest thread does (the store dropped).
pub(super) fn spawn(path: &Path, fsync: bool, lock: Arc<WriteLock>) -> Result<Writer> {
    let conn = open(path, fsync)?;
    let checkpoints = open(path, fsync)?;
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = |name: &str| std::thread::Builder::new().name(name.into());
    let started =
        |e: std::io::Error| StoreError::Failed(format!("cannot start a store thread: {e}"));
    thread("hoist-checkpoint")
        .spawn({
            let lock = lock.clone();
            move || checkpoint(&checkpoints, &lock, &stopped)
        })
        .map_err(started)?;
    thread("hoist-ingest")
        .spawn(move || {
            run(conn, &lock, rx);
            drop(stop);
        })
        .map_err(started)?;
    Ok(Writer::new(tx))
}

/// Copies committed WAL frames into the database file, off the writer's path: SQLite's automatic
/// checkpoint runs inside a commit, so the writer and every request behind it would wait on its
/// copy and two fsyncs, several times a second under load.
///
/// A `PASSIVE` checkpoint blocks no one, but each pass copies only the frames committed before it
/// started, and SQLite starts the WAL over only once a checkpoint has caught up with the last
/// frame: under a steady stream of commits the file would grow without end. So every
/// [`CHECKPOINT_BUSY`] a few passes without the lock shrink what is left to a small tail, and one
/// pass with the in-process writer lock held copies that tail (mostly its two fsyncs), after
/// which the next write starts the WAL over. Frequent small checkpoints stall writers less than
/// rare big ones. Measured over 10 s at 15,800 webhooks/s: p99 5.4 ms every 10 ms, 9.5 ms every
/// 25 ms, 12 ms every 50 ms, 20 ms every 100 or 200 ms (1.2 ms with no checkpoint at all), for
/// 13% less throughput at saturation every 10 ms than every 100 ms.
fn checkpoint(conn: &Connection, lock: &WriteLock, stop: &std::sync::mpsc::Receiver<()>) {
    let passive = || conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
    // The WAL's length when it was last copied in full: an idle store skips its turn.
    let mut done = 0;
    let mut period = CHECKPOINT_IDLE;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(period) {
        let result = (|| {
            let mut frames = passive()?;
            if frames == done {
                period = CHECKPOINT_IDLE;
                return Ok(());
            }
            period = CHECKPOINT_BUSY;
            for _ in 0..4 {
                let now = passive()?;
                let behind = now - frames;
                frames = now;
                if behind < TAIL_FRAMES {
                    break;
                }
            }
            if frames > 0 {
                let _writer = lock.blocking();
                done = passive()?;
            }
            Ok::<_, rusqlite::Error>(())
        })();
        if let Err(error) = result {
            tracing::warn!(%error, "WAL checkpoint failed; retrying");
        }
    }
}

fn open(path: &Path, fsync: bool) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // The same settings as the pool's connections (journal_mode is the file's, set by the pool).
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    Ok(conn)
}

/// Until every sender is gone (the store dropped), applies what arrived together.
fn run(conn: Connection, lock: &WriteLock, mut rx: mpsc::Receiver<Request>) {
    let mut rate = Rate::new(Instant::now());
    while let Some(first) = rx.blocking_recv() {
        let batch = next_batch(first, &mut rx, &rate, Instant::now(), std::thread::sleep);
        let n = batch.len();
        let _writer = lock.ingest();
        apply_batch(&conn, batch);
        rate.count(n, Instant::now());
    }
}

/// Requests a second, over the last whole [`RATE_WINDOW`].
struct Rate {
    per_second: f64,
    since: Instant,
    requests: usize,
}

impl Rate {
    fn new(now: Instant) -> Self {
        Self {
            per_second: 0.0,
            since: now,
            requests: 0,
        }
    }

    /// Whether requests come faster than [`GATHER_RATE`]: the last whole window's rate, or, once
    /// the window in progress has run longer than a window (a quiet spell after a burst), its own.
    fn busy(&self, now: Instant) -> bool {
        self.ended(now).unwrap_or(self.per_second) >= GATHER_RATE
    }

    /// Counts `n` requests applied `now`; a window that ends takes the rate over its length (after
    /// a quiet spell, the whole spell's).
    fn count(&mut self, n: usize, now: Instant) {
        self.requests += n;
        if let Some(per_second) = self.ended(now) {
            *self = Self {
                per_second,
                since: now,
                requests: 0,
            };
        }
    }

    /// The rate of the window in progress, if it has run a window's length by `now`.
    fn ended(&self, now: Instant) -> Option<f64> {
        let elapsed = now.duration_since(self.since);
        (elapsed >= RATE_WINDOW).then(|| self.requests as f64 / elapsed.as_secs_f64())
    }
}

/// What one commit takes: `first` and what is waiting in `rx`, and, while the store is busy by
/// `rate` at `now`, what [`gather`] lets join it.
fn next_batch<T>(
    first: T,
    rx: &mut mpsc::Receiver<T>,
    rate: &Rate,
    now: Instant,
    wait: impl FnMut(Duration),
) -> Vec<T> {
    let mut batch = batch(first, rx);
    if rate.busy(now) {
        gather(&mut batch, rx, wait);
    }
    batch
}

/// Lets more requests join a small `batch` (see [`GATHER_UNTIL`]): `wait`s a step at a time,
/// taking what arrived after each, until the batch is big enough or [`GATHER_FOR`] has passed.
fn gather<T>(batch: &mut Vec<T>, rx: &mut mpsc::Receiver<T>, mut wait: impl FnMut(Duration)) {
    let mut waited = Duration::ZERO;
    while batch.len() < GATHER_UNTIL && waited < GATHER_FOR {
        wait(GATHER_STEP);
        waited += GATHER_STEP;
        take_waiting(batch, rx);
    }
}

fn apply_batch(conn: &Connection, batch: Vec<Request>) {
    // BEGIN and COMMIT as cached statements: rusqlite's `Transaction` parses them anew each time.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    if let Err(e) = run("BEGIN IMMEDIATE") {
        return fail_all(batch, &e);
    }
    let mut done = Vec::with_capacity(batch.len());
    for (op, reply) in batch {
        done.push((reply, in_savepoint(conn, &op)));
    }
    match run("COMMIT") {
        Ok(_) => {
            for (reply, r) in done {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = done.len(), "ingest batch commit failed");
            if !conn.is_autocommit() {
                let _ = run("ROLLBACK");
            }
            let message = e.to_string();
            for (reply, _) in done {
                let _ = reply.send(Err(StoreError::Failed(message.clone())));
            }
        }
    }
}

/// Applies one request inside a savepoint (prepared once, like every statement here), unless it
/// writes with one statement, which SQLite undoes by itself when it fails: a savepoint costs a
/// copy of every page the request touches (a recorded-only delivery, the most common request).
fn in_savepoint(c: &Connection, op: &Ingest) -> Result<Ingested> {
    if let Ingest::Delivery {
        build_lane: None, ..
    } = op
    {
        return apply(c, op);
    }
    c.prepare_cached("SAVEPOINT ingest")?.execute([])?;
    match apply(c, op) {
        Ok(v) => {
            c.prepare_cached("RELEASE ingest")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            c.prepare_cached("ROLLBACK TO ingest")?.execute([])?;
            c.prepare_cached("RELEASE ingest")?.execute([])?;
            Err(e)
        }
    }
}

/// The writes of one delivery (what [`super::Tx::apply_ingest`] does, on this connection).
fn apply(c: &Connection, op: &Ingest) -> Result<Ingested> {
    match op {
        Ingest::Delivery {
            delivery,
            outcome,
            build_lane,
            max_attempts,
            claim,
        } => {
            let Some(delivery_id) =
                insert_delivery(c, sql::INSERT_DELIVERY_ONCE, delivery, outcome, None)?
            else {
                return find_duplicate(c, delivery)?.ok_or_else(no_duplicate);
            };
            match build_lane {
                Some(lane) => {
                    let claimed_job = enqueue(
                        c,
                        &JobSpec::HandleBuild { delivery_id },
                        lane,
                        *max_attempts,
                        claim.as_ref(),
                    )?;
                    Ok(Ingested::Queued {
                        delivery_id,
                        claimed_job,
                    })
                }
                None => Ok(Ingested::Ignored { delivery_id }),
            }
        }
        Ingest::Release {
            delivery,
            release,
            max_attempts,
            claim,
        } => ingest_release(c, delivery, release, *max_attempts, claim.as_ref()),
    }
}

fn ingest_release(
    c: &Connection,
    delivery: &NewDelivery,
    release: &NewRelease,
    max_attempts: u32,
    claim: Option<&BornClaim>,
) -> Result<Ingested> {
    if let Some(dup) = find_duplicate(c, delivery)? {
        return Ok(dup);
    }
    let open: Option<i64> = c
        .prepare_cached(sql::OPEN_RELEASE)?
        .query_row(params![release.project, release.env, release.commit], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(id) = open {
        let delivery_id = inserted(insert_delivery(
            c,
            sql::INSERT_DELIVERY,
            delivery,
            &joined_outcome(id),
            Some(id),
        )?)?;
        add_event(c, id, &release.joined_message())?;
        return Ok(Ingested::Existing {
            release_id: id,
            delivery_id,
        });
    }
    let now = now_ms();
    c.prepare_cached(without_returning(sql::INSERT_RELEASE))?
        .execute(params![
            release.project,
            release.env,
            release.repo,
            release.commit,
            release.issue,
            crate::domain::ReleaseStatus::Received.as_str(),
            now
        ])?;
    let id = c.last_insert_rowid();
    let delivery_id = inserted(insert_delivery(
        c,
        sql::INSERT_DELIVERY,
        delivery,
        RELEASE_STARTED,
        Some(id),
    )?)?;
    add_event(c, id, &release.started_message())?;
    let claimed_job = enqueue(
        c,
        &JobSpec::CreateTag { release_id: id },
        &release.tag_lane(),
        max_attempts,
        claim,
    )?;
    Ok(Ingested::Created {
        release_id: id,
        delivery_id,
        claimed_job,
    })
}

fn find_duplicate(c: &Connection, d: &NewDelivery) -> Result<Option<Ingested>> {
    let Some(key) = &d.key else { return Ok(None) };
    Ok(c.prepare_cached(sql::FIND_DUPLICATE)?
        .query_row(params![d.source, d.event_at, key], |r| {
            Ok(Ingested::Duplicate {
                delivery_id: r.get(0)?,
                release_id: r.get(1)?,
            })
        })
        .optional()?)
}

/// Runs [`sql::INSERT_DELIVERY`] or [`sql::INSERT_DELIVERY_ONCE`]: the new id, or `None` when
/// the latter found the key taken.
fn insert_delivery(
    c: &Connection,
    statement: &str,
    d: &NewDelivery,
    outcome: &str,
    release_id: Option<i64>,
) -> Result<Option<i64>> {
    let inserted = c
        .prepare_cached(without_returning(statement))?
        .execute(params![
            d.source,
            d.event_at,
            d.key,
            d.event,
            d.client_ip,
            now_ms(),
            d.body,
            outcome,
            release_id
        ])?;
    Ok((inserted == 1).then(|| c.last_insert_rowid()))
}

/// `statement` without its closing `RETURNING id`, for an insert of one row whose id
/// `last_insert_rowid` then gives. SQLite runs `RETURNING` as a trigger, and a statement with a
/// trigger that may abort (a `NOT NULL` column) opens a statement journal: a copy of every page
/// it touches, taken before it writes the page.
fn without_returning(statement: &str) -> &str {
    statement
        .strip_suffix(" RETURNING id")
        .expect("an insert that returns its id")
}

fn inserted(id: Option<i64>) -> Result<i64> {
    id.ok_or_else(|| StoreError::Failed("an insert returned no id".into()))
}

fn add_event(c: &Connection, release_id: i64, message: &str) -> Result<()> {
    c.prepare_cached(sql::ADD_EVENT)?.execute(params![
        release_id,
        now_ms(),
        "received",
        message
    ])?;
    Ok(())
}

/// Enqueues a job, born claimed when `claim` is given and its lane is free (what
/// [`super::Tx::enqueue_claimed`] does): answers its id if so.
fn enqueue(
    c: &Connection,
    spec: &JobSpec,
    lane: &str,
    max_attempts: u32,
    claim: Option<&BornClaim>,
) -> Result<Option<i64>> {
    let payload = serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let now = now_ms();
    let (kind, release_id, max_attempts) =
        (spec.kind(), spec.release_id(), i64::from(max_attempts));
    if let Some(claim) = claim {
        let born: Option<(i64, String)> = c
            .prepare_cached(sql::ENQUEUE_CLAIMED)?
            .query_row(
                params![
                    kind,
                    release_id,
                    lane,
                    payload,
                    max_attempts,
                    now,
                    claim.worker,
                    now + claim.lease_ms
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match born {
            Some((id, state)) if state == "running" => {
                c.prepare_cached(sql::START_ATTEMPT)?.execute(params![
                    id,
                    1_i64,
                    claim.worker,
                    now
                ])?;
                return Ok(Some(id));
            }
            Some(_) => return Ok(None),
            // A job of the lane started running meanwhile: this one waits, queued.
            None => {}
        }
    }
    c.prepare_cached(without_returning(sql::ENQUEUE))?
        .execute(params![
            kind,
            release_id,
            lane,
            payload,
            max_attempts,
            now,
            now
        ])?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait that, instead of sleeping, lets `arrive` requests come in per step.
    fn arrivals(tx: &mpsc::Sender<u32>, arrive: u32) -> impl FnMut(Duration) + '_ {
        let mut next = 100;
        move |step| {
            assert_eq!(step, GATHER_STEP);
            for _ in 0..arrive {
                tx.try_send(next).unwrap();
                next += 1;
            }
        }
    }

    /// A rate of 10,000 requests a second over the window that ended at the returned instant.
    fn busy_rate() -> (Rate, Instant) {
        let start = Instant::now();
        let mut rate = Rate::new(start);
        rate.count(100, start + RATE_WINDOW);
        (rate, start + RATE_WINDOW)
    }

    #[test]
    fn a_quiet_store_applies_a_batch_at_once() {
        let (tx, mut rx) = mpsc::channel(MAX_BATCH);
        tx.try_send(2).unwrap();
        let start = Instant::now();
        let batch = next_batch(1, &mut rx, &Rate::new(start), start, |_| {
            panic!("waited on a quiet store")
        });
        assert_eq!(batch, [1, 2], "what was waiting joins at once");
    }

    #[test]
    fn a_busy_store_lets_a_small_batch_gather() {
        let (tx, mut rx) = mpsc::channel(MAX_BATCH);
        let (rate, now) = busy_rate();
        assert!(rate.busy(now));
        let mut steps = 0;
        let mut arrive = arrivals(&tx, GATHER_UNTIL as u32);
        let batch = next_batch(1, &mut rx, &rate, now, |step| {
            steps += 1;
            arrive(step);
        });
        assert_eq!(steps, 1);
        assert_eq!(batch.len(), 1 + GATHER_UNTIL);
    }

    #[test]
    fn a_busy_store_takes_what_arrives_until_the_batch_is_big_enough() {
        let (tx, mut rx) = mpsc::channel(MAX_BATCH);
        let mut batch = vec![1, 2];
        let mut steps = 0;
        let mut arrive = arrivals(&tx, 20);
        gather(&mut batch, &mut rx, |step| {
            steps += 1;
            arrive(step);
        });
        // 2 + 20 after the first step, 42 after the second: big enough, no third.
        assert_eq!(steps, 2);
        assert_eq!(batch.len(), 42);
        assert_eq!(batch[..3], [1, 2, 100]);
        assert_eq!(batch[41], 139, "in order of arrival");
    }

    #[test]
    fn a_busy_store_waits_no_longer_than_its_bound() {
        let (tx, mut rx) = mpsc::channel(MAX_BATCH);
        let mut batch = vec![1];
        let mut waited = Duration::ZERO;
        let mut arrive = arrivals(&tx, 1);
        gather(&mut batch, &mut rx, |step| {
            waited += step;
            arrive(step);
        });
        assert_eq!(waited, GATHER_FOR);
        assert_eq!(batch, [1, 100, 101, 102]);
    }

    #[test]
    fn the_rate_is_taken_over_whole_windows_and_falls_after_a_quiet_spell() {
        let start = Instant::now();
        let mut rate = Rate::new(start);
        rate.count(30, start + RATE_WINDOW / 2);
        assert_eq!(rate.per_second, 0.0, "no window has ended yet");
        rate.count(70, start + RATE_WINDOW);
        assert_eq!(rate.per_second, 100.0 / RATE_WINDOW.as_secs_f64());
        assert!(rate.busy(start + RATE_WINDOW * 3 / 2));
        // The first request after a quiet spell is not kept waiting on the burst's rate.
        assert!(!rate.busy(start + RATE_WINDOW + Duration::from_secs(1)));
        // One request after a second of silence: the rate is the silence's.
        rate.count(1, start + RATE_WINDOW + Duration::from_secs(1));
        assert_eq!(rate.per_second, 1.0);
        assert!(rate.per_second < GATHER_RATE);
    }
}
