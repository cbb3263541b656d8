//! Recovery figures (issue 23; `scripts/bench.sh`): how soon in-flight releases move again after
//! a process dies, with real `hoist serve` processes and Hoist's default lease (20 s).
//!
//! - SQLite: tag jobs are mid-call to a slow Bitbucket when the process is killed with -9; a new
//!   one starts at once on the same file. Figures: spawn -> `/healthz` answering, `/healthz` ->
//!   the next tag created, `/healthz` -> every release deployed in stg. The new process holds the
//!   file's lock, so it knows every `running` job lost its worker and takes them over at once.
//! - PostgreSQL: replica A claims the tagging lane's job (mid-call to a slow Bitbucket), replica B
//!   is up, A is killed with -9. Figure: the kill -> B creating that tag. B cannot know A is dead
//!   before A's lease runs out, so this is bounded by the lease (renewed every third of it while
//!   A lived) plus a poll.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::ensure;
use hoist_sim::Fault;
use hoist_sim::bitbucket::random_hash;
use hoist_sim::jira::JiraSim;

use crate::soak::{
    REPO, Replica, Sims, admin, config_toml, free_port, send_ticket, tail, tempfile_dir,
};

pub struct Options {
    pub hoist: PathBuf,
    pub pg: Option<String>,
    pub rounds: usize,
}

pub fn run(o: Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(recover(o))
}

async fn recover(o: Options) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let result = measure(&o, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(o: &Options, dir: &Path) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let (mut ready, mut next_tag, mut deployed) = (vec![], vec![], vec![]);
    for round in 0..o.rounds {
        let d = dir.join(format!("sqlite{round}"));
        std::fs::create_dir_all(&d)?;
        let r = sqlite_round(o, &d, &client).await?;
        println!(
            "sqlite round {}: killed with {} of 3 tagged; ready {:.0} ms after spawn, next tag {:.0} ms and every release deployed {:.0} ms after /healthz",
            round + 1,
            r.tagged_before,
            ms(r.ready),
            ms(r.next_tag),
            ms(r.deployed)
        );
        ready.push(ms(r.ready));
        next_tag.push(ms(r.next_tag));
        deployed.push(ms(r.deployed));
    }
    result("recover.sqlite.rounds", o.rounds);
    spread("recover.sqlite.ready", &mut ready);
    spread("recover.sqlite.next_tag", &mut next_tag);
    spread("recover.sqlite.deployed", &mut deployed);

    if let Some(base) = &o.pg {
        let mut takeover = vec![];
        for round in 0..o.rounds {
            let name = format!("hoist_recover_{}", uuid::Uuid::new_v4().simple());
            admin(base, &format!("CREATE DATABASE {name}")).await?;
            let store = format!("{}/{name}", base.trim_end_matches('/'));
            let d = dir.join(format!("pg{round}"));
            std::fs::create_dir_all(&d)?;
            let r = pg_round(o, &d, &store, &client).await;
            admin(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await?;
            let took = r?;
            println!(
                "postgres round {}: replica A killed mid-call holding the tagging lane; B made the tag {:.0} ms later (lease 20 s)",
                round + 1,
                ms(took)
            );
            takeover.push(ms(took));
        }
        result("recover.postgres.rounds", o.rounds);
        spread("recover.postgres.takeover", &mut takeover);
    }
    Ok(())
}

struct SqliteRound {
    tagged_before: usize,
    ready: Duration,
    next_tag: Duration,
    deployed: Duration,
}

async fn sqlite_round(
    o: &Options,
    dir: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<SqliteRound> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let sims = Sims::start(&url).await?;
    let store = format!("sqlite://{}", dir.join("hoist.db").display());
    let mut r = replica(dir, "sqlite", &sims, port, &store)?;
    r.start(&o.hoist)?;
    r.ready(client).await?;

    // Bitbucket answers slowly: tag jobs are mid-call when the process dies.
    sims.bitbucket
        .faults()
        .push(Fault::Delay(Duration::from_millis(400)), 40);
    let jira = JiraSim::new();
    for i in 0..3 {
        ticket(&sims, &jira, std::slice::from_ref(&r), &format!("REC-{i}")).await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    r.kill9();
    let tagged_before = stg_tags(&sims);
    let spawned = Instant::now();
    r.start(&o.hoist)?;
    r.ready(client).await?;
    let ready_at = Instant::now();
    let ready = spawned.elapsed();
    wait(Duration::from_secs(60), &r, async || {
        stg_tags(&sims) > tagged_before
    })
    .await?;
    let next_tag = ready_at.elapsed();
    wait(Duration::from_secs(60), &r, async || {
        all_deployed(client, &r.url, 3).await
    })
    .await?;
    Ok(SqliteRound {
        tagged_before,
        ready,
        next_tag,
        deployed: ready_at.elapsed(),
    })
}

async fn pg_round(
    o: &Options,
    dir: &Path,
    store: &str,
    client: &reqwest::Client,
) -> anyhow::Result<Duration> {
    let (pa, pb) = (free_port()?, free_port()?);
    let sims = Sims::start(&format!("http://127.0.0.1:{pb}")).await?;
    let mut a = replica(dir, "a", &sims, pa, store)?;
    let mut b = replica(dir, "b", &sims, pb, store)?;
    a.start(&o.hoist)?;
    a.ready(client).await?;

    // A alone claims the tag job, which waits on Bitbucket far longer than the lease.
    sims.bitbucket
        .faults()
        .push(Fault::Delay(Duration::from_secs(60)), 1);
    let jira = JiraSim::new();
    ticket(&sims, &jira, std::slice::from_ref(&a), "REC-1").await?;
    let asked = Instant::now();
    while sims.bitbucket.requests().is_empty() {
        ensure!(
            asked.elapsed() < Duration::from_secs(10),
            "replica A never called Bitbucket: {}",
            tail(&a.log)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.start(&o.hoist)?;
    b.ready(client).await?;
    a.kill9();
    let killed = Instant::now();
    wait(Duration::from_secs(90), &b, async || stg_tags(&sims) > 0).await?;
    Ok(killed.elapsed())
}

fn replica(dir: &Path, name: &str, sims: &Sims, port: u16, store: &str) -> anyhow::Result<Replica> {
    let listen = format!("127.0.0.1:{port}");
    let config = dir.join(format!("{name}.toml"));
    // No lease_secs: the default is what is measured.
    std::fs::write(&config, config_toml(sims, &listen, store, None))?;
    Ok(Replica {
        name: format!("replica {name}"),
        config,
        log: dir.join(format!("{name}.log")),
        url: format!("http://{listen}"),
        child: None,
    })
}

async fn ticket(
    sims: &Sims,
    jira: &JiraSim,
    replicas: &[Replica],
    issue: &str,
) -> anyhow::Result<()> {
    sims.jira.add_issue(issue, "In Progress");
    let commit = random_hash();
    sims.bitbucket
        .add_commit(REPO, &commit, &format!("{issue}: a change"));
    send_ticket(jira, replicas, issue, &commit).await
}

fn stg_tags(sims: &Sims) -> usize {
    sims.bitbucket
        .tags(REPO)
        .iter()
        .filter(|(n, _)| n.starts_with("stg"))
        .count()
}

/// Whether `n` releases are listed and every one is deployed in stg.
async fn all_deployed(client: &reqwest::Client, url: &str, n: usize) -> bool {
    let Ok(answer) = client.get(format!("{url}/api/releases")).send().await else {
        return false;
    };
    let Ok(v) = answer.json::<serde_json::Value>().await else {
        return false;
    };
    let list = v["releases"].as_array().cloned().unwrap_or_default();
    list.len() >= n && list.iter().all(|r| !r["deployed_at"].is_null())
}

/// Polls `done` every 10 ms; fails with the replica's log when it does not hold in `limit`.
async fn wait(
    limit: Duration,
    r: &Replica,
    mut done: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while !done().await {
        ensure!(
            start.elapsed() < limit,
            "nothing moved within {limit:?}: {}",
            tail(&r.log)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn result(key: &str, value: impl std::fmt::Display) {
    println!("RESULT {key} {value}");
}

/// Prints KEY_p50_ms and KEY_max_ms.
fn spread(key: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    let Some(max) = values.last() else { return };
    result(
        &format!("{key}_p50_ms"),
        format!("{:.0}", values[(values.len() - 1) / 2]),
    );
    result(&format!("{key}_max_ms"), format!("{max:.0}"));
}
