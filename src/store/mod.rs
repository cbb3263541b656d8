//! The store: deliveries, releases and their steps, the job queue, and known tags.
//!
//! One implementation serves SQLite (embedded default) and PostgreSQL through sqlx's `Any`
//! driver; SQL is written once with `$n` placeholders, which both accept. The few places where the
//! two differ (transaction start, row locking in the job claim) branch on [`Backend`].
//!
//! Every write that must be atomic happens inside one [`Tx`]: an inbound delivery, the release it
//! starts and that release's first job commit together, so a 2xx answer means all of it is durable.

mod ingest;
mod jobs;
mod model;
mod releases;
mod sql;
mod sqlite_ingest;
mod write_lock;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Executor};

pub use ingest::Ingest;
pub use jobs::{BornClaim, ClaimedJob, JobRow};
pub use model::{Delivery, Ingested, NewDelivery, NewRelease, Release, ReleaseEvent, TagRow};
pub use releases::{NewTag, PushedTag};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("store error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store failure: {0}")]
    Failed(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A conflict with a concurrent writer that a retry of the whole transaction will settle.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Db(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    || e.code().as_deref() == Some("40001")
                    || e.code().as_deref() == Some("40P01")
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// One claim at a time from this process ([`Store::claim_job`]), and how many were made.
    claims: Arc<tokio::sync::Mutex<u64>>,
    backend: Backend,
    /// SQLite has one writer at a time: they queue here ([`write_lock`]). (Other processes on
    /// the same file still meet the busy handler; PostgreSQL needs no such lock.)
    writer: Option<Arc<write_lock::WriteLock>>,
    /// The writer that records deliveries in shared commits: SQLite's thread or PostgreSQL's
    /// task (absent in the task's own handle).
    writer_task: Option<ingest::Writer>,
}

/// A PostgreSQL connection idle in the pool at least this long is pinged before it is used
/// ([`Store::connect`]).
const RECHECK_IDLE: Duration = Duration::from_secs(1);

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Connects, creating the SQLite file if needed, and runs migrations.
    pub async fn connect(url: &str, fsync: bool) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            let url = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else {
            (Backend::Postgres, url.to_string())
        };
        let options = AnyConnectOptions::from_str(&url).map_err(StoreError::Unavailable)?;
        let sync = if fsync { "FULL" } else { "NORMAL" };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 10 })
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings every connection it hands out, a round trip (on SQLite two thread
            // wake-ups) before each query or transaction, and pings it again when it comes
            // back. The check on return stays: a connection idle in the pool for less than
            // `RECHECK_IDLE` passed it then. One idle longer is pinged before use, so that one
            // left broken by a database restart or a dropped network path is replaced, not used.
            // An SQLite connection is a file: it cannot drop.
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if backend == Backend::Postgres && meta.idle_for >= RECHECK_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA synchronous = {sync}")))
                            .await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // The ingest thread's checkpointer copies the WAL into the file
                        // (sqlite_ingest.rs), so that no commit stalls on it.
                        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA journal_size_limit = {}",
                            sqlite_ingest::JOURNAL_SIZE_LIMIT
                        )))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Unavailable)?;
        let writer = (backend == Backend::Sqlite).then(Arc::default);
        let mut store = Self {
            pool,
            claims: Arc::default(),
            backend,
            writer,
            writer_task: None,
        };
        store.migrate().await?;
        store.writer_task = Some(match &store.writer {
            Some(lock) => {
                let file = SqliteConnectOptions::from_str(&url)
                    .map_err(StoreError::Unavailable)?
                    .get_filename()
                    .to_path_buf();
                sqlite_ingest::spawn(&file, fsync, lock.clone())?
            }
            None => ingest::Writer::spawn_task(store.clone()),
        });
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`)
    /// so that a read-then-write never fails halfway on a concurrent writer.
    pub async fn begin(&self) -> Result<Tx> {
        let guard = match &self.writer {
            Some(w) => Some(w.other().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(StoreError::Unavailable)?;
        Ok(Tx {
            tx: Conn::Transaction(tx),
            backend: self.backend,
            _writer: guard,
        })
    }

    /// A [`Tx`] whose statements each commit on their own (no `BEGIN`, and its commit and rollback
    /// do nothing): for writes that are one statement, which saves two round trips. PostgreSQL
    /// only; SQLite's writes go through the write lock ([`Self::begin`]).
    async fn autocommit(&self) -> Result<Tx> {
        debug_assert_eq!(self.backend, Backend::Postgres);
        let conn = self.pool.acquire().await.map_err(StoreError::Unavailable)?;
        Ok(Tx {
            tx: Conn::Autocommit(conn),
            backend: self.backend,
            _writer: None,
        })
    }

    /// Runs `f` in a transaction, retrying a few times on a conflict with a concurrent writer.
    pub async fn with_tx<T, F>(&self, mut f: F) -> Result<T>
    where
        F: for<'a> FnMut(&'a mut Tx) -> futures_util::future::BoxFuture<'a, Result<T>>,
    {
        let mut tries = 0;
        loop {
            let mut tx = self.begin().await?;
            match f(&mut tx).await {
                Ok(v) => match tx.commit().await {
                    Ok(()) => return Ok(v),
                    Err(e) if e.is_conflict() && tries < 5 => {}
                    Err(e) => return Err(e),
                },
                Err(e) if e.is_conflict() && tries < 5 => {
                    let _ = tx.rollback().await;
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    return Err(e);
                }
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(5 * tries)).await;
        }
    }

    /// Whether the store answers (for `/healthz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// A write transaction with the store's operations on it.
pub struct Tx {
    tx: Conn,
    backend: Backend,
    /// Held until the transaction ends (declared after `tx`, so dropped after it).
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// What a [`Tx`] runs its statements on.
enum Conn {
    Transaction(sqlx::Transaction<'static, sqlx::Any>),
    /// A pooled connection outside a transaction ([`Store::autocommit`]).
    Autocommit(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self.tx {
            Conn::Transaction(tx) => tx.commit().await.map_err(StoreError::from),
            Conn::Autocommit(_) => Ok(()),
        }
    }

    pub async fn rollback(self) -> Result<()> {
        match self.tx {
            Conn::Transaction(tx) => tx.rollback().await.map_err(StoreError::from),
            Conn::Autocommit(_) => Ok(()),
        }
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        match &mut self.tx {
            Conn::Transaction(tx) => tx,
            Conn::Autocommit(conn) => conn,
        }
    }

    fn is_postgres(&self) -> bool {
        self.backend == Backend::Postgres
    }
}
