//! Job queue and ingest throughput on each backend, printed (no assertions).
//!
//! `cargo bench --bench queue` (add `-- --quick` for a short run). PostgreSQL is measured when
//! `HOIST_BENCH_PG` holds a server URL such as `postgres://postgres@127.0.0.1:5432`.
//!
//! - ingest: one ticket (delivery + release + job) per transaction, sequential, with and without
//!   fsync per commit (SQLite `synchronous = FULL` vs `NORMAL`);
//! - queue: no-op jobs (notifications with Slack unconfigured) claimed, run and finished by the
//!   worker's loops, end to end.

use std::time::{Duration, Instant};

use hoist::app::App;
use hoist::config::{BitbucketAuthConfig, BitbucketConfig, Config, SecretRef};
use hoist::domain::{JobSpec, NotifyEvent};
use hoist::store::{NewDelivery, NewRelease, Store};

fn config(url: &str, fsync: bool) -> Config {
    let mut c = Config::default();
    c.store.url = url.into();
    c.store.fsync = fsync;
    c.bitbucket = Some(BitbucketConfig {
        base_url: "http://127.0.0.1:9/2.0".into(),
        workspace: "acme".into(),
        auth: BitbucketAuthConfig::Bearer(SecretRef::Value("x".into())),
        web_url: "https://bitbucket.org".into(),
        timeout_secs: 1,
    });
    c.worker.concurrency = 8;
    c.worker.poll_ms = 5;
    c
}

async fn ingest(store: &Store, n: usize) -> Duration {
    let t = Instant::now();
    for i in 0..n {
        let d = NewDelivery {
            source: "jira",
            key: Some(format!("bench-{i}")),
            event_at: String::new(),
            event: "automation".into(),
            client_ip: None,
            body: "{}".repeat(500),
        };
        let r = NewRelease {
            project: "p".into(),
            env: "stg".into(),
            repo: "r".into(),
            commit: format!("{:040x}", i),
            issue: Some(format!("B-{i}")),
        };
        store.ingest_release(d, r, 5).await.unwrap();
    }
    t.elapsed()
}

async fn queue(app: &App, n: usize) -> Duration {
    let mut tx = app.store.begin().await.unwrap();
    for i in 0..n {
        let spec = JobSpec::Notify {
            release_id: i as i64,
            event: NotifyEvent::Tagged { step_ms: 0 },
        };
        tx.enqueue(&spec, &format!("bench:{i}"), 5, 0)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let worker = tokio::spawn(hoist::worker::run(app.clone(), rx));
    loop {
        let counts = app.store.job_counts().await.unwrap();
        let pending: i64 = counts
            .iter()
            .filter(|(s, _)| s == "queued" || s == "running")
            .map(|(_, n)| n)
            .sum();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t.elapsed();
    let _ = stop.send(true);
    let _ = worker.await;
    elapsed
}

async fn fresh_pg(base: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("hoist_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{base}/{name}")
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n_ingest, n_jobs) = if quick { (200, 500) } else { (2_000, 5_000) };
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![
        (
            "sqlite (crash-safe: WAL, synchronous=NORMAL)",
            format!("sqlite://{}", dir.path().join("a.db").display()),
            false,
        ),
        (
            "sqlite (power-loss-safe: fsync per commit)",
            format!("sqlite://{}", dir.path().join("b.db").display()),
            true,
        ),
    ];
    if let Ok(pg) = std::env::var("HOIST_BENCH_PG") {
        backends.push((
            "postgresql",
            fresh_pg(pg.trim_end_matches('/')).await,
            false,
        ));
    }
    println!("{:<48} {:>16} {:>16}", "backend", "tickets/s", "jobs/s");
    for (name, url, fsync) in backends {
        let c = config(&url, fsync);
        let store = Store::connect(&url, fsync).await.unwrap();
        let app = App::with_store(c, store.clone()).unwrap();
        let ti = ingest(&store, n_ingest).await;
        // The tickets' own jobs are not part of the queue measurement.
        sqlx::query("DELETE FROM jobs")
            .execute(store.pool())
            .await
            .unwrap();
        let tq = queue(&app, n_jobs).await;
        println!(
            "{name:<48} {:>16.0} {:>16.0}",
            n_ingest as f64 / ti.as_secs_f64(),
            n_jobs as f64 / tq.as_secs_f64()
        );
    }
}
