//! The running application: configuration with secrets resolved, the store, and the clients.
//! Built once at start; shared by the HTTP layer and the worker.

use std::sync::Arc;

use anyhow::Context;
use ipnet::IpNet;

use crate::clients::{bitbucket::Bitbucket, slack::Slack, spinnaker::Gate};
use crate::config::{Config, Secret, SourceAuthConfig, parse_cidr};
use crate::http::limits::Guards;
use crate::sources::auth::SignatureFormat;
pub use crate::sources::auth::SourceChecks;
use crate::store::Store;

/// Resolves one source's configuration (secrets included) into the checks it applies.
fn resolve_checks(
    name: &'static str,
    c: &SourceAuthConfig,
    signature: SignatureFormat,
) -> anyhow::Result<SourceChecks> {
    let signature = match (signature, &c.signature_header) {
        (SignatureFormat::Hub(_), Some(header)) => SignatureFormat::Hub(header.clone()),
        (format, _) => format,
    };
    Ok(SourceChecks {
        name,
        allow: c
            .allow_ips
            .iter()
            .filter_map(|s| parse_cidr(s).ok())
            .collect(),
        secret: c.secret.as_ref().map(|s| s.resolve()).transpose()?,
        signature,
        token_header: c.token_header.clone(),
        token: c.token.as_ref().map(|s| s.resolve()).transpose()?,
        require: c.require,
    })
}

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub bitbucket: Bitbucket,
    pub slack: Option<Slack>,
    pub gate: Option<Gate>,
    pub jira: SourceChecks,
    pub circleci: SourceChecks,
    pub bitbucket_source: SourceChecks,
    pub trusted_proxies: Vec<IpNet>,
    pub api_token: Option<Secret>,
    /// Rate limit and bound on requests in flight, shared by every request.
    pub guards: Arc<Guards>,
    /// Wakes one of the local worker's loops per job enqueued (`notify_one`).
    pub jobs_ready: tokio::sync::Notify,
    /// Identifies this process as a job claimant.
    pub worker_id: String,
    /// Jobs born claimed by this process's worker, waiting for a loop to run them.
    pub handoff: crate::worker::Handoff,
}

#[derive(Clone)]
pub struct App(Arc<Inner>);

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    /// Resolves secrets, connects the store (running migrations) and builds the clients. The
    /// configuration must have passed [`Config::check`].
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.store.url, config.store.fsync)
            .await
            .with_context(|| {
                format!("cannot open the store at {}", redact_url(&config.store.url))
            })?;
        Self::with_store(config, store)
    }

    pub fn with_store(config: Config, store: Store) -> anyhow::Result<Self> {
        let bb = config
            .bitbucket
            .as_ref()
            .context("[bitbucket] is missing")?;
        let bitbucket = Bitbucket::from_config(bb).context("bitbucket.auth")?;
        let slack = config
            .slack
            .as_ref()
            .map(Slack::from_config)
            .transpose()
            .context("[slack]")?;
        let gate = config
            .spinnaker
            .as_ref()
            .map(Gate::from_config)
            .transpose()
            .context("[spinnaker]")?;
        let hub = || SignatureFormat::default();
        let jira = resolve_checks("sources.jira", &config.sources.jira.auth(), hub())
            .context("sources.jira")?;
        let circleci = resolve_checks(
            "sources.circleci",
            &config.sources.circleci,
            SignatureFormat::CircleCi,
        )
        .context("sources.circleci")?;
        let bitbucket_source =
            resolve_checks("sources.bitbucket", &config.sources.bitbucket, hub())
                .context("sources.bitbucket")?;
        let trusted_proxies: Vec<IpNet> = config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|s| parse_cidr(s).ok())
            .collect();
        let guards = Arc::new(Guards::new(&config.server.limits, &trusted_proxies));
        let api_token = config
            .server
            .api_token
            .as_ref()
            .map(|s| s.resolve())
            .transpose()
            .context("server.api_token")?;
        Ok(Self(Arc::new(Inner {
            config,
            store,
            bitbucket,
            slack,
            gate,
            jira,
            circleci,
            bitbucket_source,
            trusted_proxies,
            api_token,
            guards,
            jobs_ready: tokio::sync::Notify::new(),
            worker_id: format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()),
            handoff: crate::worker::Handoff::default(),
        })))
    }

    /// The base of links Hoist gives out (status URLs).
    pub fn public_url(&self) -> String {
        self.config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.config.server.listen))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn max_attempts(&self) -> u32 {
        self.config.worker.retry.max_attempts
    }

    /// How long a job's claim holds before another worker may take the job over.
    pub fn lease_ms(&self) -> i64 {
        (self.config.worker.lease_secs * 1000) as i64
    }

    /// A claim for a job about to be made, when one of the worker's loops here is idle to run it
    /// at once; `None` when they are all busy (or none runs in this process): the job is queued
    /// and claimed as usual.
    /// A claim given is a promise of that loop ([`crate::worker::Handoff::reserve`]): it ends
    /// with [`Self::hand_off`] (`reserved`) or `handoff.unreserve()`.
    pub fn born_claim(&self) -> Option<crate::store::BornClaim> {
        self.handoff.reserve().then(|| self.claim())
    }

    /// A claim for a job the running step makes and runs after itself, when the worker's loops
    /// run here (`hoist serve`; a Lambda's run may end before it gets to the job).
    pub fn own_claim(&self) -> Option<crate::store::BornClaim> {
        self.handoff.is_running().then(|| self.claim())
    }

    fn claim(&self) -> crate::store::BornClaim {
        crate::store::BornClaim {
            worker: self.worker_id.clone(),
            lease_ms: self.lease_ms(),
        }
    }

    /// Hands a job born claimed by [`Self::born_claim`] (`reserved`) or [`Self::own_claim`] to
    /// the worker.
    pub fn hand_off(&self, job: crate::store::ClaimedJob, reserved: bool) {
        self.handoff.give(job, reserved);
        self.jobs_ready.notify_one();
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hoist".into())
}

/// A store URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
