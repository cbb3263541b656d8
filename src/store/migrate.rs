//! The schema: migrations embedded in the binary, one list per backend, applied in order at start,
//! each in a transaction of its own with the record that it ran.
//!
//! Stores made by earlier versions of Hoist recorded their migrations in sqlx's
//! `_sqlx_migrations`; those versions count as applied.

use super::db::{Backend, Conn, params, time};
use super::error::{Result, StoreError};
use crate::domain::now_ms;

/// One migration: its version, name and SQL.
type Migration = (i64, &'static str, &'static str);

macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(($version, $name, include_str!(concat!("../../migrations/", $dir, "/", $name, ".sql")))),*]
    };
}

const SQLITE: &[Migration] = migrations!("sqlite":
    1 "0001_init",
    2 "0002_claim_indexes",
    3 "0003_active_lane",
    4 "0004_delivery_event_time",
    5 "0005_one_running_job_per_lane",
    6 "0006_open_release_flag",
    7 "0007_deploy_tracking",
    8 "0008_promotion",
    9 "0009_insight",
    10 "0010_failed_jobs",
);

const POSTGRES: &[Migration] = migrations!("postgres":
    1 "0001_init",
    2 "0002_claim_indexes",
    3 "0003_active_lane",
    4 "0004_delivery_event_time",
    5 "0005_one_running_job_per_lane",
    6 "0006_native_types",
    7 "0007_deploy_tracking",
    8 "0008_promotion",
    9 "0009_insight",
    10 "0010_failed_jobs",
);

fn list(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// Applies every migration the store lacks, up to `upto` (all of them when `None`).
pub async fn run(c: &mut dyn Conn, upto: Option<i64>) -> Result<()> {
    let backend = c.backend();
    let applied_at = match backend {
        Backend::Sqlite => "INTEGER",
        Backend::Postgres => "TIMESTAMPTZ",
    };
    c.batch(&format!(
        "CREATE TABLE IF NOT EXISTS hoist_migrations (
             version     BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             applied_at  {applied_at} NOT NULL
         )"
    ))
    .await?;
    adopt_sqlx_record(c).await?;
    let done: Vec<i64> = c
        .query("SELECT version FROM hoist_migrations", &[])
        .await?
        .iter()
        .map(|r| r.i64("version"))
        .collect::<Result<_>>()?;
    for &(version, name, sql) in list(backend) {
        if done.contains(&version) || upto.is_some_and(|u| version > u) {
            continue;
        }
        let begin = match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        c.batch(begin).await?;
        let applied = async {
            c.batch(sql).await?;
            c.execute(
                "INSERT INTO hoist_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
                params![version, name, time(now_ms())],
            )
            .await
        }
        .await;
        match applied {
            Ok(_) => c.batch("COMMIT").await?,
            Err(e) => {
                let _ = c.batch("ROLLBACK").await;
                return Err(StoreError::Failed(format!("migration {name} failed: {e}")));
            }
        }
        tracing::info!(migration = name, "store migrated");
    }
    Ok(())
}

/// Counts the migrations an earlier Hoist recorded in sqlx's table as applied here.
async fn adopt_sqlx_record(c: &mut dyn Conn) -> Result<()> {
    let exists = match c.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        Backend::Postgres => "SELECT CAST(to_regclass('_sqlx_migrations') AS TEXT) AS name",
    };
    let found = c.query_opt(exists, &[]).await?;
    if found.is_none_or(|r| r.opt_string("name").ok().flatten().is_none()) {
        return Ok(());
    }
    let copy = match c.backend() {
        Backend::Sqlite => {
            "INSERT INTO hoist_migrations (version, description, applied_at)
             SELECT version, description, $1 FROM _sqlx_migrations WHERE success
             ON CONFLICT (version) DO NOTHING"
        }
        Backend::Postgres => {
            "INSERT INTO hoist_migrations (version, description, applied_at)
             SELECT version, description, installed_on FROM _sqlx_migrations WHERE success
             ON CONFLICT (version) DO NOTHING"
        }
    };
    let params: &[_] = match c.backend() {
        Backend::Sqlite => params![time(now_ms())],
        Backend::Postgres => &[],
    };
    c.execute(copy, params).await?;
    Ok(())
}
