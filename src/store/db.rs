//! The store's one interface to a database: run a statement with parameters, get rows back.
//!
//! Everything the store does is written once against [`Conn`], as async functions, and runs on
//! either backend: SQLite through rusqlite ([`super::sqlite`]) and PostgreSQL through
//! tokio-postgres ([`super::postgres`]). Each backend maps [`Param`]s and columns to its native
//! types: a time is an `INTEGER` of milliseconds in SQLite and a `timestamptz` in PostgreSQL, a
//! flag an `INTEGER` 0/1 or a `boolean`.
//!
//! SQLite answers at once, so its futures are always ready: the SQLite backend runs store code on
//! its own threads by polling it once ([`run_ready`]). Store code must therefore await nothing but
//! the [`Conn`] it is given.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;

use super::error::{Result, StoreError};
use crate::domain::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A statement parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Bool(bool),
    Time(Millis),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(v)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// A time parameter (milliseconds since the epoch), or NULL.
pub fn time(ms: impl Into<Option<Millis>>) -> Param<'static> {
    ms.into().map_or(Param::Null, Param::Time)
}

/// `[Param]` from expressions that convert into one.
macro_rules! params {
    ($($e:expr),* $(,)?) => {
        &[$($crate::store::db::Param::from($e)),*]
    };
}
pub(crate) use params;

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Time(Millis),
}

/// One row of an answer, its values by column name.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Cell>,
}

impl Row {
    pub fn new(columns: Arc<[String]>, values: Vec<Cell>) -> Self {
        Self { columns, values }
    }

    fn cell(&self, name: &str) -> Result<&Cell> {
        self.columns
            .iter()
            .position(|c| c == name)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError::Corrupt(format!("no column `{name}` in the answer")))
    }

    fn wrong(name: &str, want: &str, got: &Cell) -> StoreError {
        StoreError::Corrupt(format!("column `{name}` holds {got:?}, not {want}"))
    }

    pub fn i64(&self, name: &str) -> Result<i64> {
        self.opt_i64(name)?
            .ok_or_else(|| Self::wrong(name, "a number", &Cell::Null))
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>> {
        match self.cell(name)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            other => Err(Self::wrong(name, "a number", other)),
        }
    }

    pub fn f64(&self, name: &str) -> Result<f64> {
        match self.cell(name)? {
            Cell::Float(v) => Ok(*v),
            Cell::Int(v) => Ok(*v as f64),
            other => Err(Self::wrong(name, "a number", other)),
        }
    }

    pub fn string(&self, name: &str) -> Result<String> {
        self.opt_string(name)?
            .ok_or_else(|| Self::wrong(name, "text", &Cell::Null))
    }

    pub fn opt_string(&self, name: &str) -> Result<Option<String>> {
        match self.cell(name)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v.clone())),
            other => Err(Self::wrong(name, "text", other)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.cell(name)? {
            Cell::Bool(v) => Ok(*v),
            Cell::Int(v) => Ok(*v != 0),
            other => Err(Self::wrong(name, "a flag", other)),
        }
    }

    pub fn time(&self, name: &str) -> Result<Millis> {
        self.opt_time(name)?
            .ok_or_else(|| Self::wrong(name, "a time", &Cell::Null))
    }

    pub fn opt_time(&self, name: &str) -> Result<Option<Millis>> {
        match self.cell(name)? {
            Cell::Null => Ok(None),
            Cell::Time(v) | Cell::Int(v) => Ok(Some(*v)),
            other => Err(Self::wrong(name, "a time", other)),
        }
    }

    /// A text column parsed into a domain value; a value that does not parse is corrupt.
    pub fn parse<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let text = self.string(name)?;
        parse(&text).map_err(|e| StoreError::Corrupt(format!("column `{name}`: {e}")))
    }

    /// [`Self::parse`] for a column that may be NULL.
    pub fn parse_opt<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, E>,
    ) -> Result<Option<T>> {
        match self.opt_string(name)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("column `{name}`: {e}"))),
        }
    }
}

/// A connection, or a transaction on one.
pub trait Conn: Send {
    fn backend(&self) -> Backend;

    /// Runs a statement and answers its rows.
    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Vec<Row>>>;

    /// [`Self::query`], with a plan made for this call rather than one cached (PostgreSQL): for a
    /// statement whose best plan depends on how the tables look now.
    fn query_fresh<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        self.query(sql, params)
    }

    /// Runs a statement and answers how many rows it changed.
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64>>;

    /// Runs a script of statements without parameters (a migration).
    fn batch<'a>(&'a mut self, script: &'a str) -> BoxFuture<'a, Result<()>>;
}

impl dyn Conn + '_ {
    /// The first row of the answer, if any.
    pub async fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// The first row of the answer, which must exist.
    pub async fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.query_opt(sql, params).await?.ok_or_else(|| {
            StoreError::Failed("a statement that answers a row answered none".into())
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.backend() == Backend::Postgres
    }
}

/// Work to do on a connection: store code, written once for both backends.
pub type Work<T> = Box<dyn for<'c> FnOnce(&'c mut dyn Conn) -> BoxFuture<'c, Result<T>> + Send>;

/// Work that a conflicting writer may make the store run again (PostgreSQL's serialization
/// failures, a unique key another replica took first).
pub type Retryable<T> = Box<dyn for<'c> FnMut(&'c mut dyn Conn) -> BoxFuture<'c, Result<T>> + Send>;

/// Polls a future once and answers its output: for store code on SQLite, whose every await is a
/// statement that completed at once. A future that is not ready then awaited something else,
/// which store code must not do.
pub fn run_ready<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::as_mut(&mut future).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => Err(StoreError::Failed(
            "store code awaited something other than the database".into(),
        )),
    }
}
