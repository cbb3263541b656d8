//! SQLite, through rusqlite: one writer thread, and a few reader connections.
//!
//! SQLite has one writer at a time. Here that writer is a thread that owns the only writing
//! connection: every write is a piece of work sent to it, and it applies what arrived together in
//! one transaction, each piece inside a savepoint of its own (a piece that fails is undone alone),
//! then answers each once that transaction is committed. A commit is the costly part of a write
//! (its WAL frames and, with `fsync`, its flush), so writes that arrive together share one; and
//! since the thread is the only writer, writers never meet SQLite's busy handler nor need a lock.
//! Reads run on connections of their own, on tokio's blocking threads; WAL lets them read while
//! the writer writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::db::{Backend, Cell, Conn, Param, Row, Work, run_ready};
use super::error::{Result, StoreError};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 256;
/// Reader connections, at most.
const READERS: usize = 4;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;
/// The size the WAL file is cut back to when it starts over after a burst.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

pub struct Sqlite {
    writes: mpsc::Sender<Box<dyn Write>>,
    readers: Arc<Readers>,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// An error opening the store file, said so that the fix is plain.
fn opening(path: &Path, e: StoreError) -> StoreError {
    use rusqlite::ErrorCode::*;
    let code = match &e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => f.code,
        _ => return e,
    };
    let why = match code {
        NotADatabase => {
            "is not an SQLite database (store.url must name a Hoist store, or a file that does not exist yet)"
        }
        ReadOnly | CannotOpen | PermissionDenied => {
            "cannot be opened for writing (Hoist writes the file and its -wal and -shm files beside it: the directory must be writable)"
        }
        DiskFull => "cannot grow: the disk is full",
        _ => return e,
    };
    StoreError::Unavailable(format!("{} {why}", path.display()))
}

/// Opens a connection with Hoist's settings: WAL, `synchronous` NORMAL (durable against a crash of
/// the process) or FULL (`fsync`: against power loss too).
fn open(path: &Path, fsync: bool, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl Sqlite {
    /// Opens (creating) the file, runs `setup` on the writing connection first (migrations), and
    /// starts the writer thread.
    /// `owner` is the store's lock, when this process serves it: held until the writer ends.
    pub fn open(
        path: &Path,
        fsync: bool,
        setup: Work<()>,
        owner: Option<super::owner::Owner>,
    ) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = open(path, fsync, flags).map_err(|e| opening(path, e))?;
        run_ready(setup(&mut SqliteConn(&mut writer))).map_err(|e| opening(path, e))?;
        let (writes, rx) = mpsc::channel(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("hoist-sqlite-writer".into())
            .spawn(move || {
                write_loop(&mut writer, rx);
                drop(owner);
            })
            .map_err(|e| StoreError::Failed(format!("cannot start the store's writer: {e}")))?;
        Ok(Self {
            writes,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(READERS),
            }),
        })
    }

    /// Runs `work` on the writer, in a transaction shared with the writes that arrive with it,
    /// inside a savepoint of its own; answers once that transaction is committed.
    pub async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let op = Box::new(Op {
            work: Some(work),
            result: None,
            reply,
        });
        self.writes
            .send(op)
            .await
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Failed("the store's writer stopped".into())))
    }

    /// Runs `work` on a reader connection.
    pub async fn read<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let readers = self.readers.clone();
        let _permit = readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Failed("the store is closed".into()))?;
        let idle = readers.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut conn = match idle {
            Some(conn) => conn,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = open(&readers.path, false, flags)?;
                conn.pragma_update(None, "query_only", true)?;
                conn
            }
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = run_ready(work(&mut SqliteConn(&mut conn)));
            (conn, result)
        })
        .await
        .map_err(|e| StoreError::Failed(format!("a store read stopped: {e}")))?;
        if let Ok(mut idle) = readers.idle.lock() {
            idle.push(conn);
        }
        result
    }
}

/// One write waiting for the writer: it runs, then learns whether its transaction committed.
trait Write: Send {
    /// Runs the work; answers whether it succeeded (else its savepoint is rolled back).
    fn run(&mut self, conn: &mut Connection) -> bool;
    /// Answers the caller: the work's result if the transaction committed, else why not.
    fn finish(self: Box<Self>, committed: std::result::Result<(), String>);
}

struct Op<T> {
    work: Option<Work<T>>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send> Write for Op<T> {
    fn run(&mut self, conn: &mut Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = run_ready(work(&mut SqliteConn(conn)));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: std::result::Result<(), String>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Failed("the write did not run".into())),
            (Err(e), _) => Err(StoreError::Failed(e)),
        };
        let _ = self.reply.send(result);
    }
}

/// Until every sender is gone (the store dropped), applies what arrived together.
fn write_loop(conn: &mut Connection, mut rx: mpsc::Receiver<Box<dyn Write>>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let committed = apply(conn, &mut batch).map_err(|e| e.to_string());
        if let Err(e) = &committed {
            tracing::error!(error = %e, writes = batch.len(), "a store commit failed");
        }
        for op in batch {
            op.finish(committed.clone());
        }
    }
}

/// Runs a statement without parameters, prepared once.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute([]))
}

/// Runs a batch in one transaction, each write in a savepoint.
fn apply(conn: &mut Connection, batch: &mut [Box<dyn Write>]) -> Result<()> {
    run(conn, "BEGIN IMMEDIATE")?;
    for op in batch.iter_mut() {
        let step = run(conn, "SAVEPOINT write").and_then(|_| {
            if op.run(conn) {
                run(conn, "RELEASE write")
            } else {
                run(conn, "ROLLBACK TO write").and_then(|_| run(conn, "RELEASE write"))
            }
        });
        if let Err(e) = step {
            let _ = run(conn, "ROLLBACK");
            return Err(e.into());
        }
    }
    if let Err(e) = run(conn, "COMMIT") {
        if !conn.is_autocommit() {
            let _ = run(conn, "ROLLBACK");
        }
        return Err(e.into());
    }
    Ok(())
}

/// [`Conn`] on a rusqlite connection: every statement runs at once, so its future is ready.
struct SqliteConn<'c>(&'c mut Connection);

/// `$1` ... `$32`, the names SQLite gives Hoist's numbered parameters.
const NAMES: [&str; 32] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16", "$17", "$18", "$19", "$20", "$21", "$22", "$23", "$24", "$25", "$26", "$27", "$28",
    "$29", "$30", "$31", "$32",
];

impl SqliteConn<'_> {
    fn prepare(&self, sql: &str, params: &[Param]) -> Result<rusqlite::CachedStatement<'_>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        for (i, p) in params.iter().enumerate() {
            // SQLite numbers `$n` parameters by first appearance: bind them by name.
            let index = match NAMES.get(i) {
                Some(name) => stmt.parameter_index(name)?,
                None => stmt.parameter_index(&format!("${}", i + 1))?,
            };
            if let Some(index) = index {
                stmt.raw_bind_parameter(index, Bind(p))?;
            }
        }
        Ok(stmt)
    }

    fn query_now(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>> {
        let mut stmt = self.prepare(sql, params)?;
        let columns: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
        let width = columns.len();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Float(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Text(String::from_utf8_lossy(b).into_owned()),
                });
            }
            out.push(Row::new(columns.clone(), values));
        }
        Ok(out)
    }

    fn execute_now(&self, sql: &str, params: &[Param]) -> Result<u64> {
        let mut stmt = self.prepare(sql, params)?;
        Ok(stmt.raw_execute()? as u64)
    }
}

impl Conn for SqliteConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        std::future::ready(self.query_now(sql, params)).boxed()
    }

    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64>> {
        std::future::ready(self.execute_now(sql, params)).boxed()
    }

    fn batch<'a>(&'a mut self, script: &'a str) -> BoxFuture<'a, Result<()>> {
        std::future::ready(self.0.execute_batch(script).map_err(StoreError::from)).boxed()
    }
}

/// A [`Param`] as SQLite stores it: times as milliseconds, flags as 0 or 1.
struct Bind<'p, 'a>(&'p Param<'a>);

impl rusqlite::ToSql for Bind<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self.0 {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(v) | Param::Time(v) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
            Param::Bool(v) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(v))),
            Param::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}
