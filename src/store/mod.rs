//! The store: deliveries, releases and their timelines, known tags, and the job queue.
//!
//! It carries out plans ([`crate::core`]) and decides nothing: what to write comes in as an
//! [`Ingest`] or [`Changes`]; the store writes it in one transaction. Every operation is written
//! once, as async code over [`db::Conn`], and runs on both backends: SQLite (embedded, the
//! default; [`sqlite`]) and PostgreSQL (several replicas; [`postgres`]).

pub mod db;
mod ingest;
mod jobs;
mod migrate;
mod postgres;
mod records;
mod sqlite;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;

pub use db::Backend;
use db::{Conn, Retryable, Work};
pub use ingest::Ingested;
pub use jobs::ClaimedJob;

pub use crate::core::inbound::Ingest;
pub use crate::core::plan::Changes;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("store failure: {0}")]
    Failed(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A decision was made on a release that changed meanwhile: nothing was written; deciding
    /// again on what is stored now settles it.
    #[error("release {0} changed meanwhile: {1}")]
    Stale(crate::domain::ReleaseId, String),
}

impl StoreError {
    /// A conflict with a concurrent writer that running the whole transaction again will settle.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Postgres(e) => e.code().is_some_and(|c| {
                [
                    tokio_postgres::error::SqlState::UNIQUE_VIOLATION,
                    tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE,
                    tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED,
                ]
                .contains(c)
            }),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
}

#[derive(Clone)]
pub struct Store {
    db: Arc<Backends>,
    max_attempts: u32,
    /// Claims made by this process ([`Store::claim_job`]).
    claims: Arc<AtomicU64>,
    /// One claim at a time from this process.
    claiming: Arc<tokio::sync::Mutex<()>>,
    /// PostgreSQL's gathering of deliveries into shared writes (absent in the handle its task
    /// holds, so that the task ends with the last other handle).
    batcher: Option<ingest::Batcher>,
}

enum Backends {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl Store {
    /// Opens the store (creating an SQLite file if needed) and brings its schema up to date.
    pub async fn connect(options: &Options) -> Result<Self> {
        let upto = options.schema;
        let setup: Work<()> = Box::new(move |c| Box::pin(migrate::run(c, upto)));
        let db = match sqlite_path(&options.url) {
            Some(path) => {
                let fsync = options.fsync;
                let path = path.to_owned();
                Backends::Sqlite(
                    tokio::task::spawn_blocking(move || {
                        sqlite::Sqlite::open(std::path::Path::new(&path), fsync, setup)
                    })
                    .await
                    .map_err(|e| StoreError::Failed(e.to_string()))??,
                )
            }
            None => Backends::Postgres(postgres::Postgres::connect(&options.url, setup).await?),
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
                batcher: Some(ingest::Batcher::spawn(store.clone())),
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
    async fn read<T, F>(&self, work: F) -> Result<T>
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
    async fn write<T, F>(&self, work: F) -> Result<T>
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
    async fn write_alone<T, F>(&self, work: F) -> Result<T>
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
        self.claims.load(Ordering::Relaxed)
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
