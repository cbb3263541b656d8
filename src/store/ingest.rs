//! Recording inbound deliveries, with commits shared between requests.
//!
//! One commit per request caps ingest at the disk's commit rate. Instead, requests hand their
//! write to a writer, which applies everything that arrived together in one transaction, so that
//! one failure does not undo the others, and answers every request once that transaction is
//! committed. A 2xx still means durable: nobody is answered before the commit that holds their
//! write. On SQLite the writer is a thread with a connection of its own
//! ([`super::sqlite_ingest`], a savepoint per request); on PostgreSQL it is the task here, which
//! writes keyed deliveries with multi-row inserts and redoes a failed batch one request at a time.

use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::model::{Ingested, NewDelivery, NewRelease};
use super::{BornClaim, Result, Store, StoreError, Tx, now_ms};
use crate::domain::JobSpec;

/// A delivery's de-duplication key as the unique index orders it: (source, event time, key).
type DeliveryKey<'a> = (&'static str, &'a str, &'a str);

/// The most writes one transaction takes.
pub(super) const MAX_BATCH: usize = 256;

/// One inbound delivery to record, with what it starts.
#[derive(Debug, Clone)]
pub enum Ingest {
    /// A ticket: starts a release (or joins the open one for the commit) with its first job,
    /// born claimed by `claim` when given.
    Release {
        delivery: NewDelivery,
        release: NewRelease,
        max_attempts: u32,
        claim: Option<BornClaim>,
    },
    /// Any other delivery, with a `handle_build` job in `build_lane` (born claimed by `claim`
    /// when given) or nothing to do.
    Delivery {
        delivery: NewDelivery,
        outcome: String,
        build_lane: Option<String>,
        max_attempts: u32,
        claim: Option<BornClaim>,
    },
}

impl Ingest {
    /// The claim its job is to be born with, if any.
    pub fn claim(&self) -> Option<&BornClaim> {
        match self {
            Self::Release { claim, .. } | Self::Delivery { claim, .. } => claim.as_ref(),
        }
    }
}

pub(super) type Request = (Ingest, oneshot::Sender<Result<Ingested>>);

/// The handle requests use to reach the writer (thread or task).
#[derive(Clone)]
pub(crate) struct Writer(mpsc::Sender<Request>);

impl Writer {
    pub(super) fn new(tx: mpsc::Sender<Request>) -> Self {
        Self(tx)
    }

    /// Starts a writer task on `store` (a handle without a writer of its own), for PostgreSQL.
    /// SQLite's writer is a thread of its own ([`super::sqlite_ingest`]).
    pub(crate) fn spawn_task(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(store, rx));
        Self(tx)
    }
}

impl Store {
    /// Records a delivery that starts (or joins) a release, with the release's first job. A
    /// delivery whose key was seen before changes nothing.
    pub async fn ingest_release(
        &self,
        delivery: NewDelivery,
        release: NewRelease,
        max_attempts: u32,
    ) -> Result<Ingested> {
        self.ingest(Ingest::Release {
            delivery,
            release,
            max_attempts,
            claim: None,
        })
        .await
    }

    /// Records a delivery and, unless it is a duplicate, a `handle_build` job for it in `lane`
    /// (`None`: recorded only, nothing to do).
    pub async fn ingest_delivery(
        &self,
        delivery: NewDelivery,
        outcome: &str,
        build_lane: Option<String>,
        max_attempts: u32,
    ) -> Result<Ingested> {
        self.ingest(Ingest::Delivery {
            delivery,
            outcome: outcome.to_string(),
            build_lane,
            max_attempts,
            claim: None,
        })
        .await
    }

    /// Records one delivery; answers once it is committed.
    pub async fn ingest(&self, op: Ingest) -> Result<Ingested> {
        let Some(writer) = &self.writer_task else {
            return self.ingest_alone(op).await;
        };
        let (reply, answer) = oneshot::channel();
        if writer.0.send((op, reply)).await.is_err() {
            return Err(StoreError::Failed("the store's writer stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Failed("the store's writer stopped".into())))
    }

    /// Records one delivery in a transaction of its own, retrying conflicts.
    async fn ingest_alone(&self, op: Ingest) -> Result<Ingested> {
        self.with_tx(|tx| {
            let op = op.clone();
            Box::pin(async move { tx.apply_ingest(&op).await })
        })
        .await
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.recv().await {
        apply_batch(&store, batch(first, &mut rx)).await;
    }
}

/// `first` and whatever else is waiting already, up to [`MAX_BATCH`]: what one commit takes.
pub(super) fn batch<T>(first: T, rx: &mut mpsc::Receiver<T>) -> Vec<T> {
    let mut batch = vec![first];
    take_waiting(&mut batch, rx);
    batch
}

/// Adds to `batch` what is waiting in `rx`, up to [`MAX_BATCH`] in all.
pub(super) fn take_waiting<T>(batch: &mut Vec<T>, rx: &mut mpsc::Receiver<T>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(r) => batch.push(r),
            Err(_) => break,
        }
    }
}

/// Applies a batch in one transaction ([`Tx::apply_batch`]). PostgreSQL aborts a transaction at
/// its first error, and a savepoint per request would double the round trips, so the batch runs
/// without them; when a request fails (another replica won a unique key, say), the batch is
/// rolled back and every request is applied alone, where a conflict's retry finds what the other
/// writer committed.
async fn apply_batch(store: &Store, batch: Vec<Request>) {
    // A batch of recorded-only CircleCI deliveries (most of a busy server's batches) is one
    // statement ([`padded`]), atomic by itself: it commits on its own, without the round trips of
    // `BEGIN` and `COMMIT`. If anything after it fails, the fallback below finds what it
    // recorded as duplicates.
    let one_statement = batch.len() <= STATEMENT_ROWS
        && batch.iter().all(|(op, _)| {
            matches!(op, Ingest::Delivery { delivery, build_lane: None, claim: None, .. } if delivery.key.is_some())
        });
    let tx = if one_statement {
        store.autocommit().await
    } else {
        store.begin().await
    };
    let mut tx = match tx {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, &e),
    };
    let ops: Vec<&Ingest> = batch.iter().map(|(op, _)| op).collect();
    match tx.apply_batch(&ops).await {
        Ok(done) => {
            match tx.commit().await {
                Ok(()) => {
                    for ((_, reply), v) in batch.into_iter().zip(done) {
                        let _ = reply.send(Ok(v));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, writes = batch.len(), "ingest batch commit failed");
                    fail_all(batch, &e);
                }
            }
            return;
        }
        Err(e) => {
            tracing::debug!(error = %e, "an ingest in a batch failed; applying the batch one by one");
        }
    }
    let _ = tx.rollback().await;
    for (op, reply) in batch {
        let _ = reply.send(store.ingest_alone(op).await);
    }
}

/// Answers every request of a batch that could not be written with the reason.
pub(super) fn fail_all(batch: Vec<Request>, error: &dyn std::fmt::Display) {
    let message = error.to_string();
    for (_, reply) in batch {
        let _ = reply.send(Err(StoreError::Failed(message.clone())));
    }
}

/// The most rows one multi-row statement takes. Statements have a power of two of rows (1, 2, 4,
/// ... 64), so each connection prepares at most seven shapes of each.
const STATEMENT_ROWS: usize = 64;

/// Keyed deliveries go in whole: up to [`STATEMENT_ROWS`] in one statement of the next power of
/// two rows, the last row repeated to fill it (the conflict clause skips the repeats). A statement
/// is a round trip: 10 deliveries take one statement of 16 rows.
fn padded<T>(rows: &[T]) -> impl Iterator<Item = (&[T], usize)> {
    rows.chunks(STATEMENT_ROWS)
        .map(|c| (c, c.len().next_power_of_two()))
}

/// Build jobs have no key to repeat rows under: they are cut into statements of the largest power
/// of two rows that fits (37 = 32 + 4 + 1).
fn chunked<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let fits = rows.len().min(STATEMENT_ROWS);
        let size = 1 << fits.checked_ilog2()?;
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// `rows` tuples for a multi-row `VALUES`: `row(p)` writes one, where `p(k)` is the placeholder
/// of its `k`th parameter (from 1), and each row takes `width` parameters.
fn values(rows: usize, width: usize, row: impl Fn(&dyn Fn(usize) -> String) -> String) -> String {
    (0..rows)
        .map(|r| row(&|k| format!("${}", r * width + k)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Tx {
    /// The writes of a batch, answered in its order. Keyed deliveries (every CircleCI webhook)
    /// go in with one multi-row statement per chunk, their build jobs likewise, and the rest
    /// (tickets, keyless deliveries) one at a time: a round trip per chunk, not per request.
    pub(crate) async fn apply_batch(&mut self, ops: &[&Ingest]) -> Result<Vec<Ingested>> {
        let mut out: Vec<Option<Ingested>> = vec![None; ops.len()];
        // A delivery whose job is born claimed goes alone: there is an idle loop for it, so the
        // store is not busy, and the claim's lane check reads what is committed before it.
        let keyed: Vec<usize> = (0..ops.len())
            .filter(|&i| {
                matches!(ops[i], Ingest::Delivery { delivery, claim: None, .. } if delivery.key.is_some())
            })
            .collect();
        let mut ids = std::collections::HashMap::new();
        for (chunk, size) in padded(&keyed) {
            self.insert_deliveries_once(ops, chunk, size, &mut ids)
                .await?;
        }
        let mut claimed = std::collections::HashSet::new();
        let mut jobs = Vec::new();
        for &i in &keyed {
            let Ingest::Delivery {
                delivery,
                build_lane,
                max_attempts,
                ..
            } = ops[i]
            else {
                unreachable!("keyed holds deliveries only")
            };
            let key = (
                delivery.source,
                delivery.event_at.as_str(),
                delivery.key.as_deref().unwrap_or_default(),
            );
            out[i] = Some(match ids.get(&key) {
                // The first request with this key in the batch is the one recorded.
                Some(&delivery_id) if claimed.insert(key) => match build_lane {
                    Some(lane) => {
                        jobs.push((delivery_id, lane.as_str(), *max_attempts));
                        Ingested::Queued {
                            delivery_id,
                            claimed_job: None,
                        }
                    }
                    None => Ingested::Ignored { delivery_id },
                },
                Some(&delivery_id) => Ingested::Duplicate {
                    delivery_id,
                    release_id: None,
                },
                None => self.duplicate_of(delivery).await?,
            });
        }
        for chunk in chunked(&jobs) {
            self.enqueue_builds(chunk).await?;
        }
        for (i, op) in ops.iter().enumerate() {
            if out[i].is_none() {
                out[i] = Some(self.apply_ingest(op).await?);
            }
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every request answered"))
            .collect())
    }

    /// Inserts the deliveries `ops[i]` for `i` in `chunk` (all keyed), skipping keys taken, and
    /// notes the id of every row inserted under its (source, event time, key). The statement has
    /// `size` rows (at least the chunk's): the last delivery fills the rest.
    async fn insert_deliveries_once<'o>(
        &mut self,
        ops: &[&'o Ingest],
        chunk: &[usize],
        size: usize,
        ids: &mut std::collections::HashMap<DeliveryKey<'o>, i64>,
    ) -> Result<()> {
        let rows = values(size, 8, |p| {
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, NULL)",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8)
            )
        });
        let sql = format!(
            "INSERT INTO deliveries (source, event_at, delivery_key, event, client_ip, received_at, body, outcome, release_id)
             VALUES {rows} ON CONFLICT (source, event_at, delivery_key) WHERE delivery_key IS NOT NULL DO NOTHING
             RETURNING id, source, event_at, delivery_key"
        );
        let now = now_ms();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let mut sent = Vec::with_capacity(chunk.len());
        let last = chunk.last().copied().into_iter().cycle();
        for i in chunk.iter().copied().chain(last).take(size) {
            let Ingest::Delivery {
                delivery: d,
                outcome,
                ..
            } = ops[i]
            else {
                unreachable!("chunks hold deliveries only")
            };
            let key = d.key.as_deref().unwrap_or_default();
            sent.push((d.source, d.event_at.as_str(), key));
            query = query
                .bind(d.source)
                .bind(&d.event_at)
                .bind(key)
                .bind(&d.event)
                .bind(d.client_ip.as_deref())
                .bind(now)
                .bind(&d.body)
                .bind(outcome.as_str());
        }
        for row in query.fetch_all(self.conn()).await? {
            let (source, at, key): (String, String, String) = (
                row.try_get("source")?,
                row.try_get("event_at")?,
                row.try_get("delivery_key")?,
            );
            if let Some(&sent) = sent
                .iter()
                .find(|(s, a, k)| *s == source && *a == at && *k == key)
            {
                ids.insert(sent, row.try_get("id")?);
            }
        }
        Ok(())
    }

    /// One `handle_build` job per (delivery, lane, max attempts).
    async fn enqueue_builds(&mut self, jobs: &[(i64, &str, u32)]) -> Result<()> {
        let rows = values(jobs.len(), 5, |p| {
            format!(
                "({}, NULL, {}, {}, 'queued', 0, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(5),
                p(5)
            )
        });
        let sql = format!(
            "INSERT INTO jobs (kind, release_id, lane, payload, state, attempts, max_attempts, run_at, created_at, updated_at)
             VALUES {rows}"
        );
        let now = now_ms();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for &(delivery_id, lane, max_attempts) in jobs {
            let spec = JobSpec::HandleBuild { delivery_id };
            let payload =
                serde_json::to_string(&spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            query = query
                .bind(spec.kind())
                .bind(lane)
                .bind(payload)
                .bind(i64::from(max_attempts))
                .bind(now);
        }
        query.execute(self.conn()).await?;
        Ok(())
    }

    /// The writes of one delivery.
    pub(crate) async fn apply_ingest(&mut self, op: &Ingest) -> Result<Ingested> {
        match op {
            Ingest::Release {
                delivery,
                release,
                max_attempts,
                claim,
            } => {
                self.ingest_release(delivery, release, *max_attempts, claim.as_ref())
                    .await
            }
            Ingest::Delivery {
                delivery,
                outcome,
                build_lane,
                max_attempts,
                claim,
            } => {
                let Some(delivery_id) = self.insert_delivery_once(delivery, outcome).await? else {
                    return self.duplicate_of(delivery).await;
                };
                match build_lane {
                    Some(lane) => {
                        let claimed_job = self
                            .enqueue_maybe_claimed(
                                &JobSpec::HandleBuild { delivery_id },
                                lane,
                                *max_attempts,
                                claim.as_ref(),
                            )
                            .await?;
                        Ok(Ingested::Queued {
                            delivery_id,
                            claimed_job,
                        })
                    }
                    None => Ok(Ingested::Ignored { delivery_id }),
                }
            }
        }
    }

    async fn ingest_release(
        &mut self,
        delivery: &NewDelivery,
        release: &NewRelease,
        max_attempts: u32,
        claim: Option<&BornClaim>,
    ) -> Result<Ingested> {
        if let Some(dup) = self.find_duplicate(delivery).await? {
            return Ok(dup);
        }
        if let Some(id) = self
            .open_release(&release.project, &release.env, &release.commit)
            .await?
        {
            let delivery_id = self
                .insert_delivery(delivery, &joined_outcome(id), Some(id))
                .await?;
            self.add_event(id, "received", &release.joined_message())
                .await?;
            return Ok(Ingested::Existing {
                release_id: id,
                delivery_id,
            });
        }
        let id = self.insert_release(release).await?;
        let delivery_id = self
            .insert_delivery(delivery, RELEASE_STARTED, Some(id))
            .await?;
        self.add_event(id, "received", &release.started_message())
            .await?;
        let claimed_job = self
            .enqueue_maybe_claimed(
                &JobSpec::CreateTag { release_id: id },
                &release.tag_lane(),
                max_attempts,
                claim,
            )
            .await?;
        Ok(Ingested::Created {
            release_id: id,
            delivery_id,
            claimed_job,
        })
    }

    /// Enqueues a job, born claimed when `claim` is given and its lane is free: answers its id
    /// if so.
    async fn enqueue_maybe_claimed(
        &mut self,
        spec: &JobSpec,
        lane: &str,
        max_attempts: u32,
        claim: Option<&BornClaim>,
    ) -> Result<Option<i64>> {
        match claim {
            Some(claim) => {
                let (id, claimed) = self
                    .enqueue_claimed(spec, lane, max_attempts, claim)
                    .await?;
                Ok(claimed.then_some(id))
            }
            None => self
                .enqueue(spec, lane, max_attempts, 0)
                .await
                .map(|_| None),
        }
    }

    /// The earlier delivery with `d`'s key.
    async fn duplicate_of(&mut self, d: &NewDelivery) -> Result<Ingested> {
        self.find_duplicate(d).await?.ok_or_else(no_duplicate)
    }
}

/// A delivery's key conflicted (its insert did nothing) yet no delivery holds it.
pub(super) fn no_duplicate() -> StoreError {
    StoreError::Failed("a delivery key conflicted, but no delivery has it".into())
}

/// The outcome of the delivery that starts a release.
pub(super) const RELEASE_STARTED: &str = "release started";

/// The outcome of a delivery that joins release `id`, already open for its commit.
pub(super) fn joined_outcome(id: i64) -> String {
    format!("joined open release {id}")
}

impl NewRelease {
    /// The timeline's first event.
    pub(super) fn started_message(&self) -> String {
        format!(
            "ticket {} asks for {} on {} ({})",
            self.issue.as_deref().unwrap_or("(none)"),
            self.commit,
            self.project,
            self.env
        )
    }

    /// The timeline event of another ticket for the same commit.
    pub(super) fn joined_message(&self) -> String {
        let issue = self
            .issue
            .as_deref()
            .map(|i| format!(" (issue {i})"))
            .unwrap_or_default();
        format!("another request for the same commit joined this release{issue}")
    }

    /// The lane of the release's tag job: one tag at a time per project environment.
    pub(super) fn tag_lane(&self) -> String {
        format!("tag:{}:{}", self.project, self.env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_jobs_take_a_statement_per_power_of_two() {
        let sizes = |n: usize| {
            let rows: Vec<usize> = (0..n).collect();
            chunked(&rows).map(<[usize]>::len).collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(37), vec![32, 4, 1]);
        assert_eq!(sizes(64), vec![64]);
        assert_eq!(sizes(130), vec![64, 64, 2]);
    }

    #[test]
    fn keyed_deliveries_take_one_statement_per_64() {
        let sizes = |n: usize| {
            let rows: Vec<usize> = (0..n).collect();
            padded(&rows)
                .map(|(c, size)| (c.len(), size))
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), vec![]);
        assert_eq!(sizes(1), vec![(1, 1)]);
        assert_eq!(sizes(10), vec![(10, 16)]);
        assert_eq!(sizes(64), vec![(64, 64)]);
        assert_eq!(sizes(100), vec![(64, 64), (36, 64)]);
        assert_eq!(sizes(130), vec![(64, 64), (64, 64), (2, 2)]);
    }
}
