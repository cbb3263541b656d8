//! Cold start of `hoist lambda`: the time from process start to the first answered invocation,
//! and peak memory, against a local Lambda Runtime API (`hoist_sim::lambda`), beside the seed's
//! approach (a Python handler importing `requests`, `scripts/bench/python-lambda/`) measured the
//! same way on the same machine. The first invocation is the same for both: a Jira Automation
//! request in an API Gateway HTTP API event that becomes a tag in the Bitbucket simulator and a
//! Slack message. A second invocation on the warm process is timed too.
//!
//! Run `scripts/bench-lambda-cold-start.sh`, or `cargo bench --bench lambda_cold_start`.
//! `HOIST_BENCH_RUNS` (default 10); `HOIST_BENCH_PG` a PostgreSQL server URL (default
//! `postgres://postgres@127.0.0.1:5432` when it answers; `off` to skip); `HOIST_BENCH_BIN` another
//! build to measure, e.g. `target/lambda/hoist/bootstrap` from `cargo lambda build` (a file named
//! `bootstrap` is started without arguments, as Lambda does).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hoist_cli::stack::{REPO, WORKSPACE};
use hoist_sim::bitbucket::{BitbucketSim, SimAuth, random_hash};
use hoist_sim::lambda::RuntimeApiSim;
use hoist_sim::slack::SlackSim;
use serde_json::{Value, json};

const HTTP_API_V2: &str =
    include_str!("../../fixtures/aws-apigw-http-api-v2-request-post-body.json");
const TOKEN: &str = "bench-bitbucket-token";
const JIRA_TOKEN: &str = "bench-jira-token";

#[derive(Clone)]
enum Contender {
    Hoist {
        label: &'static str,
        store: Option<String>,
    },
    Python {
        exe: PathBuf,
        version: String,
    },
}

impl Contender {
    fn label(&self) -> String {
        match self {
            Self::Hoist { label, .. } => format!("hoist lambda ({label})"),
            Self::Python { version, .. } => format!("python {version} + requests (seed)"),
        }
    }
}

struct Sample {
    cold: Duration,
    init: Duration,
    warm: Duration,
    peak_rss_kib: u64,
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("lambda_cold_start: a benchmark; run `cargo bench --bench lambda_cold_start`");
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let runs: usize = std::env::var("HOIST_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut contenders = vec![
        Contender::Hoist {
            label: "no store: stateless",
            store: None,
        },
        Contender::Hoist {
            label: "SQLite file in /tmp",
            store: Some(String::new()),
        },
    ];
    let pg = postgres_database().await;
    if let Some(url) = &pg {
        contenders.push(Contender::Hoist {
            label: "PostgreSQL",
            store: Some(url.clone()),
        });
    }
    match python() {
        Ok((exe, version)) => contenders.push(Contender::Python { exe, version }),
        Err(e) => eprintln!("python baseline skipped: {e:#}"),
    }
    println!(
        "Lambda cold start: process start -> first invocation answered (a Jira ticket tagged in the \
         Bitbucket simulator, Slack told), {runs} runs each, median [min .. max]"
    );
    println!(
        "{:<40} {:>22} {:>22} {:>20} {:>18}",
        "contender", "cold start ms", "start->first poll ms", "peak RSS MiB", "warm invoke ms"
    );
    for c in &contenders {
        // One unmeasured run first: page cache, and migrations on a fresh PostgreSQL database.
        one_run(c).await.with_context(|| c.label())?;
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(one_run(c).await.with_context(|| c.label())?);
        }
        let ms = |f: &dyn Fn(&Sample) -> Duration| {
            stats(
                samples
                    .iter()
                    .map(|s| f(s).as_secs_f64() * 1000.0)
                    .collect(),
            )
        };
        let mib = stats(
            samples
                .iter()
                .map(|s| s.peak_rss_kib as f64 / 1024.0)
                .collect(),
        );
        println!(
            "{:<40} {:>22} {:>22} {:>20} {:>18}",
            c.label(),
            ms(&|s| s.cold),
            ms(&|s| s.init),
            mib,
            ms(&|s| s.warm)
        );
    }
    let exe = hoist_exe();
    let exe = exe.as_path();
    println!(
        "hoist binary: {} ({:.1} MiB); machine: {} CPU(s)",
        exe.display(),
        std::fs::metadata(exe)?.len() as f64 / 1048576.0,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let Some(url) = pg {
        drop_database(&url).await;
    }
    Ok(())
}

/// The binary measured: `HOIST_BENCH_BIN`, else the one this benchmark was built with.
fn hoist_exe() -> PathBuf {
    std::env::var_os("HOIST_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hoist")))
}

/// `median [min .. max]`
fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "{:.1} [{:.1} .. {:.1}]",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    )
}

/// One cold start: fresh simulators, the event queued before the process starts.
async fn one_run(c: &Contender) -> anyhow::Result<Sample> {
    let api = RuntimeApiSim::start().await?;
    let bitbucket = BitbucketSim::start(WORKSPACE, SimAuth::Bearer(TOKEN.into())).await?;
    bitbucket.add_repo(REPO);
    let slack = SlackSim::start(None).await?;
    let first = api.queue(ticket_event(&bitbucket));
    let dir = tempfile::tempdir()?;
    let mut cmd = command(c, &dir, &bitbucket)?;
    cmd.env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "hoist")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("BITBUCKET_TOKEN", TOKEN)
        .env("HOIST_JIRA_TOKEN", JIRA_TOKEN)
        .env("SLACK_WEBHOOK_URL", slack.webhook_url())
        .env("TMPDIR", dir.path())
        .env_remove("HOIST_STORE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let answered = api
        .answer(&first, Duration::from_secs(60))
        .await
        .context("first invocation not answered")?;
    let peak_rss_kib = peak_rss_kib(child.id().context("exited")?)?;
    check(answered.response(), &bitbucket, 1)?;
    let warm_started = Instant::now();
    let second = api.queue(ticket_event(&bitbucket));
    let warm = api
        .answer(&second, Duration::from_secs(60))
        .await
        .context("second invocation not answered")?;
    check(warm.response(), &bitbucket, 2)?;
    let _ = child.kill().await;
    if slack.messages().len() != 2 {
        bail!("expected 2 Slack messages, got {}", slack.messages().len());
    }
    Ok(Sample {
        cold: answered.at - started,
        init: api.first_poll().context("never polled")? - started,
        warm: warm.at - warm_started,
        peak_rss_kib,
    })
}

fn command(
    c: &Contender,
    dir: &tempfile::TempDir,
    bitbucket: &BitbucketSim,
) -> anyhow::Result<tokio::process::Command> {
    Ok(match c {
        Contender::Hoist { store, .. } => {
            let store = match store.as_deref() {
                None => String::new(),
                Some("") => format!(
                    "[store]\nurl = \"sqlite://{}/hoist.db\"\n",
                    dir.path().display()
                ),
                Some(url) => format!("[store]\nurl = \"{url}\"\n"),
            };
            let config = dir.path().join("hoist.toml");
            std::fs::write(&config, hoist_config(&store, bitbucket))?;
            let exe = hoist_exe();
            let mut cmd = tokio::process::Command::new(&exe);
            if exe.file_name().is_none_or(|n| n != "bootstrap") {
                cmd.arg("lambda");
            }
            cmd.env("HOIST_CONFIG", config);
            cmd
        }
        Contender::Python { exe, .. } => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scripts/bench/python-lambda/bootstrap.py");
            let mut cmd = tokio::process::Command::new(exe);
            cmd.arg(script)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("BITBUCKET_URL", bitbucket.base_url())
                .env("BITBUCKET_WORKSPACE", WORKSPACE)
                .env("ALLOW_IPS", "203.0.113.0/24");
            cmd
        }
    })
}

fn hoist_config(store: &str, bitbucket: &BitbucketSim) -> String {
    format!(
        r#"[server]
public_url = "https://hoist.example.com"

{store}
[bitbucket]
base_url = "{}"
workspace = "{WORKSPACE}"
auth = {{ bearer = {{ env = "BITBUCKET_TOKEN" }} }}

[slack]
webhook_url = {{ env = "SLACK_WEBHOOK_URL" }}

[sources.jira]
allow_ips = ["203.0.113.0/24"]
token_header = "X-Hoist-Token"
token = {{ env = "HOIST_JIRA_TOKEN" }}

[[projects]]
name = "{REPO}"
repo = "{REPO}"
default_env = "stg"

[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
patch_rollover = 99
"#,
        bitbucket.base_url()
    )
}

/// The HTTP API sample carrying a Jira Automation request for a new commit.
fn ticket_event(bitbucket: &BitbucketSim) -> Value {
    let commit = random_hash();
    bitbucket.add_commit(REPO, &commit, "PAY-1 change");
    let body = json!({"repo": REPO, "commit": commit, "issue": "PAY-1"});
    let mut e: Value = serde_json::from_str(HTTP_API_V2).expect("fixture");
    e["rawPath"] = json!("/hooks/jira");
    e["rawQueryString"] = json!("");
    e["queryStringParameters"] = json!({});
    e["requestContext"]["http"]["path"] = json!("/hooks/jira");
    e["requestContext"]["http"]["sourceIp"] = json!("203.0.113.9");
    e["headers"]["content-type"] = json!("application/json");
    e["headers"]["x-hoist-token"] = json!(JIRA_TOKEN);
    e["body"] = json!(body.to_string());
    e
}

/// The answer is a 2xx and the repository has `tags` tags.
fn check(response: &Value, bitbucket: &BitbucketSim, tags: usize) -> anyhow::Result<()> {
    let status = response["statusCode"].as_u64().unwrap_or(0);
    if !(200..300).contains(&status) {
        bail!("answer {response}");
    }
    let n = bitbucket.tags(REPO).len();
    if n != tags {
        bail!("expected {tags} tag(s) after the answer, found {n}");
    }
    Ok(())
}

/// `VmHWM` of a live process: its peak resident set.
fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/PID/status")
}

/// The real Python interpreter (not a version manager's shim) and its version, if it has requests.
fn python() -> anyhow::Result<(PathBuf, String)> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, requests; print(sys.executable); print('%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .context("python3")?;
    if !out.status.success() {
        bail!(
            "python3 with requests is needed (pip install requests): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let mut lines = text.lines();
    let exe = PathBuf::from(lines.next().context("no sys.executable")?);
    Ok((exe, lines.next().unwrap_or("?").to_string()))
}

async fn postgres_database() -> Option<String> {
    let base = std::env::var("HOIST_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    if base == "off" {
        return None;
    }
    let base = base.trim_end_matches('/').to_string();
    let admin = admin(&base)
        .await
        .map_err(|e| eprintln!("PostgreSQL skipped ({base}): {e}"))
        .ok()?;
    let name = format!("hoist_bench_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .ok()?;
    Some(format!("{base}/{name}"))
}

async fn drop_database(url: &str) {
    let Some((base, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(admin) = admin(base).await {
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

/// A connection to the server's `postgres` database.
async fn admin(base: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) =
        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}
