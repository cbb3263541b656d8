//! What the handlers share.

use std::sync::Arc;

use tokio::sync::Notify;

use super::dashboard::session::Keys;
use super::limits::Guards;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the handlers need: the configuration, the store, the guards, and the worker's wake-up.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Store,
    /// Rate limit and bound on requests in flight, shared by every request.
    pub guards: Arc<Guards>,
    /// Wakes one of the local worker's loops per job enqueued.
    pub wake: Arc<Notify>,
    /// What `/metrics` serves; hooks are counted in it as they are answered.
    pub metrics: Metrics,
    /// What the dashboard's sessions and forms are signed with.
    pub keys: Keys,
}

impl Context {
    pub fn new(config: Arc<Config>, store: Store, wake: Arc<Notify>, metrics: Metrics) -> Self {
        let guards = Arc::new(Guards::new(
            &config.server.limits,
            &config.server.trusted_proxies,
        ));
        let keys = Keys::new(&config);
        Self {
            keys,
            config,
            store,
            guards,
            wake,
            metrics,
        }
    }

    /// Where a release's record can be read.
    pub fn status_url(&self, release: crate::domain::ReleaseId) -> String {
        format!("{}/api/releases/{release}", self.config.server.base_url())
    }
}
