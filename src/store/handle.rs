//! The store's handle: which backend it is, how work reaches it (reads on a connection, writes in
//! a transaction), and the gathering of deliveries into shared writes on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::db::{Backend, Conn, Retryable, Work};
use super::error::{Result, StoreError};
use super::ingest::{self, Ingested};
use super::migrate;
use super::postgres;
use super::sqlite;
use crate::core::inbound::Ingest;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite://path` or `postgres://...`.
    pub url: String,
    /// SQLite: flush every commit to disk (durable against power loss, not only a crash).
    pub fsync: bool,
    /// Attempts each new job gets before it fails for good.
    pub max_attempts: u32,
    /// Migrate up to this schema version only (tests of older stores); `None`: the newest.
    pub schema: Option<i64>,
    /// This process serves the store (`hoist serve`, `hoist lambda`): on SQLite it takes the
    /// store for itself ([`super::owner`]), refusing if another process has it, and takes over the
    /// jobs its predecessor had claimed at once. Commands that read or queue a job do not.
    pub serve: bool,
}

#[derive(Clone)]
pub struct Store {
    db: Arc<Backends>,
    /// Attempts each new job gets (`worker.retry.max_attempts`).
    pub(super) max_attempts: u32,
    /// Claims made by this process ([`Store::claim_job`]).
    pub(super) claims: Arc<AtomicU64>,
    /// One claim at a time from this process.
    pub(super) claiming: Arc<tokio::sync::Mutex<()>>,
    /// PostgreSQL's gathering of deliveries into shared writes (absent in the handle its task
    /// holds, so that the task ends with the last other handle).
    batcher: Option<Batcher>,
}

enum Backends {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl Store {
    /// Opens the store (creating an SQLite file if needed) and brings its schema up to date.
    pub async fn connect(options: &Options) -> Result<Self> {
        let upto = options.schema;
        let db = match sqlite_path(&options.url) {
            Some(path) => {
                let fsync = options.fsync;
                let path = path.to_owned();
                let owner = match options.serve {
                    true => Some(super::owner::own(std::path::Path::new(&path))?),
                    false => None,
                };
                // Owning the store, no other process runs its jobs: what was running had a
                // process that is gone.
                let serve = owner.is_some();
                let setup: Work<()> = Box::new(move |c| {
                    Box::pin(async move {
                        migrate::run(c, upto).await?;
                        if serve {
                            super::jobs::release_claims(c).await?;
                        }
                        Ok(())
                    })
                });
                Backends::Sqlite(
                    tokio::task::spawn_blocking(move || {
                        sqlite::Sqlite::open(std::path::Path::new(&path), fsync, setup, owner)
                    })
                    .await
                    .map_err(|e| StoreError::Failed(e.to_string()))??,
                )
            }
            None => {
                let setup: Work<()> = Box::new(move |c| Box::pin(migrate::run(c, upto)));
                Backends::Postgres(postgres::Postgres::connect(&options.url, setup).await?)
            }
        };
        let store = Self {
            db: Arc::new(db),
            max_attempts: options.max_attempts,
            claims: Arc::default(),
            claiming: Arc::default(),
            batcher: None,
        };
        Ok(match store.backend() {
            Backend::Sqlite => store,
            Backend::Postgres => Self {
                batcher: Some(Batcher::spawn(store.clone())),
                ..store
            },
        })
    }

    pub fn backend(&self) -> Backend {
        match *self.db {
            Backends::Sqlite(_) => Backend::Sqlite,
            Backends::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs read-only `work` on a connection.
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Conn) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let work: Work<T> = Box::new(work);
        match &*self.db {
            Backends::Sqlite(db) => db.read(work).await,
            Backends::Postgres(db) => db.read(work).await,
        }
    }

    /// Runs `work` in a write transaction (run again if it conflicts with another writer).
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        match &*self.db {
            Backends::Sqlite(db) => db.write(Box::new(work)).await,
            Backends::Postgres(db) => db.write(Box::new(work) as Retryable<T>).await,
        }
    }

    /// Runs a write of one statement: PostgreSQL commits it by itself, without a transaction's
    /// round trips; SQLite sends it to the writer like any write.
    pub(super) async fn write_alone<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        match &*self.db {
            Backends::Sqlite(db) => db.write(Box::new(work)).await,
            Backends::Postgres(db) => {
                let mut work = work;
                db.read(Box::new(move |c| work(c))).await
            }
        }
    }

    /// Whether the store answers (for `/healthz`).
    pub async fn ping(&self) -> bool {
        self.read(|c| Box::pin(async move { c.query("SELECT 1 AS one", &[]).await.map(drop) }))
            .await
            .is_ok()
    }

    /// How many claims this store has made (each one statement or transaction, found a job or
    /// not): what an idle worker costs the database.
    pub fn claims_made(&self) -> u64 {
        self.claims.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs a statement outside Hoist's own operations and answers how many rows it changed: for
    /// tests and tools that set up or inspect a store (an older row, a count).
    pub async fn execute_sql(&self, sql: &str) -> Result<u64> {
        let sql = sql.to_string();
        self.write(move |c| {
            let sql = sql.clone();
            Box::pin(async move { c.execute(&sql, &[]).await })
        })
        .await
    }

    /// Runs statements on the writing connection (SQLite) or a connection (PostgreSQL), for tests
    /// and tools: a `PRAGMA` that answers a row, say.
    pub async fn run_script(&self, script: &str) -> Result<()> {
        let script = script.to_string();
        self.write(move |c| {
            let script = script.clone();
            Box::pin(async move { c.batch(&script).await })
        })
        .await
    }

    /// The first column of a statement's first row as a number (a count), for tests and tools.
    pub async fn query_i64(&self, sql: &str) -> Result<i64> {
        let sql = sql.to_string();
        self.read(move |c| {
            Box::pin(async move {
                let rows = c.query(&sql, &[]).await?;
                let row = rows
                    .first()
                    .ok_or_else(|| StoreError::Failed("no row".into()))?;
                row.i64("n")
            })
        })
        .await
    }
}

/// The most deliveries one write takes.
const MAX_BATCH: usize = 256;

type Request = (Ingest, oneshot::Sender<Result<Ingested>>);

/// Gathers deliveries that arrive together into one write (PostgreSQL, where each statement is a
/// round trip and each commit a flush). SQLite's writer gathers every write by itself.
#[derive(Clone)]
struct Batcher(mpsc::Sender<Request>);

impl Batcher {
    fn spawn(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<Request>(4 * MAX_BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let (plans, replies): (Vec<Ingest>, Vec<_>) = batch.into_iter().unzip();
                match store.write_ingest(plans).await {
                    Ok(answers) => {
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(answer));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, writes = replies.len(), "an ingest batch failed");
                        let message = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Failed(message.clone())));
                        }
                    }
                }
            }
        });
        Self(tx)
    }
}

impl Store {
    /// Records a delivery and what it starts; answers once it is committed.
    pub async fn ingest(&self, plan: Ingest) -> Result<Ingested> {
        let Some(batcher) = &self.batcher else {
            let mut answers = self.write_ingest(vec![plan]).await?;
            return answers
                .pop()
                .ok_or_else(|| StoreError::Failed("an ingest answered nothing".into()));
        };
        let (reply, answer) = oneshot::channel();
        batcher
            .0
            .send((plan, reply))
            .await
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Failed("the store's writer stopped".into())))
    }

    async fn write_ingest(&self, plans: Vec<Ingest>) -> Result<Vec<Ingested>> {
        let max = self.max_attempts;
        self.write(move |c| {
            let plans = plans.clone();
            Box::pin(async move { ingest::apply(c, &plans, max).await })
        })
        .await
    }
}

/// The file of an `sqlite:` URL (`sqlite://hoist.db`, `sqlite:///abs/path`, with or without
/// `?...` options, which are ignored); `None` for any other URL.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    Some(rest.split('?').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite://hoist.db"), Some("hoist.db"));
        assert_eq!(
            sqlite_path("sqlite:///tmp/x/hoist.db"),
            Some("/tmp/x/hoist.db")
        );
        assert_eq!(sqlite_path("sqlite:hoist.db?mode=rwc"), Some("hoist.db"));
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }
}
