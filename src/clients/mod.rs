//! Clients of the services Hoist calls out to. Only `clients/*` knows their JSON.
//!
//! Every call has a timeout. Errors say whether a retry can help ([`CallError::is_retriable`]) and
//! carry a `Retry-After` when the service gave one; the job queue does the retrying, durably, with
//! backoff and jitter, so a retry survives a restart.

pub mod bitbucket;
mod call;
pub mod slack;
pub mod spinnaker;

pub use call::{CallError, http_client, retry_after, status_error};

/// Every outbound client, built once from the configuration.
#[derive(Clone)]
pub struct Clients {
    pub bitbucket: bitbucket::Bitbucket,
    /// Absent without `[spinnaker]`: deploys then fail with what to configure.
    pub gate: Option<spinnaker::Gate>,
    /// Absent without `[slack]`: no notification is queued.
    pub slack: Option<slack::Slack>,
}

impl Clients {
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            bitbucket: bitbucket::Bitbucket::new(&config.bitbucket),
            gate: config.spinnaker.as_ref().map(spinnaker::Gate::new),
            slack: config.slack.as_ref().map(slack::Slack::new),
        }
    }
}
