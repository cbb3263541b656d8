//! History at scale (SPEC 10, issue 22; `scripts/bench-scale.sh`): a store filled with a year of
//! history (100,000 releases and 1,000,000 job rows by default), then the dashboard's pages and
//! `/api/stats` asked of a real `hoist serve` on it, one request at a time: p50 and p99 of each.
//!
//! The history is written with set-based SQL straight into the schema Hoist's migrations made
//! (the store's own code writes one release at a time, which would take hours here): releases
//! spread evenly over `days`, three projects, every 13th release failing its deploy in stg, half
//! promoted to qa an hour later and a quarter to prod a day later (every 48th of those failing),
//! each prod promotion approved, three timeline lines and `jobs / releases` finished jobs per
//! release. The shapes are the ones the store writes (job payloads are `JobSpec`'s JSON).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::soak::{admin, free_port, tail, tempfile_dir};

pub struct Options {
    pub hoist: PathBuf,
    pub pg: Option<String>,
    pub releases: u64,
    pub jobs: u64,
    pub days: u64,
    /// Requests per measured page.
    pub requests: usize,
}

const PROJECTS: [&str; 3] = ["payments-api", "ledger", "storefront"];

pub fn run(o: Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(scale(o))
}

async fn scale(o: Options) -> anyhow::Result<()> {
    ensure!(
        o.releases >= 100 && o.jobs >= o.releases,
        "at least 100 releases and a job per release"
    );
    let dir = tempfile_dir()?;
    let result = async {
        let sqlite = format!("sqlite://{}", dir.join("hoist.db").display());
        let mut runs = vec![(
            "sqlite",
            measure_backend(&o, "sqlite", &sqlite, &dir).await?,
        )];
        if let Some(base) = &o.pg {
            let name = format!("hoist_scale_{}", uuid::Uuid::new_v4().simple());
            admin(base, &format!("CREATE DATABASE {name}")).await?;
            let url = format!("{}/{name}", base.trim_end_matches('/'));
            let r = measure_backend(&o, "postgres", &url, &dir).await;
            admin(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await?;
            runs.push(("postgres", r?));
        }
        table(&o, &runs);
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// One page's figures on one backend: (page, p50 ms, p99 ms).
type Row = (&'static str, f64, f64);

async fn measure_backend(
    o: &Options,
    backend: &str,
    store: &str,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<Row>> {
    // The schema: Hoist's migrations, run by opening the store.
    let handle = hoist::store::Store::connect(&hoist::store::Options {
        url: store.to_string(),
        fsync: false,
        max_attempts: 10,
        schema: None,
        serve: false,
    })
    .await
    .context("open the store")?;
    drop(handle);

    let now = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let sql = Fill {
        backend,
        releases: o.releases,
        jobs_per_release: o.jobs / o.releases,
        span_ms: o.days * 86_400_000,
        now,
    }
    .statements();
    match backend {
        "sqlite" => {
            let path = store.trim_start_matches("sqlite://").to_string();
            tokio::task::spawn_blocking(move || fill_sqlite(&path, &sql)).await??
        }
        _ => fill_postgres(store, &sql).await?,
    }
    let filled = started.elapsed();
    println!(
        "{backend}: filled {} releases, {} jobs over {} days in {:.1} s",
        o.releases,
        o.jobs / o.releases * o.releases,
        o.days,
        filled.as_secs_f64()
    );
    let mut server = Server::start(&o.hoist, dir, backend, store)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    server.ready(&client).await?;
    let base = &server.url;
    let newest = o.releases as i64;
    let mut dice = 0x9e37_79b9_7f4a_7c15u64;
    let pages: Vec<(&'static str, PathOf)> = vec![
        ("list", Box::new(|_| "/".to_string())),
        (
            "list_deep",
            Box::new(move |d| format!("/?before={}", 1 + next(d) % newest as u64)),
        ),
        ("list_prod", Box::new(|_| "/?env=prod".to_string())),
        (
            "list_project_failed",
            Box::new(|_| "/?project=ledger&status=deploy_failed".to_string()),
        ),
        (
            "release",
            Box::new(move |d| format!("/releases/{}", 1 + next(d) % newest as u64)),
        ),
        (
            "dora_30",
            Box::new(|_| "/dora?project=payments-api&env=prod&days=30".to_string()),
        ),
        ("dora_all_30", Box::new(|_| "/dora?days=30".to_string())),
        (
            "dora_365",
            Box::new(|_| "/dora?project=payments-api&env=prod&days=365".to_string()),
        ),
        (
            "stats_30",
            Box::new(|_| "/api/stats?project=payments-api&env=prod&days=30".to_string()),
        ),
        (
            "stats_365",
            Box::new(|_| "/api/stats?project=payments-api&env=prod&days=365".to_string()),
        ),
        (
            "api_list",
            Box::new(|_| "/api/releases?limit=50".to_string()),
        ),
    ];
    let mut rows = Vec::new();
    for (name, path) in &pages {
        // One unmeasured request warms the page's statements and the caches.
        get(&client, base, &path(&mut dice)).await?;
        let mut times = Vec::with_capacity(o.requests);
        for _ in 0..o.requests {
            let p = path(&mut dice);
            let t = Instant::now();
            get(&client, base, &p).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let pct = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "{backend}: {name:<20} p50 {:>8.2} ms  p99 {:>8.2} ms  ({} requests, e.g. {})",
            pct(0.5),
            pct(0.99),
            times.len(),
            path(&mut dice)
        );
        rows.push((*name, pct(0.5), pct(0.99)));
    }
    server.stop();
    Ok(rows)
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<()> {
    let answer = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = answer.status();
    let body = answer.bytes().await?;
    ensure!(
        status == 200,
        "GET {path}: {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    Ok(())
}

/// A measured page's path, from the dice (pages that differ per request draw a release).
type PathOf = Box<dyn Fn(&mut u64) -> String>;

fn next(d: &mut u64) -> u64 {
    *d ^= *d << 13;
    *d ^= *d >> 7;
    *d ^= *d << 17;
    *d
}

/// The table: every page, p50 and p99 per backend, against SPEC 10's 100 ms (p50).
fn table(o: &Options, runs: &[(&str, Vec<Row>)]) {
    println!();
    println!(
        "History at scale: {} releases, {} job rows over {} days; {} requests per page, one at a time (target: p50 < 100 ms)",
        o.releases,
        o.jobs / o.releases * o.releases,
        o.days,
        o.requests
    );
    let mut head = format!("{:<22}", "page");
    for (backend, _) in runs {
        head.push_str(&format!(" {:>22}", format!("{backend} p50 / p99")));
    }
    println!("{head}");
    let Some((_, first)) = runs.first() else {
        return;
    };
    for (i, (page, ..)) in first.iter().enumerate() {
        let mut line = format!("{page:<22}");
        for (_, rows) in runs {
            let (_, p50, p99) = rows[i];
            let flag = if p50 < 100.0 { "" } else { " !" };
            line.push_str(&format!(" {:>22}", format!("{p50:.1} / {p99:.1} ms{flag}")));
        }
        println!("{line}");
    }
}

/// The history's SQL, in each backend's dialect (SQLite keeps times as integer milliseconds,
/// PostgreSQL as `timestamptz`).
struct Fill<'a> {
    backend: &'a str,
    releases: u64,
    jobs_per_release: u64,
    span_ms: u64,
    now: i64,
}

impl Fill<'_> {
    fn pg(&self) -> bool {
        self.backend == "postgres"
    }

    /// A time `ms` milliseconds after the time expression `at`.
    fn plus(&self, at: &str, ms: i64) -> String {
        if self.pg() {
            format!("({at} + interval '{ms} milliseconds')")
        } else {
            format!("({at} + {ms})")
        }
    }

    /// A time from an integer millisecond expression.
    fn time(&self, ms: &str) -> String {
        if self.pg() {
            format!("to_timestamp(({ms})::double precision / 1000.0)")
        } else {
            format!("({ms})")
        }
    }

    /// Integers 0..n as a row source `n(i)`.
    fn series(&self, from: u64, to: u64) -> String {
        if self.pg() {
            format!("generate_series({from}::bigint, {to}::bigint) AS n(i)")
        } else {
            format!(
                "(WITH RECURSIVE s(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM s WHERE i < {to}) SELECT i FROM s) AS n"
            )
        }
    }

    fn hex(&self, expr: &str) -> String {
        if self.pg() {
            format!("lpad(to_hex({expr}), 40, '0')")
        } else {
            format!("printf('%040x', {expr})")
        }
    }

    fn flag(&self, b: bool) -> &'static str {
        match (self.pg(), b) {
            (true, true) => "true",
            (true, false) => "false",
            (false, true) => "1",
            (false, false) => "0",
        }
    }

    fn statements(&self) -> Vec<String> {
        let (n, base) = (self.releases, self.now - self.span_ms as i64);
        let step = self.span_ms / n;
        let received = self.time(&format!("{base} + i * {step}"));
        let project = format!(
            "(CASE i % 3 WHEN 0 THEN '{}' WHEN 1 THEN '{}' ELSE '{}' END)",
            PROJECTS[0], PROJECTS[1], PROJECTS[2]
        );
        let failed = "i % 13 = 0";
        let version = "'1.' || (i / 1000) || '.' || (i % 1000)";
        let at = |ms: i64| self.plus("received_at", ms);
        let mut sql = vec![format!(
            "INSERT INTO releases (id, project, env, repo, commit_sha, full_commit, issue, status, is_open, tag, version,
               tag_reused, build_url, build_status, deploy_event_id, received_at, updated_at)
             SELECT i, {project}, 'stg', {project}, {hex}, {hex}, 'PAY-' || i,
               CASE WHEN {failed} THEN 'deploy_failed' ELSE 'deployed' END, {closed}, 'stg' || {version}, {version},
               {closed}, 'https://circleci.com/gh/acme/' || {project} || '/' || i, 'success', 'ev-' || i,
               {received}, {received}
             FROM {series}",
            hex = self.hex("i * 2654435761"),
            closed = self.flag(false),
            series = self.series(1, n),
        )];
        sql.push(format!(
            "UPDATE releases SET commit_verified_at = {}, tagged_at = {}, built_at = {},
               deploy_triggered_at = {}, deploy_started_at = {}, finished_at = {}, updated_at = {},
               committed_at = {},
               deployed_at = CASE WHEN status = 'deployed' THEN {} END",
            at(80),
            at(150),
            at(300_000),
            at(300_060),
            at(302_000),
            at(600_000),
            at(600_000),
            at(-7_200_000),
            at(600_000),
        ));
        // Deployments: each release's own in stg (its id is the release's), then promotions.
        let deployment = |env: &str, kind: &str, filter: &str, after: i64, fails: &str| {
            let t = |ms: i64| self.plus("r.received_at", ms);
            format!(
                "INSERT INTO deployments (release_id, project, env, kind, tag, source, application, status,
                   event_id, created_at, triggered_at, started_at, finished_at, updated_at, requested_by, requested_via)
                 SELECT r.id, r.project, '{env}', '{kind}', '{env}' || r.version, r.project || '-{env}', r.project,
                   CASE WHEN {fails} THEN 'failed' ELSE 'deployed' END, 'ev-{env}-' || r.id,
                   {}, {}, {}, {}, {}, {}, {}
                 FROM releases r WHERE {filter} ORDER BY r.id",
                t(after + 60),
                t(after + 60),
                t(after + 2_000),
                t(after + 300_000),
                t(after + 300_000),
                if kind == "release" { "NULL" } else { "'U0PRODLEAD'" },
                if kind == "release" { "NULL" } else { "'slack'" },
            )
        };
        sql.push(deployment(
            "stg",
            "release",
            "true",
            300_000,
            "r.status = 'deploy_failed'",
        ));
        sql.push(deployment(
            "qa",
            "promotion",
            "r.id % 2 = 0 AND r.status = 'deployed'",
            3_600_000,
            "r.id % 26 = 0",
        ));
        sql.push(deployment(
            "prod",
            "promotion",
            "r.id % 4 = 0 AND r.status = 'deployed'",
            86_400_000,
            "r.id % 48 = 8",
        ));
        sql.push(format!(
            "INSERT INTO approvals (release_id, env, approver, via, at)
             SELECT id, 'prod', 'U0PRODLEAD', 'slack', {} FROM releases WHERE id % 4 = 0 AND status = 'deployed'",
            self.plus("received_at", 86_000_000)
        ));
        for (step, ms, message) in [
            ("received", 0, "'ticket ' || issue || ' assigned'"),
            ("tagged", 150, "'tagged ' || tag"),
            ("deployed", 600_000, "'deployed ' || tag || ' to stg'"),
        ] {
            sql.push(format!(
                "INSERT INTO release_events (release_id, at, step, message)
                 SELECT id, {}, '{step}', {message} FROM releases ORDER BY id",
                self.plus("received_at", ms)
            ));
        }
        // Jobs: the tag, the deploy, then looks at Gate.
        let k = self.jobs_per_release;
        let job_at = self.time(&format!("{base} + r.id * {step} + n.i * 1000"));
        sql.push(format!(
            "INSERT INTO jobs (kind, release_id, lane, payload, state, attempts, max_attempts, run_at,
               created_at, updated_at, finished_at)
             SELECT CASE n.i WHEN 0 THEN 'create_tag' WHEN 1 THEN 'deploy' ELSE 'follow_deploy' END,
               r.id,
               CASE n.i WHEN 0 THEN 'tag:' || r.project || ':stg' WHEN 1 THEN 'deploy:' || r.id ELSE 'follow:' || r.id END,
               CASE n.i WHEN 0 THEN '{{\"type\":\"create_tag\",\"release_id\":' || r.id || '}}'
                        WHEN 1 THEN '{{\"type\":\"deploy\",\"release_id\":' || r.id || '}}'
                        ELSE '{{\"type\":\"follow_deploy\",\"deployment_id\":' || r.id || ',\"poll\":' || (n.i - 2) || '}}' END,
               'done', 1, 10, {job_at}, {job_at}, {job_at}, {job_at}
             FROM releases r CROSS JOIN {series} ORDER BY r.id, n.i",
            series = self.series(0, k - 1),
        ));
        if self.pg() {
            for table in [
                "releases",
                "deployments",
                "approvals",
                "release_events",
                "jobs",
            ] {
                sql.push(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                ));
            }
        }
        sql.push("ANALYZE".into());
        sql
    }
}

fn fill_sqlite(path: &str, sql: &[String]) -> anyhow::Result<()> {
    let mut c = rusqlite::Connection::open(path)?;
    c.pragma_update(None, "synchronous", "OFF")?;
    let tx = c.transaction()?;
    for s in sql {
        tx.execute_batch(s)
            .with_context(|| format!("SQLite: {s}"))?;
    }
    tx.commit()?;
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

async fn fill_postgres(url: &str, sql: &[String]) -> anyhow::Result<()> {
    let (mut client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let tx = client.transaction().await?;
    for s in sql.iter().filter(|s| *s != "ANALYZE") {
        tx.batch_execute(s)
            .await
            .with_context(|| format!("PostgreSQL: {s}"))?;
    }
    tx.commit().await?;
    client.batch_execute("ANALYZE").await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// `hoist serve` on the filled store: every project with stg, qa and prod; no API token, so the
/// loopback caller (this program) is answered and signed in.
struct Server {
    child: Option<Child>,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start(
        hoist: &std::path::Path,
        dir: &std::path::Path,
        backend: &str,
        store: &str,
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[server.limits]\nrate_per_second = 0\n[store]\nurl = \"{store}\"\n\
             [bitbucket]\nbase_url = \"http://127.0.0.1:9/2.0\"\nworkspace = \"acme\"\nauth = {{ bearer = {{ env = \"SCALE_UNUSED\" }} }}\n"
        );
        for p in PROJECTS {
            config.push_str(&format!(
                "\n[[projects]]\nname = \"{p}\"\nrepo = \"{p}\"\ncircleci_project = \"bitbucket/acme/{p}\"\nbuild_job = \"build\"\ndefault_env = \"stg\"\n\
                 [projects.environments.stg]\ntag = \"stg{{major}}.{{minor}}.{{patch}}\"\n\
                 [projects.environments.qa]\ntag = \"qa{{major}}.{{minor}}.{{patch}}\"\npromote_from = \"stg\"\n\
                 [projects.environments.prod]\ntag = \"v{{major}}.{{minor}}.{{patch}}\"\npromote_from = \"qa\"\napprovals = 1\napprovers = [\"U0PRODLEAD\"]\n"
            ));
        }
        let path = dir.join(format!("{backend}.toml"));
        std::fs::write(&path, config)?;
        let log = dir.join(format!("{backend}.log"));
        let child = Command::new(hoist)
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .env("HOIST_LOG", "warn")
            .env("SCALE_UNUSED", "unused")
            .env_remove("HOIST_LISTEN")
            .env_remove("HOIST_STORE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .spawn()
            .with_context(|| format!("start {}", hoist.display()))?;
        Ok(Server {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    async fn ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!("hoist serve exited ({status}): {}", tail(&self.log));
            }
            if let Ok(r) = client.get(format!("{}/healthz", self.url)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("hoist serve did not become ready: {}", tail(&self.log));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
