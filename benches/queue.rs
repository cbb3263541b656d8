//! Job queue and ingest throughput on each backend, printed (no assertions).
//!
//! `cargo bench --bench queue` (add `-- --quick` for a short run). PostgreSQL is measured when
//! `HOIST_BENCH_PG` holds a server URL such as `postgres://postgres@127.0.0.1:5432`.
//!
//! - ingest: one ticket (delivery + release + job) at a time, sequential, with and without
//!   fsync per commit (SQLite `synchronous = FULL` vs `NORMAL`);
//! - queue: no-op jobs (notifications with Slack unconfigured) claimed, run and finished by the
//!   worker's loops, end to end.

use std::time::{Duration, Instant};

use hoist::config::{Config, ConfigFile};
use hoist::core::inbound::{Action, Ingest};
use hoist::core::job::{Job, NotifyEvent};
use hoist::core::plan::Changes;
use hoist::domain::{CommitSha, EnvName, JobState, NewDelivery, NewRelease, ProjectName, Source};
use hoist::server::Hoist;
use hoist::store::{Options, Store};

fn config(url: &str, fsync: bool) -> Config {
    let text = format!(
        r#"
[store]
url = "{url}"
fsync = {fsync}
[bitbucket]
base_url = "http://127.0.0.1:9/2.0"
workspace = "acme"
auth = {{ bearer = {{ env = "PATH" }} }}
[worker]
concurrency = 8
poll_ms = 5
[[projects]]
name = "p"
repo = "r"
[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
"#
    );
    let (file, _) = ConfigFile::parse(&text).unwrap();
    Config::from_file(&file).unwrap()
}

async fn ingest(store: &Store, n: usize) -> Duration {
    let t = Instant::now();
    for i in 0..n {
        let delivery = NewDelivery {
            source: Source::Jira,
            key: Some(format!("bench-{i}")),
            event_at: String::new(),
            event: "automation".into(),
            client_ip: None,
            body: "{}".repeat(500),
        };
        let release = NewRelease {
            project: ProjectName::parse("p").unwrap(),
            env: EnvName::parse("stg").unwrap(),
            repo: "r".into(),
            commit: CommitSha::parse(&format!("{i:040x}")).unwrap(),
            issue: Some(format!("B-{i}")),
        };
        let plan = Ingest {
            delivery,
            action: Action::StartRelease(release),
        };
        store.ingest(plan).await.unwrap();
    }
    t.elapsed()
}

async fn queue(hoist: &Hoist, n: usize) -> Duration {
    let mut changes = Changes::default();
    for i in 0..n {
        changes = changes.job(Job::notify(
            (i as i64).into(),
            NotifyEvent::Tagged { step_ms: 0 },
        ));
    }
    hoist.store.apply(changes).await.unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let worker = tokio::spawn(hoist::worker::run(hoist.worker.clone(), rx));
    loop {
        let counts = hoist.store.job_counts().await.unwrap();
        let pending: i64 = counts
            .iter()
            .filter(|(s, _)| matches!(s, JobState::Queued | JobState::Running))
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
    let name = format!("hoist_bench_{}", std::process::id());
    let (client, connection) =
        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name}"
        ))
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
        let store = Store::connect(&Options {
            url: url.clone(),
            fsync,
            max_attempts: 5,
            schema: None,
            serve: true,
        })
        .await
        .unwrap();
        let hoist = Hoist::with_store(c, store.clone());
        let ti = ingest(&store, n_ingest).await;
        // The tickets' own jobs are not part of the queue measurement.
        store.execute_sql("DELETE FROM jobs").await.unwrap();
        let tq = queue(&hoist, n_jobs).await;
        println!(
            "{name:<48} {:>16.0} {:>16.0}",
            n_ingest as f64 / ti.as_secs_f64(),
            n_jobs as f64 / tq.as_secs_f64()
        );
    }
}
