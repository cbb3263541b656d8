//! Configuration: the `hoist.toml` contract of SPEC section 6.
//!
//! Two stages. [`ConfigFile::parse`] reads TOML into the file's shape ([`file`]) and collects every
//! unknown key (with its dotted path) instead of stopping at the first. [`Config::from_file`] then
//! parses each value into what Hoist runs with (tag schemes, versions, CIDRs, parameter templates,
//! addresses, resolved secrets) and reports every problem with its location; a bad entry is an
//! error, never dropped. The rest of Hoist sees only [`Config`].

pub mod file;
pub mod lambda;
pub mod limits;
pub mod promotion;
pub mod secret;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::domain::{EnvName, ProjectName, TagScheme, Template, Version};
pub use file::{
    AutomationFields, ConfigFile, IssueFields, JiraConfig, Require, RetryConfig, StoreConfig,
    WorkerConfig,
};
pub use lambda::LambdaConfig;
pub use limits::LimitsConfig;
pub use promotion::{FreezeWindow, Promotion};
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

/// The configuration Hoist runs with: every value parsed, every secret resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub store: StoreConfig,
    pub bitbucket: Bitbucket,
    /// Gate and how deploys are followed (defaults when `[spinnaker]` is absent).
    pub spinnaker: Spinnaker,
    pub slack: Option<Slack>,
    pub jira: Jira,
    pub circleci: CircleCi,
    pub sources: Sources,
    pub worker: WorkerConfig,
    pub lambda: LambdaConfig,
    pub projects: Vec<Project>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    /// Where Hoist is reached from outside, without a trailing `/` ([`Self::base_url`]).
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// Bearer token required by `/api/...`. Without it the API answers only loopback callers.
    pub api_token: Option<Secret>,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone)]
pub struct Bitbucket {
    pub base_url: String,
    pub workspace: String,
    pub auth: HttpAuth,
    /// Web address for links in messages.
    pub web_url: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum HttpAuth {
    Bearer(Secret),
    Basic { user: String, password: Secret },
}

/// `[circleci]`: its API, asked about builds whose webhook never came (SPEC 16).
#[derive(Debug, Clone)]
pub struct CircleCi {
    /// Without a trailing `/`.
    pub base_url: String,
    /// `None`: missed webhooks are not looked for.
    pub token: Option<Secret>,
    pub build_timeout: Duration,
    pub timeout: Duration,
}

/// `[jira]`: the site, and what Hoist writes back to its issues (SPEC 14).
#[derive(Debug, Clone, Default)]
pub struct Jira {
    /// Without a trailing `/`.
    pub base_url: Option<String>,
    /// Present when Hoist writes back (both `base_url` and `auth` set).
    pub write: Option<JiraWrite>,
}

#[derive(Debug, Clone)]
pub struct JiraWrite {
    pub base_url: String,
    pub auth: HttpAuth,
    /// The steps that comment on the issue ([`JIRA_STEPS`]).
    pub comment_on: Vec<String>,
    pub timeout: Duration,
}

impl Jira {
    /// Whether reaching `step` adds a comment to the release's issue.
    pub fn comments_on(&self, step: &str) -> bool {
        self.write
            .as_ref()
            .is_some_and(|w| w.comment_on.iter().any(|s| s == step))
    }
}

/// The steps a Jira comment can mark (`[jira] comment_on`).
pub const JIRA_STEPS: &[&str] = &[
    "tagged",
    "built",
    "build_failed",
    "deploy_triggered",
    "deploy_started",
    "deployed",
    "deploy_failed",
    "deploy_not_started",
    "deploy_timed_out",
    "promoted",
    "approved",
    "failed",
];

#[derive(Debug, Clone)]
pub struct Spinnaker {
    /// `[spinnaker] gate_url`; an environment's own `gate_url` overrides it.
    pub gate_url: Option<String>,
    /// Extra headers for Gates that require authentication.
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
    /// Deck's address, without a trailing `/`, for links to executions.
    pub deck_url: Option<String>,
    pub start_timeout: Duration,
    pub deploy_timeout: Duration,
    pub poll_min: Duration,
    pub poll_max: Duration,
}

#[derive(Debug, Clone)]
pub struct Slack {
    pub target: SlackTarget,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum SlackTarget {
    /// An incoming webhook: one message per step, no threads.
    Webhook(Secret),
    /// A bot token: `chat.postMessage` in `channel`, one thread per release.
    Bot {
        token: Secret,
        channel: String,
        api_url: String,
    },
}

#[derive(Debug, Clone)]
pub struct Sources {
    pub jira: JiraSource,
    pub circleci: SourceAuth,
    pub bitbucket: SourceAuth,
    pub slack: SlackSource,
}

/// Slack's button clicks: signed with the app's signing secret (none: every click is refused).
#[derive(Debug, Clone, Default)]
pub struct SlackSource {
    pub signing_secret: Option<Secret>,
    pub allow: Vec<IpNet>,
}

#[derive(Debug, Clone)]
pub struct JiraSource {
    pub auth: SourceAuth,
    /// JSON pointers into an Automation body.
    pub fields: AutomationFields,
    /// JSON pointers into a native webhook's `issue` object.
    pub issue_fields: IssueFields,
}

/// Who may call one inbound source: its allowlist, then the credentials it requires.
#[derive(Debug, Clone, Default)]
pub struct SourceAuth {
    /// `sources.jira`, ... (for messages).
    pub name: &'static str,
    /// Empty: any address.
    pub allow: Vec<IpNet>,
    pub secret: Option<Secret>,
    pub signature: SignatureFormat,
    pub token_header: Option<String>,
    pub token: Option<Secret>,
    pub require: Require,
}

/// How a source signs its bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFormat {
    /// `circleci-signature: v1=<hex>[,...]`.
    CircleCi,
    /// `<header>: sha256=<hex>`, with the header `X-Hub-Signature` or `X-Hub-Signature-256`.
    Hub(String),
}

impl Default for SignatureFormat {
    fn default() -> Self {
        Self::Hub("X-Hub-Signature".into())
    }
}

impl SignatureFormat {
    /// The header the signature comes in.
    pub fn header(&self) -> &str {
        match self {
            Self::CircleCi => "circleci-signature",
            Self::Hub(h) => h,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: ProjectName,
    /// The Bitbucket repository slug.
    pub repo: String,
    pub circleci_project: Option<String>,
    /// The CircleCI job or workflow whose completion means "built".
    pub build: BuildName,
    pub default_env: Option<EnvName>,
    pub environments: BTreeMap<EnvName, Environment>,
}

/// Which CircleCI event means a project's build finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildName {
    Job(String),
    Workflow(String),
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: EnvName,
    pub scheme: TagScheme,
    /// The version when the family has no tag yet.
    pub initial: Version,
    pub spinnaker_source: Option<String>,
    /// The application whose executions a trigger's are searched among (`*`: any).
    pub spinnaker_application: String,
    /// This environment's Gate, when it is not `[spinnaker] gate_url`.
    pub gate_url: Option<String>,
    pub parameters: BTreeMap<String, Template>,
    /// How releases come here from an earlier environment; `None` for a first environment.
    pub promotion: Option<Promotion>,
    /// The Jira transition applied once a release is deployed here.
    pub jira_transition: Option<String>,
}

impl Default for Spinnaker {
    /// No Gate of its own, the file format's defaults for the rest.
    fn default() -> Self {
        let f: file::SpinnakerConfig =
            toml::from_str("gate_url = \"\"").expect("the defaults parse");
        Self {
            gate_url: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(f.timeout_secs),
            deck_url: None,
            start_timeout: Duration::from_secs(f.start_timeout_secs),
            deploy_timeout: Duration::from_secs(f.deploy_timeout_secs),
            poll_min: Duration::from_millis(f.poll_min_ms),
            poll_max: Duration::from_secs(f.poll_max_secs),
        }
    }
}

impl Environment {
    /// The Gate this environment's deploys go to: its own, else `[spinnaker] gate_url`.
    pub fn gate<'a>(&'a self, spinnaker: &'a Spinnaker) -> Option<&'a str> {
        self.gate_url.as_deref().or(spinnaker.gate_url.as_deref())
    }
}

impl Server {
    /// The base of links Hoist gives out (status URLs): `public_url`, else the listening address.
    pub fn base_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

impl ConfigFile {
    /// Reads and parses a file; unknown keys come back as problems, not errors.
    pub fn load(path: &Path) -> Result<(ConfigFile, Vec<Problem>), ConfigError> {
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
    pub fn parse(text: &str) -> Result<(ConfigFile, Vec<Problem>), String> {
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
        let config: ConfigFile = serde_ignored::deserialize(de, |path| {
            unknown.push(Problem {
                location: path.to_string(),
                message: "unknown key".into(),
            })
        })
        .map_err(describe)?;
        Ok((config, unknown))
    }

    /// `HOIST_LISTEN` and `HOIST_STORE_URL` override the matching keys.
    pub fn apply_env_overrides(&mut self) {
        if let Ok(listen) = std::env::var("HOIST_LISTEN") {
            self.server.listen = listen;
        }
        if let Ok(url) = std::env::var("HOIST_STORE_URL") {
            self.store.url = url;
        }
    }
}

impl Config {
    /// Loads a file, applies `HOIST_LISTEN` / `HOIST_STORE_URL`, and parses it; any problem,
    /// unknown keys included, is an error listing them all.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (mut file, mut problems) = ConfigFile::load(path)?;
        file.apply_env_overrides();
        match Self::from_file(&file) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            }),
            Err(more) => {
                problems.extend(more);
                Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    problems,
                })
            }
        }
    }

    /// Parses the file's values into the configuration Hoist runs with, or every problem found,
    /// each with its location.
    pub fn from_file(file: &ConfigFile) -> Result<Config, Vec<Problem>> {
        let mut p = Problems::default();
        let config = build(file, &mut p);
        match config {
            Some(config) if p.0.is_empty() => Ok(config),
            _ => Err(p.0),
        }
    }

    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == *name)
    }

    /// The project a CircleCI event belongs to: its `circleci_project` equals the event's project
    /// slug (or name).
    pub fn project_by_circleci(&self, slug: Option<&str>, name: Option<&str>) -> Option<&Project> {
        self.projects.iter().find(|p| {
            p.circleci_project
                .as_deref()
                .is_some_and(|c| Some(c) == slug || Some(c) == name)
        })
    }

    /// Finds a project by the repository a sender named: the project name, the repository slug, or
    /// `workspace/slug` of the configured workspace.
    pub fn project_by_repo(&self, repo: &str) -> Option<&Project> {
        let repo = repo.trim();
        let full = repo
            .split_once('/')
            .filter(|(ws, _)| self.bitbucket.workspace == *ws);
        self.projects.iter().find(|p| {
            p.repo == repo || p.name == *repo || full.is_some_and(|(_, slug)| p.repo == slug)
        })
    }

    /// The largest number of attempts a job gets.
    pub fn max_attempts(&self) -> u32 {
        self.worker.retry.max_attempts
    }
}

impl Project {
    /// The environment a request names, or the project's default (or its only one).
    pub fn env(&self, requested: Option<&str>) -> Result<&Environment, String> {
        let name = match requested.or(self.default_env.as_ref().map(EnvName::as_str)) {
            Some(name) => name,
            None if self.environments.len() == 1 => self
                .environments
                .keys()
                .next()
                .map(EnvName::as_str)
                .unwrap_or_default(),
            None => {
                return Err(format!(
                    "project `{}` has several environments and no default_env: send `env`",
                    self.name
                ));
            }
        };
        self.environments.get(name).ok_or_else(|| {
            format!(
                "project `{}` has no environment `{name}` (it has: {})",
                self.name,
                self.environments
                    .keys()
                    .map(EnvName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
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

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            location: location.into(),
            message: message.into(),
        });
    }

    /// `value` if it parsed, else its error noted at `location`.
    fn take<T, E: std::fmt::Display>(&mut self, location: &str, value: Result<T, E>) -> Option<T> {
        value.map_err(|e| self.push(location, e.to_string())).ok()
    }

    fn url(&mut self, at: &str, value: &str) {
        match url::Url::parse(value) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => self.push(at, format!("`{value}` is not an http(s) URL")),
        }
    }

    fn cidrs(&mut self, at: &str, values: &[String]) -> Vec<IpNet> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                parse_cidr(v)
                    .map_err(|_| {
                        self.push(
                            format!("{at}[{i}]"),
                            format!(
                                "`{v}` is not a CIDR such as 13.52.5.96/28 or 2401:1d80:3000::/36"
                            ),
                        )
                    })
                    .ok()
            })
            .collect()
    }

    fn secret(&mut self, at: &str, secret: &SecretRef) -> Option<Secret> {
        self.take(at, secret.resolve())
    }

    fn secret_opt(&mut self, at: &str, secret: Option<&SecretRef>) -> Option<Option<Secret>> {
        match secret {
            None => Some(None),
            Some(s) => self.secret(at, s).map(Some),
        }
    }

    fn pointer(&mut self, at: &str, ptr: &str) {
        if !ptr.is_empty() && !ptr.starts_with('/') {
            self.push(
                at,
                format!(
                    "`{ptr}` is not a JSON pointer: it must start with `/`, e.g. \"/fields/repo\""
                ),
            );
        }
    }
}

/// The whole configuration, or `None` with the problems noted.
fn build(f: &ConfigFile, p: &mut Problems) -> Option<Config> {
    let server = server(&f.server, p);
    if !(f.store.url.starts_with("sqlite:") || f.store.url.starts_with("postgres")) {
        p.push("store.url", "must start with sqlite:// or postgres://");
    }
    let bitbucket = bitbucket(f.bitbucket.as_ref(), p);
    let spinnaker = spinnaker(f.spinnaker.as_ref(), p);
    let slack = f.slack.as_ref().map(|s| slack(s, p));
    let jira = jira(&f.jira, p);
    let circleci = circleci(&f.circleci, p);
    let sources = sources(&f.sources, p);
    if f.worker.concurrency == 0 {
        p.push("worker.concurrency", "must be at least 1");
    }
    if f.worker.retry.max_attempts == 0 {
        p.push("worker.retry.max_attempts", "must be at least 1");
    }
    let projects = projects(f, p);
    for (i, project) in f.projects.iter().enumerate() {
        for (name, env) in &project.environments {
            if env.spinnaker_source.is_some() && env.gate_url.is_none() && f.spinnaker.is_none() {
                p.push(
                    format!("projects[{i}].environments.{name}.spinnaker_source"),
                    "deploys need a Gate: set [spinnaker] gate_url, or this environment's gate_url",
                );
            }
        }
    }
    Some(Config {
        server: server?,
        store: f.store.clone(),
        bitbucket: bitbucket?,
        spinnaker: spinnaker?,
        slack: match slack {
            Some(s) => Some(s?),
            None => None,
        },
        jira: jira?,
        circleci: circleci?,
        sources: sources?,
        worker: f.worker.clone(),
        lambda: f.lambda.clone(),
        projects: projects?,
    })
}

fn server(s: &file::ServerConfig, p: &mut Problems) -> Option<Server> {
    let listen = s.listen.parse::<SocketAddr>().map_err(|_| {
        p.push(
            "server.listen",
            format!(
                "`{}` is not an address:port such as 127.0.0.1:8080",
                s.listen
            ),
        )
    });
    if let Some(url) = &s.public_url {
        p.url("server.public_url", url);
    }
    let trusted_proxies = p.cidrs("server.trusted_proxies", &s.trusted_proxies);
    let api_token = p.secret_opt("server.api_token", s.api_token.as_ref());
    for (key, message) in s.limits.check() {
        p.push(format!("server.limits.{key}"), message);
    }
    Some(Server {
        listen: listen.ok()?,
        public_url: s
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        trusted_proxies,
        api_token: api_token?,
        limits: s.limits.clone(),
    })
}

fn bitbucket(b: Option<&file::BitbucketConfig>, p: &mut Problems) -> Option<Bitbucket> {
    let Some(b) = b else {
        p.push(
            "bitbucket",
            "missing: Hoist needs [bitbucket] (workspace and auth) to create tags",
        );
        return None;
    };
    p.url("bitbucket.base_url", &b.base_url);
    if b.workspace.trim().is_empty() {
        p.push("bitbucket.workspace", "must not be empty");
    }
    let auth = auth("bitbucket.auth", &b.auth, p);
    Some(Bitbucket {
        base_url: b.base_url.trim_end_matches('/').to_string(),
        workspace: b.workspace.clone(),
        auth: auth?,
        web_url: b.web_url.trim_end_matches('/').to_string(),
        timeout: Duration::from_secs(b.timeout_secs),
    })
}

fn auth(at: &str, a: &file::AuthConfig, p: &mut Problems) -> Option<HttpAuth> {
    match a {
        file::AuthConfig::Bearer(s) => p.secret(&format!("{at}.bearer"), s).map(HttpAuth::Bearer),
        file::AuthConfig::Basic { user, password } => p
            .secret(&format!("{at}.basic.password"), password)
            .map(|password| HttpAuth::Basic {
                user: user.clone(),
                password,
            }),
    }
}

fn circleci(c: &file::CircleCiConfig, p: &mut Problems) -> Option<CircleCi> {
    p.url("circleci.base_url", &c.base_url);
    if c.build_timeout_secs == 0 {
        p.push("circleci.build_timeout_secs", "must be at least 1");
    }
    Some(CircleCi {
        base_url: c.base_url.trim_end_matches('/').to_string(),
        token: p.secret_opt("circleci.token", c.token.as_ref())?,
        build_timeout: Duration::from_secs(c.build_timeout_secs),
        timeout: Duration::from_secs(c.timeout_secs),
    })
}

fn jira(j: &file::JiraConfig, p: &mut Problems) -> Option<Jira> {
    if let Some(url) = &j.base_url {
        p.url("jira.base_url", url);
    }
    let comment_on = match &j.comment_on {
        Some(steps) => steps.clone(),
        None => vec!["tagged".into(), "deployed".into(), "deploy_failed".into()],
    };
    for step in &comment_on {
        if !JIRA_STEPS.contains(&step.as_str()) {
            p.push(
                "jira.comment_on",
                format!(
                    "`{step}` is not a step Hoist comments on: use {}",
                    JIRA_STEPS.join(", ")
                ),
            );
        }
    }
    let base_url = j
        .base_url
        .as_ref()
        .map(|u| u.trim_end_matches('/').to_string());
    let write = match (&j.auth, &base_url) {
        (None, _) => None,
        (Some(_), None) => {
            p.push("jira.auth", "writing back to Jira needs jira.base_url too");
            None
        }
        (Some(a), Some(url)) => Some(JiraWrite {
            base_url: url.clone(),
            auth: auth("jira.auth", a, p)?,
            comment_on,
            timeout: Duration::from_secs(j.timeout_secs),
        }),
    };
    Some(Jira { base_url, write })
}

fn spinnaker(s: Option<&file::SpinnakerConfig>, p: &mut Problems) -> Option<Spinnaker> {
    let Some(s) = s else {
        return Some(Spinnaker::default());
    };
    p.url("spinnaker.gate_url", &s.gate_url);
    let headers: Vec<Option<(String, Secret)>> = s
        .headers
        .iter()
        .map(|(name, value)| {
            p.secret(&format!("spinnaker.headers.{name}"), value)
                .map(|v| (name.clone(), v))
        })
        .collect();
    if let Some(url) = &s.deck_url {
        p.url("spinnaker.deck_url", url);
    }
    for (key, value) in [
        ("start_timeout_secs", s.start_timeout_secs),
        ("deploy_timeout_secs", s.deploy_timeout_secs),
        ("poll_max_secs", s.poll_max_secs),
        ("poll_min_ms", s.poll_min_ms),
    ] {
        if value == 0 {
            p.push(format!("spinnaker.{key}"), "must be at least 1");
        }
    }
    Some(Spinnaker {
        gate_url: Some(s.gate_url.trim_end_matches('/').to_string()),
        headers: headers.into_iter().collect::<Option<_>>()?,
        timeout: Duration::from_secs(s.timeout_secs),
        deck_url: s
            .deck_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        start_timeout: Duration::from_secs(s.start_timeout_secs),
        deploy_timeout: Duration::from_secs(s.deploy_timeout_secs),
        poll_min: Duration::from_millis(s.poll_min_ms),
        poll_max: Duration::from_secs(s.poll_max_secs),
    })
}

fn slack(s: &file::SlackConfig, p: &mut Problems) -> Option<Slack> {
    p.url("slack.api_url", &s.api_url);
    let webhook = p.secret_opt("slack.webhook_url", s.webhook_url.as_ref());
    let token = p.secret_opt("slack.bot_token", s.bot_token.as_ref());
    let target = match (webhook?, token?) {
        (None, None) => {
            p.push("slack", "set webhook_url or bot_token (with channel)");
            return None;
        }
        (Some(_), Some(_)) => {
            p.push("slack", "set webhook_url or bot_token, not both");
            return None;
        }
        (Some(url), None) => SlackTarget::Webhook(url),
        (None, Some(token)) => {
            let Some(channel) = s.channel.clone() else {
                p.push(
                    "slack.channel",
                    "a bot token needs a channel id such as C0123456",
                );
                return None;
            };
            SlackTarget::Bot {
                token,
                channel,
                api_url: s.api_url.trim_end_matches('/').to_string(),
            }
        }
    };
    Some(Slack {
        target,
        timeout: Duration::from_secs(s.timeout_secs),
    })
}

fn sources(s: &file::SourcesConfig, p: &mut Problems) -> Option<Sources> {
    let jira = &s.jira;
    let jira_auth = source_auth(p, "sources.jira", &jira.auth(), SignatureFormat::default());
    for (key, ptr) in [
        ("repo", &jira.fields.repo),
        ("commit", &jira.fields.commit),
        ("issue", &jira.fields.issue),
        ("env", &jira.fields.env),
    ] {
        p.pointer(&format!("sources.jira.fields.{key}"), ptr);
    }
    for (key, ptr) in [
        ("repo", &jira.issue_fields.repo),
        ("commit", &jira.issue_fields.commit),
        ("env", &jira.issue_fields.env),
    ] {
        if let Some(ptr) = ptr {
            p.pointer(&format!("sources.jira.issue_fields.{key}"), ptr);
        }
    }
    let circleci = source_auth(
        p,
        "sources.circleci",
        &s.circleci,
        SignatureFormat::CircleCi,
    );
    if s.circleci.signature_header.is_some() {
        p.push(
            "sources.circleci.signature_header",
            "CircleCI always signs in circleci-signature: remove this key",
        );
    }
    let bitbucket = source_auth(
        p,
        "sources.bitbucket",
        &s.bitbucket,
        SignatureFormat::default(),
    );
    let slack_allow = p.cidrs("sources.slack.allow_ips", &s.slack.allow_ips);
    let slack_secret = p.secret_opt(
        "sources.slack.signing_secret",
        s.slack.signing_secret.as_ref(),
    );
    Some(Sources {
        jira: JiraSource {
            auth: jira_auth?,
            fields: jira.fields.clone(),
            issue_fields: jira.issue_fields.clone(),
        },
        circleci: circleci?,
        bitbucket: bitbucket?,
        slack: SlackSource {
            signing_secret: slack_secret?,
            allow: slack_allow,
        },
    })
}

fn source_auth(
    p: &mut Problems,
    at: &'static str,
    src: &file::SourceAuthConfig,
    format: SignatureFormat,
) -> Option<SourceAuth> {
    let allow = p.cidrs(&format!("{at}.allow_ips"), &src.allow_ips);
    let secret = p.secret_opt(&format!("{at}.secret"), src.secret.as_ref());
    let token = p.secret_opt(&format!("{at}.token"), src.token.as_ref());
    if src.token.is_some() && src.token_header.is_none() {
        p.push(
            format!("{at}.token_header"),
            "a token needs the header it comes in, e.g. \"X-Hoist-Token\"",
        );
    }
    if let Some(h) = &src.token_header
        && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
    {
        p.push(
            format!("{at}.token_header"),
            format!("`{h}` is not a valid header name"),
        );
    }
    let signature = match (format, &src.signature_header) {
        (SignatureFormat::Hub(_), Some(h)) => {
            if !["x-hub-signature", "x-hub-signature-256"]
                .contains(&h.to_ascii_lowercase().as_str())
            {
                p.push(
                    format!("{at}.signature_header"),
                    format!(
                        "`{h}` is not a signature header Hoist knows: use \"X-Hub-Signature\" (Bitbucket, Jira) or \"X-Hub-Signature-256\" (GitHub)"
                    ),
                );
            }
            SignatureFormat::Hub(h.clone())
        }
        (format, _) => format,
    };
    let credentials = src.secret.is_some() || src.token.is_some();
    match src.require {
        Require::Nothing if credentials => p.push(
            format!("{at}.require"),
            "\"none\" ignores the configured secret and token: remove them or require \"any\" or \"all\"",
        ),
        Require::Nothing if src.allow_ips.is_empty() => p.push(
            format!("{at}.require"),
            "\"none\" without allow_ips would accept webhooks from anyone: set allow_ips, or a secret or token",
        ),
        _ => {}
    }
    Some(SourceAuth {
        name: at,
        allow,
        secret: secret?,
        signature,
        token_header: src.token_header.clone(),
        token: token?,
        require: src.require,
    })
}

fn projects(f: &ConfigFile, p: &mut Problems) -> Option<Vec<Project>> {
    if f.projects.is_empty() {
        p.push(
            "projects",
            "no [[projects]]: nothing would ever be released",
        );
    }
    let mut names = std::collections::HashSet::new();
    let projects: Vec<Option<Project>> = f
        .projects
        .iter()
        .enumerate()
        .map(|(i, project)| {
            if !names.insert(project.name.as_str()) {
                p.push(
                    format!("projects[{i}].name"),
                    format!("project `{}` is defined twice", project.name),
                );
            }
            self::project(&format!("projects[{i}]"), project, p)
        })
        .collect();
    projects.into_iter().collect()
}

fn project(at: &str, project: &file::ProjectConfig, p: &mut Problems) -> Option<Project> {
    let name = p.take(&format!("{at}.name"), ProjectName::parse(&project.name));
    if project.repo.trim().is_empty() {
        p.push(format!("{at}.repo"), "must not be empty");
    }
    let build = match (&project.build_job, &project.build_workflow) {
        (Some(_), Some(_)) => {
            p.push(at, "set build_job or build_workflow, not both");
            None
        }
        (Some(job), None) => Some(BuildName::Job(job.clone())),
        (None, Some(wf)) => Some(BuildName::Workflow(wf.clone())),
        (None, None) => Some(BuildName::Job("build".into())),
    };
    if project.environments.is_empty() {
        p.push(
            format!("{at}.environments"),
            format!("project `{}` has no environment", project.name),
        );
    }
    let default_env = match &project.default_env {
        Some(env) if !project.environments.contains_key(env) => {
            p.push(
                format!("{at}.default_env"),
                format!("`{env}` is not one of this project's environments"),
            );
            None
        }
        Some(env) => p
            .take(&format!("{at}.default_env"), EnvName::parse(env))
            .map(Some),
        None => Some(None),
    };
    let environments: Vec<Option<(EnvName, Environment)>> = project
        .environments
        .iter()
        .map(|(name, env)| {
            let env = environment(&format!("{at}.environments.{name}"), name, env, p)?;
            Some((env.name.clone(), env))
        })
        .collect();
    for (at_env, message) in promotion::check_order(&project.environments) {
        p.push(format!("{at}.environments.{at_env}"), message);
    }
    Some(Project {
        name: name?,
        repo: project.repo.clone(),
        circleci_project: project.circleci_project.clone(),
        build: build?,
        default_env: default_env?,
        environments: environments.into_iter().collect::<Option<_>>()?,
    })
}

fn environment(
    at: &str,
    name: &str,
    env: &file::EnvConfig,
    p: &mut Problems,
) -> Option<Environment> {
    let env_name = p.take(at, EnvName::parse(name));
    if env.patch_rollover == Some(0) {
        p.push(
            format!("{at}.patch_rollover"),
            "must be at least 1 (omit it for no rollover)",
        );
    }
    let scheme = p.take(
        &format!("{at}.tag"),
        TagScheme::new(&env.tag, env.bump, env.patch_rollover),
    );
    let initial = p.take(
        &format!("{at}.initial_version"),
        Version::parse(&env.initial_version),
    );
    let parameters: Vec<Option<(String, Template)>> = env
        .parameters
        .iter()
        .map(|(key, template)| {
            p.take(&format!("{at}.parameters.{key}"), Template::parse(template))
                .map(|t| (key.clone(), t))
        })
        .collect();
    if let Some(url) = &env.gate_url {
        p.url(&format!("{at}.gate_url"), url);
    }
    if env
        .spinnaker_application
        .as_deref()
        .is_some_and(|a| a.trim().is_empty())
    {
        p.push(
            format!("{at}.spinnaker_application"),
            "must not be empty (omit it for `*`, any application)",
        );
    }
    let promotion = promotion::parse(at, env, |at, message| p.push(at, message));
    Some(Environment {
        name: env_name?,
        scheme: scheme?,
        initial: initial?,
        spinnaker_source: env.spinnaker_source.clone(),
        spinnaker_application: env
            .spinnaker_application
            .clone()
            .unwrap_or_else(|| "*".into()),
        gate_url: env
            .gate_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        parameters: parameters.into_iter().collect::<Option<_>>()?,
        promotion: promotion?,
        jira_transition: env.jira_transition.clone(),
    })
}
