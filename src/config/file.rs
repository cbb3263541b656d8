//! The configuration file as written (SPEC 6): the TOML's shape, with its defaults. Nothing here is
//! checked beyond TOML types; [`super::Config::from_file`] parses these values into the ones Hoist
//! runs with and reports every problem with its location.

use std::collections::BTreeMap;

use serde::Deserialize;

pub use super::lambda::LambdaConfig;
pub use super::limits::LimitsConfig;
pub use super::secret::SecretRef;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    pub bitbucket: Option<BitbucketConfig>,
    pub spinnaker: Option<SpinnakerConfig>,
    pub slack: Option<SlackConfig>,
    #[serde(default)]
    pub jira: JiraConfig,
    /// CircleCI's API, asked about builds whose webhook never came (SPEC 16).
    #[serde(default)]
    pub circleci: CircleCiConfig,
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Only read by `hoist lambda`.
    #[serde(default)]
    pub lambda: LambdaConfig,
    #[serde(default)]
    pub projects: Vec<ProjectConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    pub public_url: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Bearer token required by `/api/...`. Without it the API answers only loopback callers.
    pub api_token: Option<SecretRef>,
    /// Body size, JSON shape, rate, concurrency and timeouts.
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
            trusted_proxies: Vec::new(),
            api_token: None,
            limits: LimitsConfig::default(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoreConfig {
    #[serde(default = "default_store_url")]
    pub url: String,
    /// `true`: SQLite fsyncs every commit (durable against power loss). Default: durable against
    /// a process crash (WAL, synchronous=NORMAL).
    #[serde(default)]
    pub fsync: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
            fsync: false,
        }
    }
}

fn default_store_url() -> String {
    "sqlite://hoist.db".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct BitbucketConfig {
    #[serde(default = "default_bitbucket_url")]
    pub base_url: String,
    pub workspace: String,
    pub auth: AuthConfig,
    /// Web address for links in messages.
    #[serde(default = "default_bitbucket_web")]
    pub web_url: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_bitbucket_web() -> String {
    "https://bitbucket.org".into()
}

fn default_bitbucket_url() -> String {
    "https://api.bitbucket.org/2.0".into()
}

fn default_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthConfig {
    Bearer(SecretRef),
    Basic { user: String, password: SecretRef },
}

#[derive(Debug, Clone, Deserialize)]
pub struct SpinnakerConfig {
    pub gate_url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, SecretRef>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Deck's address, for links to executions.
    pub deck_url: Option<String>,
    /// How long a trigger may go without a pipeline execution before the deploy counts as not
    /// started.
    #[serde(default = "default_start_timeout")]
    pub start_timeout_secs: u64,
    /// How long a deploy may run, from its trigger, before it counts as timed out.
    #[serde(default = "default_deploy_timeout")]
    pub deploy_timeout_secs: u64,
    /// The longest wait between two looks at a running deploy.
    #[serde(default = "default_poll_max")]
    pub poll_max_secs: u64,
    /// The first look's wait after the trigger; each next wait doubles, up to `poll_max_secs`.
    #[serde(default = "default_poll_min_ms")]
    pub poll_min_ms: u64,
}

fn default_start_timeout() -> u64 {
    120
}
fn default_deploy_timeout() -> u64 {
    3600
}
fn default_poll_max() -> u64 {
    30
}
fn default_poll_min_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlackConfig {
    pub webhook_url: Option<SecretRef>,
    pub bot_token: Option<SecretRef>,
    pub channel: Option<String>,
    #[serde(default = "default_slack_api")]
    pub api_url: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_slack_api() -> String {
    "https://slack.com/api".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct JiraConfig {
    /// The site (`https://acme.atlassian.net`): links in messages, and the REST API written to.
    pub base_url: Option<String>,
    /// Credentials for writing back (SPEC 14); without them Hoist only links to issues.
    pub auth: Option<AuthConfig>,
    /// The steps that add a comment to the release's issue (default: tagged, deployed,
    /// deploy_failed).
    pub comment_on: Option<Vec<String>>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CircleCiConfig {
    #[serde(default = "default_circleci_api")]
    pub base_url: String,
    /// A personal API token (`Circle-Token`); without it missed webhooks are not looked for.
    pub token: Option<SecretRef>,
    /// How long after its tag a release waits for its build's webhook before Hoist asks.
    #[serde(default = "default_build_timeout")]
    pub build_timeout_secs: u64,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_circleci_api() -> String {
    "https://circleci.com/api/v2".into()
}

fn default_build_timeout() -> u64 {
    1800
}

impl Default for CircleCiConfig {
    fn default() -> Self {
        Self {
            base_url: default_circleci_api(),
            token: None,
            build_timeout_secs: default_build_timeout(),
            timeout_secs: default_timeout(),
        }
    }
}

impl Default for JiraConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            auth: None,
            comment_on: None,
            timeout_secs: default_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct SourcesConfig {
    #[serde(default)]
    pub jira: JiraSourceConfig,
    #[serde(default)]
    pub circleci: SourceAuthConfig,
    #[serde(default)]
    pub bitbucket: SourceAuthConfig,
    /// Slack's interactivity requests (button clicks), `POST /hooks/slack`.
    #[serde(default)]
    pub slack: SlackSourceConfig,
}

/// Who may post button clicks: requests signed with the Slack app's signing secret.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SlackSourceConfig {
    pub signing_secret: Option<SecretRef>,
    #[serde(default)]
    pub allow_ips: Vec<String>,
}

/// Checks shared by every inbound source.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SourceAuthConfig {
    #[serde(default)]
    pub allow_ips: Vec<String>,
    /// HMAC secret for signed webhooks.
    pub secret: Option<SecretRef>,
    /// Where the signature comes: `X-Hub-Signature` (Bitbucket, Jira; the default) or
    /// `X-Hub-Signature-256` (GitHub's name for the same format). CircleCI always uses
    /// `circleci-signature`.
    pub signature_header: Option<String>,
    pub token_header: Option<String>,
    pub token: Option<SecretRef>,
    /// Which of the configured credentials (signature, token) a request must carry.
    #[serde(default)]
    pub require: Require,
}

/// How a source's credentials combine. The allowlist, when set, always applies as well.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// At least one configured credential, and every credential presented must be valid. Suits
    /// `sources.jira`, where Automation rules send a token and admin webhooks a signature.
    #[default]
    Any,
    /// Every configured credential (signature and token).
    All,
    /// No credential: the allowlist alone decides. Refused unless `allow_ips` is set.
    #[serde(rename = "none")]
    Nothing,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct JiraSourceConfig {
    #[serde(default)]
    pub allow_ips: Vec<String>,
    pub secret: Option<SecretRef>,
    pub signature_header: Option<String>,
    pub token_header: Option<String>,
    pub token: Option<SecretRef>,
    #[serde(default)]
    pub require: Require,
    #[serde(default)]
    pub fields: AutomationFields,
    #[serde(default)]
    pub issue_fields: IssueFields,
}

impl JiraSourceConfig {
    pub fn auth(&self) -> SourceAuthConfig {
        SourceAuthConfig {
            allow_ips: self.allow_ips.clone(),
            secret: self.secret.clone(),
            signature_header: self.signature_header.clone(),
            token_header: self.token_header.clone(),
            token: self.token.clone(),
            require: self.require,
        }
    }
}

/// JSON pointers into a Jira Automation "Send web request" body.
#[derive(Debug, Clone, Deserialize)]
pub struct AutomationFields {
    #[serde(default = "ptr_repo")]
    pub repo: String,
    #[serde(default = "ptr_commit")]
    pub commit: String,
    #[serde(default = "ptr_issue")]
    pub issue: String,
    #[serde(default = "ptr_env")]
    pub env: String,
}

impl Default for AutomationFields {
    fn default() -> Self {
        Self {
            repo: ptr_repo(),
            commit: ptr_commit(),
            issue: ptr_issue(),
            env: ptr_env(),
        }
    }
}

fn ptr_repo() -> String {
    "/repo".into()
}
fn ptr_commit() -> String {
    "/commit".into()
}
fn ptr_issue() -> String {
    "/issue".into()
}
fn ptr_env() -> String {
    "/env".into()
}

/// JSON pointers into a native webhook's `issue` object.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct IssueFields {
    pub repo: Option<String>,
    pub commit: Option<String>,
    pub env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerConfig {
    /// Jobs run at once by one process.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// A claimed job whose runner is silent this long is taken over by another.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    #[serde(default)]
    pub retry: RetryConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            lease_secs: default_lease(),
            poll_ms: default_poll_ms(),
            retry: RetryConfig::default(),
        }
    }
}

fn default_concurrency() -> usize {
    8
}
fn default_lease() -> u64 {
    20
}
fn default_poll_ms() -> u64 {
    250
}

/// Retry schedule of failed job attempts: exponential backoff with full jitter.
#[derive(Debug, Clone, Deserialize)]
pub struct RetryConfig {
    #[serde(default = "default_retry_base")]
    pub base_ms: u64,
    #[serde(default = "default_retry_max")]
    pub max_delay_ms: u64,
    #[serde(default = "default_retry_attempts")]
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            base_ms: default_retry_base(),
            max_delay_ms: default_retry_max(),
            max_attempts: default_retry_attempts(),
        }
    }
}

fn default_retry_base() -> u64 {
    1_000
}
fn default_retry_max() -> u64 {
    600_000
}
fn default_retry_attempts() -> u32 {
    25
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProjectConfig {
    pub name: String,
    pub repo: String,
    pub circleci_project: Option<String>,
    pub build_job: Option<String>,
    pub build_workflow: Option<String>,
    pub default_env: Option<String>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnvConfig {
    pub tag: String,
    /// Which part a release bumps: `patch` (default), `minor` or `major`.
    #[serde(default)]
    pub bump: crate::domain::Bump,
    pub patch_rollover: Option<u64>,
    #[serde(default = "default_initial")]
    pub initial_version: String,
    pub spinnaker_source: Option<String>,
    /// The Spinnaker application whose executions are searched for the trigger's; `*` when unset.
    pub spinnaker_application: Option<String>,
    /// Gate for this environment, overriding `[spinnaker] gate_url` (separate Spinnakers).
    pub gate_url: Option<String>,
    #[serde(default = "default_parameters")]
    pub parameters: BTreeMap<String, String>,
    /// The environment whose deployed releases this one receives (SPEC 13).
    pub promote_from: Option<String>,
    /// Promote as soon as every condition holds.
    #[serde(default)]
    pub auto: bool,
    /// Distinct approvers needed before a promotion.
    #[serde(default)]
    pub approvals: u32,
    /// Who may approve: Slack user ids, or the names given to the API and CLI.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// How long a release must have been deployed in `promote_from` first.
    #[serde(default)]
    pub soak_secs: u64,
    /// Weekly windows with no promotion into this environment: `Fri 15:00 - Mon 09:00 Asia/Seoul`.
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Wait for CircleCI to build this environment's tag before deploying it.
    #[serde(default)]
    pub build: bool,
    /// A Jira status that promotes the issue's release into this environment.
    pub promote_on_status: Option<String>,
    /// The Jira transition (by name or target status) applied once deployed here (SPEC 14).
    pub jira_transition: Option<String>,
}

impl Default for EnvConfig {
    /// The file format's defaults, with an empty `tag`.
    fn default() -> Self {
        toml::from_str("tag = \"\"").expect("the defaults parse")
    }
}

fn default_initial() -> String {
    "0.0.1".into()
}

fn default_parameters() -> BTreeMap<String, String> {
    BTreeMap::from([("tag".to_string(), "{tag}".to_string())])
}
