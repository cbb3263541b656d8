//! Helpers that run the real `hoist` binary as a child process, configured by a TOML file written
//! as in SPEC 6, against simulators in the test process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoist_cli::stack::{CIRCLECI_SLUG, REPO, WORKSPACE};
use hoist_sim::bitbucket::{BitbucketSim, SimAuth};
use hoist_sim::circleci::{CircleCiSim, CircleCiSimConfig};
use hoist_sim::jira::JiraSim;
use hoist_sim::slack::SlackSim;
use hoist_sim::spinnaker::GateSim;

pub const JIRA_TOKEN: &str = "proc-jira-token-1f2e";
pub const CIRCLECI_SECRET: &str = "proc-circleci-secret-3d4c";
pub const JIRA_SECRET: &str = "proc-jira-hub-secret-5b6a";
pub const BITBUCKET_TOKEN: &str = "proc-bitbucket-token-7f8e";

/// The simulators a process test talks to.
pub struct Sims {
    pub bitbucket: BitbucketSim,
    pub slack: SlackSim,
    pub gate: GateSim,
    pub jira: JiraSim,
}

impl Sims {
    pub async fn start() -> Self {
        let bitbucket = BitbucketSim::start(WORKSPACE, SimAuth::Bearer(BITBUCKET_TOKEN.into()))
            .await
            .unwrap();
        bitbucket.add_repo(REPO);
        Self {
            bitbucket,
            slack: SlackSim::start(None).await.unwrap(),
            gate: GateSim::start().await.unwrap(),
            jira: JiraSim::new(),
        }
    }

    pub fn commit(&self, message: &str) -> String {
        let hash = hoist_sim::bitbucket::random_hash();
        self.bitbucket.add_commit(REPO, &hash, message);
        hash
    }

    /// A CircleCI that builds every new tag and posts to `hoist_url`.
    pub fn circleci(&self, hoist_url: &str, delay: Duration) -> CircleCiSim {
        let c = CircleCiSim::new(CircleCiSimConfig {
            delay,
            ..hoist_cli::stack::circleci_config(
                &format!("{hoist_url}/hooks/circleci"),
                CIRCLECI_SECRET,
            )
        });
        c.watch(self.bitbucket.subscribe());
        c
    }

    /// A configuration file as a user writes it (SPEC 6), pointing at these simulators.
    pub fn config_toml(&self, listen: &str, store_url: &str, lease_secs: u64) -> String {
        format!(
            r#"
[server]
listen = "{listen}"
public_url = "http://{listen}"
trusted_proxies = []

[store]
url = "{store_url}"

[bitbucket]
base_url = "{bb}"
workspace = "{WORKSPACE}"
auth = {{ bearer = {{ env = "HOIST_TEST_BITBUCKET_TOKEN" }} }}

[spinnaker]
gate_url = "{gate}"
poll_min_ms = 50
poll_max_secs = 1

[slack]
bot_token = {{ env = "HOIST_TEST_SLACK_TOKEN" }}
channel = "C0123456"
api_url = "{slack}"

[jira]
base_url = "https://acme.atlassian.net"

[sources.jira]
allow_ips = ["127.0.0.0/8", "::1/128"]
token_header = "X-Hoist-Token"
token = {{ env = "HOIST_TEST_JIRA_TOKEN" }}
secret = {{ env = "HOIST_TEST_JIRA_SECRET" }}
fields = {{ repo = "/repo", commit = "/commit", issue = "/issue", env = "/env" }}
issue_fields = {{ repo = "/fields/customfield_10050", commit = "/fields/customfield_10051" }}

[sources.circleci]
secret = {{ env = "HOIST_TEST_CIRCLECI_SECRET" }}
allow_ips = []

[worker]
concurrency = 4
lease_secs = {lease_secs}
poll_ms = 50
retry = {{ base_ms = 50, max_delay_ms = 500, max_attempts = 30 }}

[[projects]]
name = "payments-api"
repo = "{REPO}"
circleci_project = "{CIRCLECI_SLUG}"
build_job = "build"
default_env = "stg"

[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
patch_rollover = 99
initial_version = "0.0.1"
spinnaker_source = "payments-api-stg"
parameters = {{ tag = "{{tag}}", issue = "{{issue}}" }}
"#,
            bb = self.bitbucket.base_url(),
            gate = self.gate.url(),
            slack = self.slack.api_url(),
        )
    }
}

/// A running `hoist serve`.
pub struct Hoist {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn hoist_cmd(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.arg("--config")
        .arg(config)
        .env("HOIST_TEST_BITBUCKET_TOKEN", BITBUCKET_TOKEN)
        .env("HOIST_TEST_SLACK_TOKEN", "xoxb-proc-slack")
        .env("HOIST_TEST_JIRA_TOKEN", JIRA_TOKEN)
        .env("HOIST_TEST_JIRA_SECRET", JIRA_SECRET)
        .env("HOIST_TEST_CIRCLECI_SECRET", CIRCLECI_SECRET)
        .env_remove("HOIST_LISTEN")
        .env_remove("HOIST_STORE_URL")
        .env_remove("HOIST_CONFIG");
    cmd
}

impl Hoist {
    /// Writes the configuration to `dir/<name>.toml` and starts `hoist serve`; returns once
    /// `/healthz` answers 200.
    pub async fn start(dir: &Path, name: &str, config: &str, listen: &str) -> Self {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let logfile = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = hoist_cmd(&path)
            .arg("serve")
            .env("HOIST_LOG", "info,hoist=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(logfile))
            .spawn()
            .expect("start hoist serve");
        let h = Self {
            child,
            url: format!("http://{listen}"),
            log,
        };
        h.wait_ready().await;
        h
    }

    async fn wait_ready(&self) {
        let start = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "hoist did not become ready: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, no cleanup.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn assign(&self, sims: &Sims, issue: &str, commit: &str) -> (u16, serde_json::Value) {
        let body = hoist_sim::jira::automation_body(REPO, commit, issue, None);
        sims.jira
            .send_automation(
                &format!("{}/hooks/jira", self.url),
                "X-Hoist-Token",
                JIRA_TOKEN,
                &body,
            )
            .await
            .unwrap()
    }

    pub async fn release(&self, id: i64) -> serde_json::Value {
        reqwest::get(format!("{}/api/releases/{id}", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Hoist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
