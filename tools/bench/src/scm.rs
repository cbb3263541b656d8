//! `hoist-bench scm`: SCM calls per release, and Hoist's own time per step, on the Stack (Hoist's server
//! and worker with simulators of every vendor on loopback, in this process). Printed, never
//! asserted; lines starting with `RESULT` are read by `scripts/bench.sh`.
//!
//! - SCM calls: the Bitbucket simulator holds 100, 1,000 and 10,000 tags of the family
//!   `stg{major}.{minor}.{patch}` (each on its own commit); tickets are assigned one at a time
//!   (CircleCI does not build: `auto_build` off) and each release's calls are the simulator's
//!   request count before the Jira POST and after every job is done. Its wall time runs from the
//!   Jira POST to the simulator receiving the tag-create POST.
//! - Steps (100 tags): "Jira POST sent -> Bitbucket receives the tag-create POST" (timed by the
//!   simulator's tag announcement, received by a task of its own), and "CircleCI job-completed POST
//!   sent -> Gate receives the deploy trigger" (Hoist's `spinnaker.gate_url` points at a
//!   pass-through in this bench that notes the arrival of each request, then forwards it to the
//!   Gate simulator). Both include the loopback HTTP of every call on the way. The simulators'
//!   handling of the calls before the last is printed apart: the Bitbucket simulator builds a
//!   page of 100 tags as Bitbucket shapes them (milliseconds of JSON), and "own" is the time
//!   without it, as SPEC 10 measures against simulators that answer at once. The worker runs with the
//!   production poll interval (250 ms), so a job starts when it is enqueued (notify), not by
//!   polling. One release at a time, two warm-up rounds not counted.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use hoist::domain::ReleaseStatus;
use hoist_cli::stack::{JIRA_TOKEN_HEADER, REPO, Stack, StackOptions};
use tokio::sync::mpsc;

fn options(store_url: Option<String>) -> StackOptions {
    StackOptions {
        store_url,
        auto_build: false,
        // Hoist's default: jobs start on notification, polling is only the fallback.
        poll_ms: 250,
        ..StackOptions::default()
    }
}

/// Every request of the bench comes from one address: the per-client rate limit is off.
fn unlimited(c: &mut hoist::config::ConfigFile) {
    c.server.limits.rate_per_second = 0;
}

/// `stg1.{i / 100}.{i % 100}`: the family, consecutive versions with patch rollover at 99.
fn seed(stack: &Stack, tags: usize) {
    for i in 0..tags {
        let name = format!("stg1.{}.{}", i / 100, i % 100);
        stack
            .bitbucket
            .add_tag(REPO, &name, &hoist_sim::bitbucket::random_hash());
    }
}

/// The tag that must come after `tags` seeded ones and `made` made by the bench.
fn expected_next(tags: usize, made: usize) -> String {
    let i = tags + made;
    format!("stg1.{}.{}", i / 100, i % 100)
}

/// Announces every tag the simulator creates, with the moment this task heard of it.
fn watch_tags(stack: &Stack) -> mpsc::UnboundedReceiver<(String, String, Instant)> {
    let mut events = stack.bitbucket.subscribe();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(t) = events.recv().await {
            if tx.send((t.hash, t.name, Instant::now())).is_err() {
                return;
            }
        }
    });
    rx
}

async fn next_tag(
    rx: &mut mpsc::UnboundedReceiver<(String, String, Instant)>,
    commit: &str,
) -> anyhow::Result<(String, Instant)> {
    let wait = async {
        while let Some((hash, name, at)) = rx.recv().await {
            if hash == commit {
                return Ok((name, at));
            }
        }
        bail!("the tag watcher stopped")
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("no tag created within 30 s")?
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    fn new() -> Self {
        Self {
            http: reqwest::Client::new(),
        }
    }

    /// Posts a Jira Automation assignment; answers the release id and when the POST was sent.
    async fn assign(
        &self,
        stack: &Stack,
        issue: &str,
        commit: &str,
    ) -> anyhow::Result<(i64, Instant)> {
        let body =
            serde_json::to_vec(&hoist_sim::jira::automation_body(REPO, commit, issue, None))?;
        let request = self
            .http
            .post(format!("{}/hooks/jira", stack.url))
            .header("content-type", "application/json")
            .header(JIRA_TOKEN_HEADER, &stack.options.jira_token)
            .body(body);
        let sent = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await?;
        ensure!(
            status.as_u16() == 202,
            "Jira POST answered {status}: {answer}"
        );
        let id = answer["release"]
            .as_i64()
            .with_context(|| format!("no release in {answer}"))?;
        Ok((id, sent))
    }

    /// Posts CircleCI's job-completed for a successful build of `commit`; answers when sent.
    async fn build(&self, stack: &Stack, commit: &str) -> anyhow::Result<Instant> {
        let (event, payload) = stack
            .circleci
            .build_events(None, commit, "success")
            .into_iter()
            .next()
            .context("no event")?;
        let body = serde_json::to_vec(&payload)?;
        let signature = hoist_sim::circleci::sign(&stack.options.circleci_secret, &body);
        let request = self
            .http
            .post(format!("{}/hooks/circleci", stack.url))
            .header("content-type", "application/json")
            .header("circleci-event-type", &event)
            .header("circleci-signature", signature)
            .header("user-agent", "CircleCI-Webhook/1.0")
            .body(body);
        let sent = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(
            status.as_u16() == 202,
            "CircleCI POST answered {status}: {text}"
        );
        Ok(sent)
    }
}

/// Tags one release; answers its Bitbucket calls, the time from the Jira POST to the tag-create
/// POST, the tag and the commit.
async fn release(
    stack: &Stack,
    client: &Client,
    tags: &mut mpsc::UnboundedReceiver<(String, String, Instant)>,
    issue: &str,
) -> anyhow::Result<(usize, Step, String, String)> {
    let commit = stack.commit(&format!("{issue}: a change"));
    let before = stack.bitbucket.request_count();
    let sim_before = stack.bitbucket.get_handling_time();
    let (id, sent) = client.assign(stack, issue, &commit).await?;
    let (tag, created) = next_tag(tags, &commit).await?;
    // The GETs on the way (commit, tag listing) were answered before the tag-create POST.
    let sim = stack.bitbucket.get_handling_time() - sim_before;
    let r = stack
        .wait_release(id, Duration::from_secs(30), |r| {
            r.tag.is_some() || r.status == ReleaseStatus::Failed
        })
        .await?;
    ensure!(r.tag.as_deref() == Some(&tag), "release {id}: {r:?}");
    stack.settle(Duration::from_secs(30)).await?;
    let calls = stack.bitbucket.request_count() - before;
    Ok((
        calls,
        Step {
            total: created - sent,
            sim,
        },
        tag,
        commit,
    ))
}

/// One step's time: webhook sent to outbound call received, and the part of it the simulators
/// spent answering the calls before (building a page of 100 tags as Bitbucket shapes it is
/// milliseconds of JSON). SPEC 10's "own time" is against simulators that answer at once, so it
/// is the difference; both are printed.
#[derive(Clone, Copy)]
struct Step {
    total: Duration,
    sim: Duration,
}

impl Step {
    fn own(&self) -> Duration {
        self.total.saturating_sub(self.sim)
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

async fn scm(
    backend: &str,
    store_url: Option<String>,
    tags: usize,
    releases: usize,
) -> anyhow::Result<()> {
    let stack = Stack::start_with(options(store_url), unlimited).await?;
    seed(&stack, tags);
    let mut watcher = watch_tags(&stack);
    let client = Client::new();
    let mut calls = Vec::new();
    let mut walls = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..releases {
        let (n, wall, tag, _) =
            release(&stack, &client, &mut watcher, &format!("SCM-{}", tags + i)).await?;
        if tag != expected_next(tags, i) {
            wrong.push(format!("{tag} (expected {})", expected_next(tags, i)));
        }
        calls.push(n);
        walls.push(wall.total);
    }
    stack.stop().await?;
    let steady = &calls[1..];
    let steady_max = steady.iter().copied().max().unwrap_or(0);
    let steady_mean = steady.iter().sum::<usize>() as f64 / steady.len().max(1) as f64;
    walls.sort();
    println!(
        "{backend:<10} {tags:>7} {:>14} {:>12} {:>12.2} {:>10.2} ms {:>10.2} ms   {}",
        calls[0],
        steady_max,
        steady_mean,
        pct(&walls, 50.0).as_secs_f64() * 1e3,
        walls.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        if wrong.is_empty() {
            "every tag the next version".to_string()
        } else {
            format!("WRONG TAGS: {}", wrong.join(", "))
        }
    );
    let k = |f: &str| format!("RESULT scm.{backend}.{tags}.{f}");
    println!("{} {}", k("first"), calls[0]);
    println!("{} {steady_max}", k("steady_max"));
    println!("{} {steady_mean:.2}", k("steady_mean"));
    println!("{} {}", k("wall_p50_us"), pct(&walls, 50.0).as_micros());
    println!(
        "{} {}",
        k("wall_max_us"),
        walls.last().copied().unwrap_or_default().as_micros()
    );
    println!("{} {}", k("releases"), releases);
    if !wrong.is_empty() {
        println!("{} {}", k("wrong_tags"), wrong.len());
    }
    Ok(())
}

/// A pass-through in front of the Gate simulator that notes when each trigger arrives (and
/// forwards the deploy following's reads as they are).
struct GateTap {
    target: OnceLock<String>,
    arrivals: mpsc::UnboundedSender<Instant>,
    http: reqwest::Client,
}

async fn tap(
    State(tap): State<Arc<GateTap>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if method == Method::POST && uri.path().starts_with("/webhooks/webhook/") {
        let _ = tap.arrivals.send(Instant::now());
    }
    let target = tap.target.get().cloned().unwrap_or_default();
    let mut request = tap
        .http
        .request(method, format!("{target}{uri}"))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(r) => {
            let status =
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, r.bytes().await.unwrap_or_default()).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn steps(backend: &str, store_url: Option<String>, rounds: usize) -> anyhow::Result<()> {
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    let gate_tap = Arc::new(GateTap {
        target: OnceLock::new(),
        arrivals,
        http: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tap_url = format!("http://{}", listener.local_addr()?);
    let router = axum::Router::new()
        .fallback(tap)
        .with_state(gate_tap.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let stack = Stack::start_with(options(store_url), |c| {
        unlimited(c);
        if let Some(s) = c.spinnaker.as_mut() {
            s.gate_url = tap_url.clone();
        }
    })
    .await?;
    let _ = gate_tap.target.set(stack.gate.url());
    seed(&stack, 100);
    let mut watcher = watch_tags(&stack);
    let client = Client::new();
    let (mut to_tag, mut to_deploy) = (Vec::new(), Vec::new());
    for i in 0..rounds + 2 {
        let (_, jira_tag, _, commit) =
            release(&stack, &client, &mut watcher, &format!("STEP-{i}")).await?;
        while arrived.try_recv().is_ok() {}
        let triggers = stack.gate.triggers().len();
        let sim_before = stack.bitbucket.get_handling_time();
        let sent = client.build(&stack, &commit).await?;
        let at = tokio::time::timeout(Duration::from_secs(30), arrived.recv())
            .await
            .context("no deploy trigger within 30 s")?
            .context("the Gate tap stopped")?;
        let sim = stack.bitbucket.get_handling_time() - sim_before;
        stack.settle(Duration::from_secs(30)).await?;
        ensure!(
            stack.gate.triggers().len() == triggers + 1,
            "the Gate simulator did not record the trigger"
        );
        if i >= 2 {
            to_tag.push(jira_tag);
            to_deploy.push(Step {
                total: at - sent,
                sim,
            });
        }
    }
    stack.stop().await?;
    server.abort();
    for (name, label, v) in [
        (
            "jira_tag",
            "Jira POST sent -> Bitbucket receives the tag-create POST",
            to_tag,
        ),
        (
            "build_deploy",
            "CircleCI POST sent -> Gate receives the deploy trigger",
            to_deploy,
        ),
    ] {
        let mut own: Vec<Duration> = v.iter().map(Step::own).collect();
        let mut total: Vec<Duration> = v.iter().map(|s| s.total).collect();
        own.sort();
        total.sort();
        let (p50, p99) = (pct(&own, 50.0), pct(&own, 99.0));
        let (t50, t99) = (pct(&total, 50.0), pct(&total, 99.0));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{backend:<10} {label:<58} {:>8.2} ms {:>8.2} ms {:>8.2} ms {:>8.2} ms {:>5}",
            ms(p50),
            ms(p99),
            ms(t50),
            ms(t99),
            v.len()
        );
        let k = |f: &str| format!("RESULT step.{backend}.{name}.{f}");
        println!("{} {}", k("p50_us"), p50.as_micros());
        println!("{} {}", k("p99_us"), p99.as_micros());
        println!("{} {}", k("total_p50_us"), t50.as_micros());
        println!("{} {}", k("total_p99_us"), t99.as_micros());
        println!("{} {}", k("n"), v.len());
    }
    Ok(())
}

struct Pg {
    base: String,
    made: Vec<String>,
}

impl Pg {
    async fn admin(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) =
            tokio_postgres::connect(&format!("{}/postgres", self.base), tokio_postgres::NoTls)
                .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    async fn fresh(&mut self) -> anyhow::Result<String> {
        let name = format!("hoist_bench_{}", uuid::Uuid::new_v4().simple());
        self.admin()
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        self.made.push(name.clone());
        Ok(format!("{}/{name}", self.base))
    }

    async fn drop_all(&mut self) -> anyhow::Result<()> {
        let admin = self.admin().await?;
        for name in self.made.drain(..) {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
        Ok(())
    }
}

pub fn run(quick: bool, pg: Option<String>, pg_delay: Option<Duration>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(measure(quick, pg, pg_delay))
}

async fn measure(
    quick: bool,
    pg: Option<String>,
    pg_delay: Option<Duration>,
) -> anyhow::Result<()> {
    let (releases, rounds) = if quick { (4, 10) } else { (20, 100) };
    let mut pg = pg.map(|base| Pg {
        base: base.trim_end_matches('/').to_string(),
        made: Vec::new(),
    });
    let mut backends = vec!["sqlite"];
    if pg.is_some() {
        backends.push("postgres");
    }

    println!(
        "SCM calls per release ({releases} releases one at a time; steady state = all but the first)"
    );
    println!(
        "{:<10} {:>7} {:>14} {:>12} {:>12} {:>13} {:>13}",
        "backend", "tags", "first release", "steady max", "steady mean", "wall p50", "wall max"
    );
    for backend in &backends {
        for tags in [100, 1_000, 10_000] {
            let url = match (&mut pg, *backend) {
                (Some(pg), "postgres") => Some(pg.fresh().await?),
                _ => None,
            };
            scm(backend, url, tags, releases).await?;
        }
    }
    println!();
    println!(
        "Hoist's own time per step (100 tags; {rounds} rounds one at a time): own = end to end minus the Bitbucket simulator's time answering the calls on the way"
    );
    println!(
        "{:<10} {:<58} {:>11} {:>11} {:>11} {:>11} {:>5}",
        "backend", "step", "own p50", "own p99", "e2e p50", "e2e p99", "n"
    );
    for backend in &backends {
        let url = match (&mut pg, *backend) {
            (Some(pg), "postgres") => Some(pg.fresh().await?),
            _ => None,
        };
        steps(backend, url, rounds).await?;
    }
    if let (Some(pg), Some(delay)) = (&mut pg, pg_delay) {
        let url = remote(&pg.fresh().await?, delay).await?;
        steps("pg_remote", Some(url), rounds).await?;
    }
    let (deploy, followed) = if quick {
        (Duration::from_secs(5), 5)
    } else {
        (Duration::from_secs(60), 20)
    };
    println!();
    println!(
        "Deploy following ({followed} releases 0.5 s apart, each deploy succeeding {} s after its trigger; Spinnaker's default schedule): Gate calls per release, and Hoist's own time from Gate answering SUCCEEDED to Slack receiving `deployed`",
        deploy.as_secs()
    );
    crate::follow::header();
    for backend in &backends {
        let url = match (&mut pg, *backend) {
            (Some(pg), "postgres") => Some(pg.fresh().await?),
            _ => None,
        };
        crate::follow::follow(backend, url, deploy, followed).await?;
    }

    let clicked = if quick { 5 } else { 20 };
    println!(
        "\nPromotion ({clicked} releases one at a time, stg -> qa by itself, then a signed Slack click on \"Approve prod\"): Hoist's own time from the click to the prod tag's creation call"
    );
    crate::click::header();
    for backend in &backends {
        let url = match (&mut pg, *backend) {
            (Some(pg), "postgres") => Some(pg.fresh().await?),
            _ => None,
        };
        crate::click::click(backend, url, clicked).await?;
    }
    if let Some(pg) = &mut pg {
        pg.drop_all().await?;
    }
    Ok(())
}

/// `url` (a PostgreSQL database) behind a [`crate::delay::relay`] holding each chunk `delay`
/// each way. Prints the round trip of `SELECT 1` through it (median of 20), which is what a step's
/// statements pay.
async fn remote(url: &str, delay: Duration) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url)?;
    let host = url.host_str().context("the PostgreSQL URL has no host")?;
    let target = tokio::net::lookup_host((host, url.port().unwrap_or(5432)))
        .await?
        .next()
        .context("the PostgreSQL host has no address")?;
    let relay = crate::delay::relay(target, delay)?;
    url.set_host(Some("127.0.0.1"))?;
    url.set_port(Some(relay.port()))
        .map_err(|()| anyhow::anyhow!("cannot set the relay's port"))?;
    let (client, connection) = tokio_postgres::connect(url.as_str(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut rtts = Vec::new();
    for _ in 0..20 {
        let at = Instant::now();
        client.batch_execute("SELECT 1").await?;
        rtts.push(at.elapsed());
    }
    rtts.sort();
    let rtt = rtts[rtts.len() / 2];
    println!(
        "pg_remote: PostgreSQL behind a relay holding each chunk {} us each way; SELECT 1 round trip {:.2} ms (median of 20)",
        delay.as_micros(),
        rtt.as_secs_f64() * 1e3
    );
    println!("RESULT step.pg_remote.rtt_us {}", rtt.as_micros());
    Ok(url.to_string())
}
