//! A whole pipeline on loopback: Hoist (server + worker) wired to simulators of Bitbucket, CircleCI,
//! Spinnaker Gate, Slack and Jira. `hoist demo` and the integration tests both run on it.
//!
//! When a stack is dropped it checks that it leaves nothing behind: after giving running jobs a
//! few seconds to end, no job may be queued, running or failed unless the test said so
//! ([`Stack::expect_leftover_jobs`]). A test that leaves work undone by mistake fails here.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;

use hoist::config::file::{
    AuthConfig, BitbucketConfig, EnvConfig, JiraConfig, ProjectConfig, SlackConfig, SpinnakerConfig,
};
use hoist::config::{Config, ConfigFile, SecretRef};
use hoist::domain::{JobState, Release, ReleaseId};
use hoist::server::Hoist;
use hoist_sim::bitbucket::{BitbucketSim, SimAuth};
use hoist_sim::circleci::{CircleCiSim, CircleCiSimConfig, PayloadShape};
use hoist_sim::jira::{JiraAuth, JiraCloudSim, JiraSim};
use hoist_sim::slack::SlackSim;
use hoist_sim::spinnaker::GateSim;

pub const WORKSPACE: &str = "acme";
pub const REPO: &str = "payments-api";
pub const PROJECT: &str = "payments-api";
pub const CIRCLECI_SLUG: &str = "bitbucket/acme/payments-api";
pub const JIRA_TOKEN_HEADER: &str = "X-Hoist-Token";
/// The Atlassian account Hoist writes back to Jira as.
pub const JIRA_USER: &str = "hoist@acme.example";
/// Slack users who may approve promotions into `prod` in [`road`].
pub const APPROVERS: [&str; 2] = ["U0PRODLEAD", "U0RELMGR"];

/// The whole road (SPEC 13): `stg` from tickets, `qa` promoted by itself once the release is
/// deployed in `stg`, `prod` after one approval of [`APPROVERS`], the Jira issue moved to Done
/// once deployed there.
pub fn road(c: &mut ConfigFile) {
    let env = |tag: &str, from: &str, source: &str| EnvConfig {
        tag: tag.into(),
        promote_from: Some(from.into()),
        spinnaker_source: Some(source.into()),
        spinnaker_application: Some("payments-api".into()),
        parameters: BTreeMap::from([
            ("tag".to_string(), "{tag}".to_string()),
            ("image".to_string(), "{build_tag}".to_string()),
        ]),
        ..EnvConfig::default()
    };
    let qa = EnvConfig {
        auto: true,
        ..env("qa{major}.{minor}.{patch}", "stg", "payments-api-qa")
    };
    let prod = EnvConfig {
        approvals: 1,
        approvers: APPROVERS.iter().map(|a| a.to_string()).collect(),
        jira_transition: Some("Done".into()),
        ..env("v{major}.{minor}.{patch}", "qa", "payments-api-prod")
    };
    let envs = &mut c.projects[0].environments;
    envs.insert("qa".into(), qa);
    envs.insert("prod".into(), prod);
}

/// Knobs of a stack.
#[derive(Clone)]
pub struct StackOptions {
    /// `None`: a fresh SQLite file in the stack's temporary directory.
    pub store_url: Option<String>,
    /// Slack through a bot token (threads) instead of an incoming webhook.
    pub slack_bot: bool,
    /// CircleCI builds every new tag by itself after `build_delay`.
    pub auto_build: bool,
    pub build_delay: Duration,
    pub shape: PayloadShape,
    pub include_tag: bool,
    /// Retry backoff base (tests use a few milliseconds).
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    pub poll_ms: u64,
    /// Timeout of every outbound call.
    pub client_timeout_secs: u64,
    /// `[spinnaker] start_timeout_secs` and `deploy_timeout_secs`.
    pub deploy_start_timeout_secs: u64,
    pub deploy_timeout_secs: u64,
    /// Secrets the stack uses, so tests can look for them in logs and answers.
    pub jira_token: String,
    pub circleci_secret: String,
    pub bitbucket_token: String,
    pub slack_token: String,
    /// The secret of Bitbucket's `repo:push` webhook (`sources.bitbucket.secret`).
    pub bitbucket_hook_secret: String,
    /// The Slack app's signing secret (`sources.slack.signing_secret`), for button clicks.
    pub slack_signing_secret: String,
    /// Hoist writes back to the simulated Jira Cloud site (`[jira] auth`, SPEC 14); off, the
    /// site is only linked to.
    pub jira_write: bool,
    /// The Jira API token Hoist writes back with (Basic, with [`JIRA_USER`]).
    pub jira_api_token: String,
    /// Hoist asks the simulated CircleCI API about builds whose webhook has not come in this
    /// long (`[circleci] token` and `build_timeout_secs`); `None`: it does not.
    pub circleci_api_after_secs: Option<u64>,
    /// The CircleCI API token (`Circle-Token`).
    pub circleci_token: String,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            store_url: None,
            slack_bot: true,
            auto_build: true,
            build_delay: Duration::from_millis(200),
            shape: PayloadShape::Vcs,
            include_tag: false,
            retry_base_ms: 20,
            max_attempts: 15,
            poll_ms: 20,
            client_timeout_secs: 5,
            deploy_start_timeout_secs: 10,
            deploy_timeout_secs: 60,
            jira_token: "jira-token-5e1f0c".into(),
            circleci_secret: "circleci-secret-9b7a".into(),
            bitbucket_token: "bitbucket-token-77d2".into(),
            slack_token: "xoxb-slack-token-3c4d".into(),
            bitbucket_hook_secret: "bitbucket-hook-secret-4e1a".into(),
            slack_signing_secret: "slack-signing-secret-8c1d".into(),
            jira_write: false,
            jira_api_token: "jira-api-token-61b0".into(),
            circleci_api_after_secs: None,
            circleci_token: "circleci-api-token-2d9e".into(),
        }
    }
}

/// The simulated CircleCI project that builds this stack's repository: builds at once, payloads
/// in the `pipeline.vcs` shape without the tag.
pub fn circleci_config(hoist_url: &str, secret: &str) -> CircleCiSimConfig {
    CircleCiSimConfig {
        hoist_url: hoist_url.into(),
        secret: secret.into(),
        project_slug: CIRCLECI_SLUG.into(),
        project_name: REPO.into(),
        org_name: WORKSPACE.into(),
        vcs_provider: "bitbucket".into(),
        repo_url: format!("https://bitbucket.org/{WORKSPACE}/{REPO}"),
        job_name: "build".into(),
        workflow_name: "build-and-deploy".into(),
        delay: Duration::ZERO,
        shape: PayloadShape::Vcs,
        include_tag: false,
    }
}

pub struct Stack {
    pub hoist: Hoist,
    /// Hoist's base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub bitbucket: BitbucketSim,
    pub slack: SlackSim,
    pub gate: GateSim,
    pub circleci: CircleCiSim,
    pub jira: JiraSim,
    /// The Jira Cloud site Hoist writes back to (with `jira_write`).
    pub jira_cloud: JiraCloudSim,
    /// CircleCI's API v2, listing the simulated CircleCI's builds.
    pub circleci_api: hoist_sim::circleci::api::CircleCiApi,
    pub options: StackOptions,
    pub dir: tempfile::TempDir,
    /// Jobs the test expects to leave queued or failed (the teardown check skips them).
    leftovers: std::sync::atomic::AtomicBool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        Self::start_with(options, |_| {}).await
    }

    /// Starts the simulators and Hoist; `configure` may change Hoist's configuration file first.
    pub async fn start_with(
        options: StackOptions,
        configure: impl FnOnce(&mut ConfigFile),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let bitbucket =
            BitbucketSim::start(WORKSPACE, SimAuth::Bearer(options.bitbucket_token.clone()))
                .await?;
        bitbucket.add_repo(REPO);
        let slack = SlackSim::start(Some(options.slack_token.clone())).await?;
        let gate = GateSim::start().await?;
        gate.set_application("payments-api");
        let jira_cloud = JiraCloudSim::start(JiraAuth::Basic {
            user: JIRA_USER.into(),
            token: options.jira_api_token.clone(),
        })
        .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");

        let mut file = Self::config(&options, &bitbucket, &slack, &gate, &dir, addr);
        if options.jira_write {
            file.jira = JiraConfig {
                base_url: Some(jira_cloud.base_url()),
                auth: Some(AuthConfig::Basic {
                    user: JIRA_USER.into(),
                    password: SecretRef::Value(options.jira_api_token.clone()),
                }),
                comment_on: None,
                timeout_secs: options.client_timeout_secs,
            };
        }
        let circleci = CircleCiSim::new(CircleCiSimConfig {
            delay: options.build_delay,
            shape: options.shape,
            include_tag: options.include_tag,
            ..circleci_config(&format!("{url}/hooks/circleci"), &options.circleci_secret)
        });
        let circleci_api = circleci.serve_api(&options.circleci_token).await?;
        if let Some(after) = options.circleci_api_after_secs {
            file.circleci.base_url = circleci_api.base_url();
            file.circleci.token = Some(SecretRef::Value(options.circleci_token.clone()));
            file.circleci.build_timeout_secs = after;
        }
        configure(&mut file);
        let config = Config::from_file(&file)
            .map_err(|problems| anyhow::anyhow!("stack configuration: {problems:?}"))?;
        let hoist = Hoist::start(config).await?;
        if options.auto_build {
            circleci.watch(bitbucket.subscribe());
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(hoist.clone().run(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            hoist,
            url,
            bitbucket,
            slack,
            gate,
            circleci,
            jira: JiraSim::new(),
            jira_cloud,
            circleci_api,
            options,
            dir,
            leftovers: Default::default(),
            stop: Some(stop),
            server: Some(server),
        })
    }

    fn config(
        o: &StackOptions,
        bb: &BitbucketSim,
        slack: &SlackSim,
        gate: &GateSim,
        dir: &tempfile::TempDir,
        addr: std::net::SocketAddr,
    ) -> ConfigFile {
        let mut c = ConfigFile::default();
        c.server.listen = addr.to_string();
        c.store.url = o
            .store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("hoist.db").display()));
        c.bitbucket = Some(BitbucketConfig {
            base_url: bb.base_url(),
            workspace: WORKSPACE.into(),
            auth: AuthConfig::Bearer(SecretRef::Value(o.bitbucket_token.clone())),
            web_url: "https://bitbucket.org".into(),
            timeout_secs: o.client_timeout_secs,
        });
        c.spinnaker = Some(SpinnakerConfig {
            gate_url: gate.url(),
            headers: BTreeMap::new(),
            timeout_secs: o.client_timeout_secs,
            deck_url: Some("https://deck.acme.example".into()),
            start_timeout_secs: o.deploy_start_timeout_secs,
            deploy_timeout_secs: o.deploy_timeout_secs,
            poll_max_secs: 1,
            poll_min_ms: o.poll_ms.max(1),
        });
        c.slack = Some(if o.slack_bot {
            SlackConfig {
                webhook_url: None,
                bot_token: Some(SecretRef::Value(o.slack_token.clone())),
                channel: Some("C0123456".into()),
                api_url: slack.api_url(),
                timeout_secs: o.client_timeout_secs,
            }
        } else {
            SlackConfig {
                webhook_url: Some(SecretRef::Value(slack.webhook_url())),
                bot_token: None,
                channel: None,
                api_url: slack.api_url(),
                timeout_secs: o.client_timeout_secs,
            }
        });
        c.jira = JiraConfig {
            base_url: Some("https://acme.atlassian.net".into()),
            timeout_secs: o.client_timeout_secs,
            ..JiraConfig::default()
        };
        c.sources.jira.token_header = Some(JIRA_TOKEN_HEADER.into());
        c.sources.jira.token = Some(SecretRef::Value(o.jira_token.clone()));
        c.sources.jira.issue_fields.repo = Some("/fields/customfield_10050".into());
        c.sources.jira.issue_fields.commit = Some("/fields/customfield_10051".into());
        c.sources.circleci.secret = Some(SecretRef::Value(o.circleci_secret.clone()));
        c.sources.bitbucket.secret = Some(SecretRef::Value(o.bitbucket_hook_secret.clone()));
        c.sources.slack.signing_secret = Some(SecretRef::Value(o.slack_signing_secret.clone()));
        c.worker.poll_ms = o.poll_ms;
        c.worker.lease_secs = 30;
        c.worker.retry.base_ms = o.retry_base_ms;
        c.worker.retry.max_delay_ms = o.retry_base_ms.saturating_mul(16).max(1);
        c.worker.retry.max_attempts = o.max_attempts;
        c.projects = vec![ProjectConfig {
            name: PROJECT.into(),
            repo: REPO.into(),
            circleci_project: Some(CIRCLECI_SLUG.into()),
            build_job: Some("build".into()),
            build_workflow: None,
            default_env: Some("stg".into()),
            environments: BTreeMap::from([(
                "stg".to_string(),
                EnvConfig {
                    tag: "stg{major}.{minor}.{patch}".into(),
                    bump: Default::default(),
                    patch_rollover: Some(99),
                    initial_version: "0.0.1".into(),
                    spinnaker_source: Some("payments-api-stg".into()),
                    spinnaker_application: Some("payments-api".into()),
                    gate_url: None,
                    parameters: BTreeMap::from([
                        ("tag".to_string(), "{tag}".to_string()),
                        ("issue".to_string(), "{issue}".to_string()),
                        ("commit".to_string(), "{commit}".to_string()),
                    ]),
                    ..EnvConfig::default()
                },
            )]),
        }];
        c
    }

    /// The release's deployment into `env` once it is final (deployed, failed, not started,
    /// timed out).
    pub async fn wait_deployment(
        &self,
        release: i64,
        env: &str,
        within: Duration,
    ) -> anyhow::Result<hoist::domain::Deployment> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let all = self.hoist.store.deployments(ReleaseId(release)).await?;
            if let Some(d) = all
                .into_iter()
                .rev()
                .find(|d| d.env.as_str() == env && d.status.is_final())
            {
                return Ok(d);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("release {release} was not deployed in {env} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Adds a commit to the simulated repository and answers its hash.
    pub fn commit(&self, message: &str) -> String {
        let hash = hoist_sim::bitbucket::random_hash();
        self.bitbucket.add_commit(REPO, &hash, message);
        hash
    }

    /// Clicks a button of Hoist's in Slack as `user`, as Slack posts it; answers Hoist's status
    /// and body.
    pub async fn click(
        &self,
        button: &hoist_sim::slack::Button,
        user: &str,
        options: hoist_sim::slack::ClickOptions,
    ) -> anyhow::Result<(u16, String)> {
        self.slack
            .click(
                &format!("{}/hooks/slack", self.url),
                &self.options.slack_signing_secret,
                button,
                user,
                options,
            )
            .await
    }

    /// The button labelled `text` in the release's Slack messages, once it is there.
    pub async fn button(
        &self,
        text: &str,
        within: Duration,
    ) -> anyhow::Result<hoist_sim::slack::Button> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(b) = self.slack.buttons().into_iter().find(|b| b.text == text) {
                return Ok(b);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("no button `{text}` within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a Jira Automation assignment; answers Hoist's status and body.
    pub async fn assign(
        &self,
        issue: &str,
        commit: &str,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let body = hoist_sim::jira::automation_body(REPO, commit, issue, None);
        self.jira
            .send_automation(
                &format!("{}/hooks/jira", self.url),
                JIRA_TOKEN_HEADER,
                &self.options.jira_token,
                &body,
            )
            .await
    }

    /// Sends Bitbucket's `repo:push` webhook for a tag someone pushed by hand; answers Hoist's
    /// status and body.
    pub async fn push_tag(
        &self,
        name: &str,
        hash: &str,
        request_uuid: &str,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let body = hoist_sim::bitbucket::webhook::tag_pushed(WORKSPACE, REPO, name, hash);
        let headers = hoist_sim::bitbucket::webhook::headers(
            &self.options.bitbucket_hook_secret,
            &body,
            request_uuid,
        );
        let mut request = reqwest::Client::new()
            .post(format!("{}/hooks/bitbucket", self.url))
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ))
    }

    /// Waits until release `id` satisfies `done`, or fails after `timeout` with its last state.
    pub async fn wait_release(
        &self,
        id: impl Into<ReleaseId>,
        timeout: Duration,
        done: impl Fn(&Release) -> bool,
    ) -> anyhow::Result<Release> {
        let id = id.into();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self
                .hoist
                .store
                .release(id)
                .await?
                .with_context(|| format!("no release {id}"))?;
            if done(&r) {
                return Ok(r);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "release {id} still {} (error {:?}) after {timeout:?}",
                    r.status,
                    r.error
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until no job is queued or running.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let counts = self.hoist.store.job_counts().await?;
            if counts
                .iter()
                .all(|(s, n)| *n == 0 || !matches!(s, JobState::Queued | JobState::Running))
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("jobs still pending after {timeout:?}: {counts:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Says that this test leaves jobs queued or failed on purpose (an outage it does not wait
    /// out, a job it makes fail): [`Self::finish`] then checks nothing.
    pub fn expect_leftover_jobs(&self) {
        self.leftovers
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Ends a test's stack: checks that no job is left queued, running or failed (unless the test
    /// said so), then stops Hoist.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        let checked = if self.leftovers.load(std::sync::atomic::Ordering::Relaxed) {
            Ok(())
        } else {
            self.left_nothing().await
        };
        self.shut_down().await?;
        checked
    }

    /// Nothing queued or running (after a few seconds for what is under way), nothing failed.
    async fn left_nothing(&self) -> anyhow::Result<()> {
        self.settle(Duration::from_secs(10)).await?;
        let failed = self.hoist.store.jobs_in_state(JobState::Failed).await?;
        anyhow::ensure!(
            failed.is_empty(),
            "the test left failed jobs (say so with expect_leftover_jobs if it means to): {:?}",
            failed
                .iter()
                .map(|j| (j.id.0, j.kind.as_str(), j.last_error.as_deref()))
                .collect::<Vec<_>>()
        );
        Ok(())
    }

    /// Stops Hoist without checking its jobs (the demo, which shows them).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down().await
    }

    async fn shut_down(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await??;
        }
        Ok(())
    }
}

impl Drop for Stack {
    /// A stack must end with [`Stack::finish`] (or [`Stack::stop`]), so that every test checks
    /// what it leaves behind.
    fn drop(&mut self) {
        if self.stop.is_some() && !std::thread::panicking() {
            panic!(
                "a stack was dropped without Stack::finish(): end the test with `stack.finish().await`"
            );
        }
    }
}
