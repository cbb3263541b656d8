//! How the store fails.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another process serves this SQLite store.
    #[error("{0}")]
    InUse(String),
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("store failure: {0}")]
    Failed(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A decision was made on a record that changed meanwhile: nothing was written; deciding
    /// again on what is stored now settles it.
    #[error("changed meanwhile: {0}")]
    Stale(String),
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
