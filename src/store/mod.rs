//! The store: deliveries, releases and their timelines, known tags, and the job queue.
//!
//! It carries out plans ([`crate::core`]) and decides nothing: what to write comes in as an
//! [`Ingest`] or [`Changes`]; the store writes it in one transaction. Every operation is written
//! once, as async code over [`db::Conn`], and runs on both backends: SQLite (embedded, the
//! default; `sqlite.rs`) and PostgreSQL (several replicas; `postgres.rs`).
//!
//! Layout, one way down: the handle and its API (`handle.rs`, `queue.rs`, `history.rs`) use the
//! operations (`ingest.rs`, `jobs.rs`, `records.rs`), which use the connection (`db.rs`).

pub mod db;
mod deployments;
mod error;
mod handle;
mod history;
mod ingest;
mod insight;
mod jobs;
mod migrate;
mod owner;
mod postgres;
mod queue;
mod records;
mod sqlite;

pub use db::Backend;
pub use error::{Result, StoreError};
pub use handle::{Options, Store};
pub use ingest::Ingested;
pub use jobs::ClaimedJob;
pub use records::ReleaseFilter;

pub use crate::core::inbound::Ingest;
pub use crate::core::plan::Changes;
