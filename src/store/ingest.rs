//! Recording inbound deliveries, with commits shared between requests.
//!
//! One commit per request caps ingest at the disk's commit rate. Instead, requests hand their
//! write to a writer task, which applies everything that arrived together in one transaction
//! (each request inside its own savepoint, so one failure does not undo the others) and answers
//! every request once that transaction is committed. A 2xx still means durable: nobody is
//! answered before the commit that holds their write.

use tokio::sync::{mpsc, oneshot};

use super::model::{Ingested, NewDelivery, NewRelease};
use super::{Result, Store, StoreError, Tx};
use crate::domain::JobSpec;

/// The most writes one transaction takes.
pub(super) const MAX_BATCH: usize = 256;

/// One inbound delivery to record, with what it starts.
#[derive(Debug, Clone)]
pub enum Ingest {
    /// A ticket: starts a release (or joins the open one for the commit) with its first job.
    Release {
        delivery: NewDelivery,
        release: NewRelease,
        max_attempts: u32,
    },
    /// Any other delivery, with a `handle_build` job in `build_lane` or nothing to do.
    Delivery {
        delivery: NewDelivery,
        outcome: String,
        build_lane: Option<String>,
        max_attempts: u32,
    },
}

pub(super) type Request = (Ingest, oneshot::Sender<Result<Ingested>>);

/// The handle requests use to reach the writer task.
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
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        apply_batch(&store, batch).await;
    }
}

/// Applies a batch in one transaction. PostgreSQL aborts a transaction at its first error, and
/// a savepoint per request would double the round trips, so the batch runs without them; when a
/// request fails (another replica won a unique key, say), the batch is rolled back and every
/// request is applied alone, where a conflict's retry finds what the other writer committed.
async fn apply_batch(store: &Store, batch: Vec<Request>) {
    let mut tx = match store.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let message = e.to_string();
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Failed(message.clone())));
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let mut failed = false;
    for (op, _) in &batch {
        match tx.apply_ingest(op).await {
            Ok(v) => done.push(v),
            Err(e) => {
                tracing::debug!(error = %e, "an ingest in a batch failed; applying the batch one by one");
                failed = true;
                break;
            }
        }
    }
    if !failed {
        match tx.commit().await {
            Ok(()) => {
                for ((_, reply), v) in batch.into_iter().zip(done) {
                    let _ = reply.send(Ok(v));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "ingest batch commit failed");
                let message = e.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Failed(message.clone())));
                }
            }
        }
        return;
    }
    let _ = tx.rollback().await;
    for (op, reply) in batch {
        let _ = reply.send(store.ingest_alone(op).await);
    }
}

impl Tx {
    /// The writes of one delivery.
    pub(crate) async fn apply_ingest(&mut self, op: &Ingest) -> Result<Ingested> {
        match op {
            Ingest::Release {
                delivery,
                release,
                max_attempts,
            } => self.ingest_release(delivery, release, *max_attempts).await,
            Ingest::Delivery {
                delivery,
                outcome,
                build_lane,
                max_attempts,
            } => {
                let Some(delivery_id) = self.insert_delivery_once(delivery, outcome).await? else {
                    return self.duplicate_of(delivery).await;
                };
                match build_lane {
                    Some(lane) => {
                        self.enqueue(
                            &JobSpec::HandleBuild { delivery_id },
                            lane,
                            *max_attempts,
                            0,
                        )
                        .await?;
                        Ok(Ingested::Queued { delivery_id })
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
        self.enqueue(
            &JobSpec::CreateTag { release_id: id },
            &release.tag_lane(),
            max_attempts,
            0,
        )
        .await?;
        Ok(Ingested::Created {
            release_id: id,
            delivery_id,
        })
    }

    /// The earlier delivery with `d`'s key.
    async fn duplicate_of(&mut self, d: &NewDelivery) -> Result<Ingested> {
        self.find_duplicate(d).await?.ok_or_else(|| {
            StoreError::Failed("a delivery key conflicted, but no delivery has it".into())
        })
    }
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
