//! Test helpers: a stack per test on the backend chosen by the environment.

use std::time::Duration;

use hoist::config::ConfigFile;
use hoist_cli::stack::{Stack, StackOptions};

pub const WAIT: Duration = Duration::from_secs(20);

/// A fresh PostgreSQL database when `HOIST_TEST_PG` holds a server URL (e.g.
/// `postgres://postgres@127.0.0.1:5432`), else `None` (SQLite in a temporary directory).
pub async fn store_url() -> Option<String> {
    let base = std::env::var("HOIST_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())?;
    let name = format!("{}_{}", db_prefix(), uuid::Uuid::new_v4().simple());
    let admin = format!("{}/postgres", base.trim_end_matches('/'));
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("HOIST_TEST_PG is set but PostgreSQL does not answer");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    drop(client);
    let _ = connection.await;
    Some(format!("{}/{name}", base.trim_end_matches('/')))
}

/// The start of every test database's name: `HOIST_TEST_DB_PREFIX` (scripts/test.sh sets one per
/// run and drops that run's databases when it ends), else `hoist_test`.
pub fn db_prefix() -> String {
    std::env::var("HOIST_TEST_DB_PREFIX")
        .ok()
        .filter(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .unwrap_or_else(|| "hoist_test".into())
}

pub async fn stack() -> Stack {
    stack_with(StackOptions::default(), |_| {}).await
}

pub async fn stack_with(
    mut options: StackOptions,
    configure: impl FnOnce(&mut ConfigFile),
) -> Stack {
    if options.store_url.is_none() {
        options.store_url = store_url().await;
    }
    Stack::start_with(options, configure)
        .await
        .expect("stack starts")
}

/// Posts raw bytes with headers to a Hoist path.
pub async fn post(
    stack: &Stack,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let mut rb = client.post(format!("{}{path}", stack.url)).body(body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Counts rows of a table (to prove nothing was written).
pub async fn count(stack: &Stack, table: &str) -> i64 {
    stack
        .hoist
        .store
        .query_i64(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .await
        .unwrap()
}
