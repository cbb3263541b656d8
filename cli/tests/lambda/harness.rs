//! The real `hoist lambda` process against a local Runtime API, with simulators of Bitbucket,
//! Gate and Slack, configured by a TOML file whose secrets come from the child's environment.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoist_cli::stack::{CIRCLECI_SLUG, REPO, WORKSPACE};
use hoist_sim::bitbucket::{BitbucketSim, SimAuth, random_hash};
use hoist_sim::circleci::CircleCiSim;
use hoist_sim::lambda::{Answered, RuntimeApiSim};
use hoist_sim::slack::SlackSim;
use hoist_sim::spinnaker::GateSim;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const WAIT: Duration = Duration::from_secs(30);
pub const JIRA_TOKEN: &str = "jira-token-lambda-5e1f0c";
pub const CIRCLECI_SECRET: &str = "circleci-secret-lambda-9b7a";
pub const BITBUCKET_TOKEN: &str = "bitbucket-token-lambda-77d2";

/// Where the function keeps its state.
pub enum StoreChoice {
    /// No `store.url`: stateless mode.
    Unset,
    /// An SQLite file in the test's temporary directory.
    Sqlite,
    /// PostgreSQL when `HOIST_TEST_PG` is set, else SQLite.
    PostgresIfAvailable,
}

pub struct Options {
    pub store: StoreChoice,
    pub allow_ips: Vec<&'static str>,
    pub job_budget_ms: u64,
    /// Start a symlink named `bootstrap` with no arguments, as Lambda does.
    pub bootstrap: bool,
    /// Leave a secret's environment variable unset, so the configuration cannot load.
    pub missing_secret: bool,
    /// `HOIST_LOG` (default: `HOIST_TEST_LOG`, else `info`).
    pub log: Option<&'static str>,
    /// First retry of a failed job after between half this and this.
    pub retry_base_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            store: StoreChoice::Sqlite,
            allow_ips: Vec::new(),
            job_budget_ms: 5_000,
            bootstrap: false,
            missing_secret: false,
            log: None,
            retry_base_ms: 20,
        }
    }
}

pub struct Harness {
    pub api: RuntimeApiSim,
    pub bitbucket: BitbucketSim,
    pub gate: GateSim,
    pub slack: SlackSim,
    pub circleci: CircleCiSim,
    pub dir: tempfile::TempDir,
    child: tokio::process::Child,
    logs: Arc<Mutex<String>>,
}

impl Harness {
    pub async fn start(o: Options) -> Self {
        let api = RuntimeApiSim::start().await.unwrap();
        let bitbucket = BitbucketSim::start(WORKSPACE, SimAuth::Bearer(BITBUCKET_TOKEN.into()))
            .await
            .unwrap();
        bitbucket.add_repo(REPO);
        let gate = GateSim::start().await.unwrap();
        let slack = SlackSim::start(None).await.unwrap();
        let circleci = CircleCiSim::new(hoist_cli::stack::circleci_config(
            "http://unused.invalid/hooks/circleci",
            CIRCLECI_SECRET,
        ));
        let dir = tempfile::tempdir().unwrap();
        let store = store_line(&o.store, &dir).await;
        let config = config_toml(&o, &store, &bitbucket, &gate);
        let config_path = dir.path().join("hoist.toml");
        std::fs::write(&config_path, config).unwrap();

        let exe = env!("CARGO_BIN_EXE_hoist");
        let mut cmd = if o.bootstrap {
            let link = dir.path().join("bootstrap");
            std::os::unix::fs::symlink(exe, &link).unwrap();
            tokio::process::Command::new(link)
        } else {
            let mut c = tokio::process::Command::new(exe);
            c.arg("lambda");
            c
        };
        cmd.env("HOIST_CONFIG", &config_path)
            .env_remove("HOIST_STORE_URL")
            .env_remove("HOIST_LOG_FORMAT")
            .env(
                "HOIST_LOG",
                o.log.map(str::to_string).unwrap_or_else(|| {
                    std::env::var("HOIST_TEST_LOG").unwrap_or_else(|_| "info".into())
                }),
            )
            .env("TMPDIR", dir.path())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "hoist")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("BITBUCKET_TOKEN", BITBUCKET_TOKEN)
            .env("CIRCLECI_WEBHOOK_SECRET", CIRCLECI_SECRET)
            .env("SLACK_WEBHOOK_URL", slack.webhook_url())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if o.missing_secret {
            cmd.env_remove("HOIST_JIRA_TOKEN");
        } else {
            cmd.env("HOIST_JIRA_TOKEN", JIRA_TOKEN);
        }
        let mut child = cmd.spawn().expect("hoist starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[hoist] {line}");
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        Self {
            api,
            bitbucket,
            gate,
            slack,
            circleci,
            dir,
            child,
            logs,
        }
    }

    /// A new commit in the simulated repository.
    pub fn commit(&self, message: &str) -> String {
        let hash = random_hash();
        self.bitbucket.add_commit(REPO, &hash, message);
        hash
    }

    /// Invokes the function with `event` and returns its answer.
    pub async fn invoke(&self, event: Value) -> Answered {
        match self.api.invoke(event, WAIT).await {
            Ok(a) => a,
            Err(e) => panic!("{e}\nlogs:\n{}", self.logs()),
        }
    }

    /// Invokes with an HTTP event and returns the proxy answer's status and JSON body.
    pub async fn http(&self, event: Value) -> (u16, Value) {
        let answered = self.invoke(event).await;
        let r = answered.response();
        let status = r["statusCode"].as_u64().unwrap_or(0) as u16;
        let body = r["body"].as_str().unwrap_or("");
        let body = serde_json::from_str(body).unwrap_or(Value::String(body.into()));
        (status, body)
    }

    /// Everything the process wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Waits for the process to exit by itself.
    pub async fn exit(&mut self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Asserts the logs hold no secret.
    pub fn assert_no_secret_in_logs(&self) {
        let logs = self.logs();
        for secret in [
            JIRA_TOKEN,
            CIRCLECI_SECRET,
            BITBUCKET_TOKEN,
            &self.slack.webhook_url(),
        ] {
            assert!(!logs.contains(secret), "a secret is in the logs:\n{logs}");
        }
    }
}

async fn store_line(choice: &StoreChoice, dir: &tempfile::TempDir) -> Option<String> {
    let sqlite = || {
        Some(format!(
            "sqlite://{}",
            dir.path().join("hoist.db").display()
        ))
    };
    match choice {
        StoreChoice::Unset => None,
        StoreChoice::Sqlite => sqlite(),
        StoreChoice::PostgresIfAvailable => match pg_database().await {
            Some(url) => Some(url),
            None => sqlite(),
        },
    }
}

/// A fresh PostgreSQL database when `HOIST_TEST_PG` names a server.
async fn pg_database() -> Option<String> {
    let base = std::env::var("HOIST_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())?;
    let base = base.trim_end_matches('/').to_string();
    // `HOIST_TEST_DB_PREFIX`: as tests/it/util.rs (scripts/test.sh drops its run's databases).
    let prefix = std::env::var("HOIST_TEST_DB_PREFIX")
        .ok()
        .filter(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .unwrap_or_else(|| "hoist_test".into());
    let name = format!("{prefix}_lambda_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) =
        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("HOIST_TEST_PG is set but PostgreSQL does not answer");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    drop(client);
    let _ = connection.await;
    Some(format!("{base}/{name}"))
}

fn config_toml(o: &Options, store: &Option<String>, bb: &BitbucketSim, gate: &GateSim) -> String {
    let store = store
        .as_ref()
        .map(|url| format!("[store]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
    let allow = o
        .allow_ips
        .iter()
        .map(|ip| format!("\"{ip}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"[server]
public_url = "https://hoist.example.com"

{store}
[bitbucket]
base_url = "{bb_url}"
workspace = "{WORKSPACE}"
auth = {{ bearer = {{ env = "BITBUCKET_TOKEN" }} }}
timeout_secs = 5

[spinnaker]
gate_url = "{gate_url}"
poll_min_ms = 50
poll_max_secs = 1
timeout_secs = 5

[slack]
webhook_url = {{ env = "SLACK_WEBHOOK_URL" }}
timeout_secs = 5

[sources.jira]
allow_ips = [{allow}]
token_header = "X-Hoist-Token"
token = {{ env = "HOIST_JIRA_TOKEN" }}

[sources.circleci]
secret = {{ env = "CIRCLECI_WEBHOOK_SECRET" }}

[worker]
poll_ms = 20
retry = {{ base_ms = {retry}, max_delay_ms = {retry_max}, max_attempts = 5 }}

[lambda]
job_budget_ms = {budget}

[[projects]]
name = "{REPO}"
repo = "{REPO}"
circleci_project = "{CIRCLECI_SLUG}"
build_job = "build"
default_env = "stg"

[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
patch_rollover = 99
spinnaker_source = "payments-api-stg"
parameters = {{ tag = "{{tag}}", issue = "{{issue}}", commit = "{{commit}}" }}
"#,
        bb_url = bb.base_url(),
        gate_url = gate.url(),
        budget = o.job_budget_ms,
        retry = o.retry_base_ms,
        retry_max = o.retry_base_ms * 5,
    )
}
