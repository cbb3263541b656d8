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
const MAX_BATCH: usize = 256;

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

type Request = (Ingest, oneshot::Sender<Result<Ingested>>);

/// The handle requests use to reach the writer task.
#[derive(Clone)]
pub(crate) struct Writer(mpsc::Sender<Request>);

impl Writer {
    /// Starts the writer task on `store` (a handle without a writer of its own).
    pub(crate) fn spawn(store: Store) -> Self {
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
    let mut retry = Vec::new();
    for (op, reply) in batch {
        match in_savepoint(&mut tx, &op).await {
            Ok(v) => done.push((reply, Ok(v))),
            // A concurrent writer (another replica) won a unique key: settle it alone, after
            // this commit, where the retry finds what the other writer committed.
            Err(e) if e.is_conflict() => retry.push((op, reply)),
            Err(e) => done.push((reply, Err(e))),
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, r) in done {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = done.len(), "ingest batch commit failed");
            let message = e.to_string();
            for (reply, _) in done {
                let _ = reply.send(Err(StoreError::Failed(message.clone())));
            }
        }
    }
    for (op, reply) in retry {
        let _ = reply.send(store.ingest_alone(op).await);
    }
}

async fn in_savepoint(tx: &mut Tx, op: &Ingest) -> Result<Ingested> {
    sqlx::query("SAVEPOINT ingest").execute(tx.conn()).await?;
    match tx.apply_ingest(op).await {
        Ok(v) => {
            sqlx::query("RELEASE SAVEPOINT ingest")
                .execute(tx.conn())
                .await?;
            Ok(v)
        }
        Err(e) => {
            sqlx::query("ROLLBACK TO SAVEPOINT ingest")
                .execute(tx.conn())
                .await?;
            sqlx::query("RELEASE SAVEPOINT ingest")
                .execute(tx.conn())
                .await?;
            Err(e)
        }
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
                if let Some(dup) = self.find_duplicate(delivery).await? {
                    return Ok(dup);
                }
                let delivery_id = self.insert_delivery(delivery, outcome, None).await?;
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
                .insert_delivery(delivery, &format!("joined open release {id}"), Some(id))
                .await?;
            let issue = release
                .issue
                .as_deref()
                .map(|i| format!(" (issue {i})"))
                .unwrap_or_default();
            self.add_event(
                id,
                "received",
                &format!("another request for the same commit joined this release{issue}"),
            )
            .await?;
            return Ok(Ingested::Existing {
                release_id: id,
                delivery_id,
            });
        }
        let id = self.insert_release(release).await?;
        let delivery_id = self
            .insert_delivery(delivery, "release started", Some(id))
            .await?;
        let message = format!(
            "ticket {} asks for {} on {} ({})",
            release.issue.as_deref().unwrap_or("(none)"),
            release.commit,
            release.project,
            release.env
        );
        self.add_event(id, "received", &message).await?;
        let lane = format!("tag:{}:{}", release.project, release.env);
        self.enqueue(
            &JobSpec::CreateTag { release_id: id },
            &lane,
            max_attempts,
            0,
        )
        .await?;
        Ok(Ingested::Created {
            release_id: id,
            delivery_id,
        })
    }
}
