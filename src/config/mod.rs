//! Configuration: the `hoist.toml` contract of SPEC section 6.
//!
//! Loading happens in two stages. [`Config::parse`] turns TOML into typed values and collects every
//! unknown key (with its dotted path) instead of stopping at the first; [`Config::check`] then
//! validates meaning (CIDRs, tag templates, secret references that resolve, environments that
//! exist) and reports every problem with its location. Secrets are only ever held as
//! [`secret::SecretRef`]s here and resolved into redacting [`secret::Secret`]s by [`Config::resolve`].

pub mod lambda;
pub mod limits;
pub mod secret;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::pipeline::version::TagScheme;
pub use lambda::LambdaConfig;
pub use limits::LimitsConfig;
pub use secret::{Secret, SecretRef};

/// One thing wrong with a configuration, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the key, e.g. `projects[0].environments.stg.tag`.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    pub bitbucket: Option<BitbucketConfig>,
    pub spinnaker: Option<SpinnakerConfig>,
    pub slack: Option<SlackConfig>,
    #[serde(default)]
    pub jira: JiraConfig,
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
    pub auth: BitbucketAuthConfig,
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
pub enum BitbucketAuthConfig {
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

#[derive(Debug, Clone, Deserialize, Default)]
pub struct JiraConfig {
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct SourcesConfig {
    #[serde(default)]
    pub jira: JiraSourceConfig,
    #[serde(default)]
    pub circleci: SourceAuthConfig,
    #[serde(default)]
    pub bitbucket: SourceAuthConfig,
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
    60
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
    pub bump: crate::pipeline::version::Bump,
    pub patch_rollover: Option<u64>,
    #[serde(default = "default_initial")]
    pub initial_version: String,
    pub spinnaker_source: Option<String>,
    #[serde(default = "default_parameters")]
    pub parameters: BTreeMap<String, String>,
}

fn default_initial() -> String {
    "0.0.1".into()
}

fn default_parameters() -> BTreeMap<String, String> {
    BTreeMap::from([("tag".to_string(), "{tag}".to_string())])
}

impl Config {
    /// Reads and parses a file; unknown keys come back as problems, not errors.
    pub fn load(path: &Path) -> Result<(Config, Vec<Problem>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Syntax {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text. Unknown keys are returned as problems (all of them, with their paths).
    pub fn parse(text: &str) -> Result<(Config, Vec<Problem>), String> {
        // toml's own Display quotes the offending line, which could hold a secret someone pasted
        // inline: report the position and the message only.
        let describe = |e: toml::de::Error| match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                format!("line {line}, column {col}: {}", e.message())
            }
            None => e.message().to_string(),
        };
        let de = toml::Deserializer::parse(text).map_err(describe)?;
        let mut unknown = Vec::new();
        let config: Config = serde_ignored::deserialize(de, |path| {
            unknown.push(Problem {
                location: path.to_string(),
                message: "unknown key".into(),
            })
        })
        .map_err(describe)?;
        Ok((config, unknown))
    }

    /// Loads, applies `HOIST_LISTEN` / `HOIST_STORE_URL`, and validates; any problem is an error.
    pub fn load_checked(path: &Path) -> Result<Config, ConfigError> {
        let (mut config, mut problems) = Self::load(path)?;
        config.apply_env_overrides();
        problems.extend(config.check());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    pub fn apply_env_overrides(&mut self) {
        if let Ok(listen) = std::env::var("HOIST_LISTEN") {
            self.server.listen = listen;
        }
        if let Ok(url) = std::env::var("HOIST_STORE_URL") {
            self.store.url = url;
        }
    }

    /// Every problem of meaning, each with its location.
    pub fn check(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut push = |location: String, message: String| p.push(Problem { location, message });

        if self.server.listen.parse::<SocketAddr>().is_err() {
            push(
                "server.listen".into(),
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:8080",
                    self.server.listen
                ),
            );
        }
        if let Some(url) = &self.server.public_url {
            check_url(&mut push, "server.public_url", url);
        }
        check_cidrs(
            &mut push,
            "server.trusted_proxies",
            &self.server.trusted_proxies,
        );
        check_secret(
            &mut push,
            "server.api_token",
            self.server.api_token.as_ref(),
        );
        for (key, message) in self.server.limits.check() {
            push(format!("server.limits.{key}"), message);
        }

        if !(self.store.url.starts_with("sqlite:") || self.store.url.starts_with("postgres")) {
            push(
                "store.url".into(),
                "must start with sqlite:// or postgres://".into(),
            );
        }

        match &self.bitbucket {
            None => push(
                "bitbucket".into(),
                "missing: Hoist needs [bitbucket] (workspace and auth) to create tags".into(),
            ),
            Some(bb) => {
                check_url(&mut push, "bitbucket.base_url", &bb.base_url);
                if bb.workspace.trim().is_empty() {
                    push("bitbucket.workspace".into(), "must not be empty".into());
                }
                match &bb.auth {
                    BitbucketAuthConfig::Bearer(s) => {
                        check_secret(&mut push, "bitbucket.auth.bearer", Some(s))
                    }
                    BitbucketAuthConfig::Basic { password, .. } => {
                        check_secret(&mut push, "bitbucket.auth.basic.password", Some(password))
                    }
                }
            }
        }
        if let Some(sp) = &self.spinnaker {
            check_url(&mut push, "spinnaker.gate_url", &sp.gate_url);
            for (name, value) in &sp.headers {
                check_secret(&mut push, &format!("spinnaker.headers.{name}"), Some(value));
            }
        }
        if let Some(slack) = &self.slack {
            match (&slack.webhook_url, &slack.bot_token) {
                (None, None) => push(
                    "slack".into(),
                    "set webhook_url or bot_token (with channel)".into(),
                ),
                (Some(_), Some(_)) => push(
                    "slack".into(),
                    "set webhook_url or bot_token, not both".into(),
                ),
                _ => {}
            }
            check_secret(&mut push, "slack.webhook_url", slack.webhook_url.as_ref());
            check_secret(&mut push, "slack.bot_token", slack.bot_token.as_ref());
            if slack.bot_token.is_some() && slack.channel.is_none() {
                push(
                    "slack.channel".into(),
                    "a bot token needs a channel id such as C0123456".into(),
                );
            }
            check_url(&mut push, "slack.api_url", &slack.api_url);
        }
        if let Some(url) = &self.jira.base_url {
            check_url(&mut push, "jira.base_url", url);
        }

        let jira = &self.sources.jira;
        check_source(&mut push, "sources.jira", &jira.auth());
        for (key, ptr) in [
            ("repo", &jira.fields.repo),
            ("commit", &jira.fields.commit),
            ("issue", &jira.fields.issue),
            ("env", &jira.fields.env),
        ] {
            check_pointer(&mut push, &format!("sources.jira.fields.{key}"), ptr);
        }
        for (key, ptr) in [
            ("repo", &jira.issue_fields.repo),
            ("commit", &jira.issue_fields.commit),
            ("env", &jira.issue_fields.env),
        ] {
            if let Some(ptr) = ptr {
                check_pointer(&mut push, &format!("sources.jira.issue_fields.{key}"), ptr);
            }
        }
        check_source(&mut push, "sources.circleci", &self.sources.circleci);
        if self.sources.circleci.signature_header.is_some() {
            push(
                "sources.circleci.signature_header".into(),
                "CircleCI always signs in circleci-signature: remove this key".into(),
            );
        }
        check_source(&mut push, "sources.bitbucket", &self.sources.bitbucket);

        if self.worker.concurrency == 0 {
            push("worker.concurrency".into(), "must be at least 1".into());
        }
        if self.worker.retry.max_attempts == 0 {
            push(
                "worker.retry.max_attempts".into(),
                "must be at least 1".into(),
            );
        }

        if self.projects.is_empty() {
            push(
                "projects".into(),
                "no [[projects]]: nothing would ever be released".into(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, project) in self.projects.iter().enumerate() {
            let at = format!("projects[{i}]");
            if !names.insert(project.name.as_str()) {
                push(
                    format!("{at}.name"),
                    format!("project `{}` is defined twice", project.name),
                );
            }
            if project.repo.trim().is_empty() {
                push(format!("{at}.repo"), "must not be empty".into());
            }
            if project.build_job.is_some() && project.build_workflow.is_some() {
                push(
                    at.clone(),
                    "set build_job or build_workflow, not both".into(),
                );
            }
            if project.environments.is_empty() {
                push(
                    format!("{at}.environments"),
                    format!("project `{}` has no environment", project.name),
                );
            }
            if let Some(env) = &project.default_env
                && !project.environments.contains_key(env)
            {
                push(
                    format!("{at}.default_env"),
                    format!("`{env}` is not one of this project's environments"),
                );
            }
            for (env_name, env) in &project.environments {
                let at = format!("{at}.environments.{env_name}");
                let scheme = TagScheme::new(&env.tag, env.bump, env.patch_rollover);
                match scheme {
                    Err(e) => push(format!("{at}.tag"), e.to_string()),
                    Ok(scheme) => {
                        if let Err(e) = scheme.parse_version(&env.initial_version) {
                            push(format!("{at}.initial_version"), e.to_string());
                        }
                    }
                }
                if env.patch_rollover == Some(0) {
                    push(
                        format!("{at}.patch_rollover"),
                        "must be at least 1 (omit it for no rollover)".into(),
                    );
                }
                for (key, template) in &env.parameters {
                    if let Err(e) = crate::pipeline::params::check_template(template) {
                        push(format!("{at}.parameters.{key}"), e);
                    }
                }
            }
        }
        p
    }

    pub fn project(&self, name: &str) -> Option<&ProjectConfig> {
        self.projects.iter().find(|p| p.name == name)
    }

    /// The project a CircleCI event belongs to: its `circleci_project` equals the event's project
    /// slug (or name).
    pub fn project_by_circleci(
        &self,
        slug: Option<&str>,
        name: Option<&str>,
    ) -> Option<&ProjectConfig> {
        self.projects.iter().find(|p| {
            p.circleci_project
                .as_deref()
                .is_some_and(|c| Some(c) == slug || Some(c) == name)
        })
    }

    /// Finds a project by the repository a sender named: the project name, the repository slug, or
    /// `workspace/slug` of the configured workspace.
    pub fn project_by_repo(&self, repo: &str) -> Option<&ProjectConfig> {
        let repo = repo.trim();
        let full = repo
            .split_once('/')
            .filter(|(ws, _)| self.bitbucket.as_ref().is_some_and(|b| b.workspace == *ws));
        self.projects.iter().find(|p| {
            p.repo == repo || p.name == repo || full.is_some_and(|(_, slug)| p.repo == slug)
        })
    }
}

impl ProjectConfig {
    /// The environment a request names, or the project's default (or its only one).
    pub fn env<'a>(
        &'a self,
        requested: Option<&'a str>,
    ) -> Result<(&'a str, &'a EnvConfig), String> {
        let name = match requested.or(self.default_env.as_deref()) {
            Some(name) => name,
            None if self.environments.len() == 1 => self
                .environments
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or_default(),
            None => {
                return Err(format!(
                    "project `{}` has several environments and no default_env: send `env`",
                    self.name
                ));
            }
        };
        self.environments
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| {
                format!(
                    "project `{}` has no environment `{name}` (it has: {})",
                    self.name,
                    self.environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

fn check_url(push: &mut impl FnMut(String, String), at: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        _ => push(at.into(), format!("`{value}` is not an http(s) URL")),
    }
}

fn check_cidrs(push: &mut impl FnMut(String, String), at: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        if parse_cidr(v).is_err() {
            push(
                format!("{at}[{i}]"),
                format!("`{v}` is not a CIDR such as 13.52.5.96/28 or 2401:1d80:3000::/36"),
            );
        }
    }
}

/// Parses a CIDR, accepting a bare address as a single-host network.
pub fn parse_cidr(value: &str) -> Result<IpNet, ipnet::AddrParseError> {
    value.parse::<IpNet>().or_else(|e| {
        value
            .parse::<std::net::IpAddr>()
            .map(IpNet::from)
            .map_err(|_| e)
    })
}

fn check_secret(push: &mut impl FnMut(String, String), at: &str, secret: Option<&SecretRef>) {
    if let Some(s) = secret
        && let Err(e) = s.resolve()
    {
        push(at.into(), e.to_string());
    }
}

fn check_pointer(push: &mut impl FnMut(String, String), at: &str, ptr: &str) {
    if !ptr.is_empty() && !ptr.starts_with('/') {
        push(
            at.into(),
            format!("`{ptr}` is not a JSON pointer: it must start with `/`, e.g. \"/fields/repo\""),
        );
    }
}

fn check_source(push: &mut impl FnMut(String, String), at: &str, src: &SourceAuthConfig) {
    check_cidrs(push, &format!("{at}.allow_ips"), &src.allow_ips);
    check_secret(push, &format!("{at}.secret"), src.secret.as_ref());
    check_secret(push, &format!("{at}.token"), src.token.as_ref());
    if src.token.is_some() && src.token_header.is_none() {
        push(
            format!("{at}.token_header"),
            "a token needs the header it comes in, e.g. \"X-Hoist-Token\"".into(),
        );
    }
    if let Some(h) = &src.token_header
        && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
    {
        push(
            format!("{at}.token_header"),
            format!("`{h}` is not a valid header name"),
        );
    }
    if let Some(h) = &src.signature_header
        && !["x-hub-signature", "x-hub-signature-256"].contains(&h.to_ascii_lowercase().as_str())
    {
        push(
            format!("{at}.signature_header"),
            format!(
                "`{h}` is not a signature header Hoist knows: use \"X-Hub-Signature\" (Bitbucket, Jira) or \"X-Hub-Signature-256\" (GitHub)"
            ),
        );
    }
    let credentials = src.secret.is_some() || src.token.is_some();
    match src.require {
        Require::Nothing if credentials => push(
            format!("{at}.require"),
            "\"none\" ignores the configured secret and token: remove them or require \"any\" or \"all\"".into(),
        ),
        Require::Nothing if src.allow_ips.is_empty() => push(
            format!("{at}.require"),
            "\"none\" without allow_ips would accept webhooks from anyone: set allow_ips, or a secret or token".into(),
        ),
        _ => {}
    }
}
