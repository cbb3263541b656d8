//! Clients of the services Hoist calls out to. Only `clients/*` knows their JSON.
//!
//! Every call has a timeout. Errors say whether a retry can help ([`CallError::is_retriable`]) and
//! carry a `Retry-After` when the service gave one; the job queue does the retrying, durably, with
//! backoff and jitter, so a retry survives a restart.

pub mod bitbucket;
mod call;
pub mod circleci;
pub mod jira;
pub mod slack;
pub mod spinnaker;

use crate::metrics::Metrics;

pub use call::{CallError, authed, http_client, retry_after, status_error};

/// Every outbound client, built once from the configuration.
#[derive(Clone)]
pub struct Clients {
    pub bitbucket: bitbucket::Bitbucket,
    /// One client per Gate the configuration names (`[spinnaker]`'s, environments' own).
    gates: std::collections::HashMap<String, spinnaker::Gate>,
    /// Absent without `[slack]`: no notification is queued.
    pub slack: Option<slack::Slack>,
    /// Absent without `[circleci] token`: missed webhooks are not looked for.
    pub circleci: Option<circleci::CircleCi>,
    /// Absent unless `[jira]` has `base_url` and `auth`: nothing is written back.
    pub jira: Option<jira::Jira>,
    /// For answers to Slack clicks (their `response_url`), with or without `[slack]`.
    pub http: reqwest::Client,
    /// Where every call is counted (`hoist_outbound_requests_total`).
    pub metrics: Metrics,
}

impl Clients {
    /// The clients of a command that is not the server: their calls are counted nowhere.
    pub fn new(config: &crate::config::Config) -> Self {
        Self::counted(config, &Metrics::new())
    }

    /// The clients, each call counted in `metrics`.
    pub fn counted(config: &crate::config::Config, metrics: &Metrics) -> Self {
        let sp = &config.spinnaker;
        let urls = config
            .projects
            .iter()
            .flat_map(|p| p.environments.values())
            .filter_map(|e| e.gate(sp))
            .chain(sp.gate_url.as_deref());
        Self {
            bitbucket: bitbucket::Bitbucket::new(&config.bitbucket, metrics),
            gates: urls
                .map(|url| (url.to_string(), spinnaker::Gate::new(url, sp, metrics)))
                .collect(),
            slack: config.slack.as_ref().map(|s| slack::Slack::new(s, metrics)),
            jira: config
                .jira
                .write
                .as_ref()
                .map(|j| jira::Jira::new(j, metrics)),
            circleci: circleci::CircleCi::new(&config.circleci, metrics),
            http: call::http_client(std::time::Duration::from_secs(10)),
            metrics: metrics.clone(),
        }
    }

    /// The Gate of an environment; `None` when none is configured for it.
    pub fn gate(
        &self,
        env: &crate::config::Environment,
        spinnaker: &crate::config::Spinnaker,
    ) -> Option<&spinnaker::Gate> {
        self.gates.get(env.gate(spinnaker)?)
    }
}
