//! What every job shares: its context, how a step fails, and how a job ends with what it wrote.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clients::{CallError, Clients};
use crate::config::Config;
use crate::core::plan::Changes;
use crate::metrics::Metrics;
use crate::store::{ClaimedJob, Store, StoreError};

/// What a job needs: the configuration, the store, the clients, and the process's wake-up for
/// jobs enqueued.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Store,
    pub clients: Clients,
    /// Wakes one idle loop per job enqueued (`notify_one`).
    pub wake: Arc<Notify>,
    /// Where the ends of steps, releases and deployments are counted.
    pub metrics: Metrics,
    /// Identifies this process as a job claimant.
    pub id: String,
    /// The jobs this process runs now.
    pub(super) running: Arc<std::sync::Mutex<std::collections::HashSet<crate::domain::JobId>>>,
}

impl Context {
    pub fn new(config: Arc<Config>, store: Store, wake: Arc<Notify>, metrics: Metrics) -> Self {
        Self {
            clients: Clients::counted(&config, &metrics),
            config,
            store,
            wake,
            metrics,
            id: format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()),
            running: Arc::default(),
        }
    }

    /// How long a job's claim holds before another worker may take the job over.
    pub fn lease_ms(&self) -> i64 {
        (self.config.worker.lease_secs * 1000) as i64
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hoist".into())
}

/// Why a job attempt did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An outbound call failed; retried if the error is transient.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The store failed (or the release changed meanwhile); always retried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Cannot succeed (configuration changed, data missing): the job fails now.
    #[error("{0}")]
    Fatal(String),
}

impl StepError {
    pub(super) fn retriable(&self) -> bool {
        match self {
            Self::Call(e) => e.is_retriable(),
            Self::Store(_) => true,
            Self::Fatal(_) => false,
        }
    }
}

pub type StepResult = Result<(), StepError>;

/// Ends a job with `changes` written with it, and wakes a loop for the jobs they queue.
pub(super) async fn finish(
    ctx: &Context,
    job: &ClaimedJob,
    outcome: &str,
    changes: Changes,
) -> StepResult {
    let queued = !changes.jobs.is_empty();
    let ends = super::observe::Ends::of(&changes);
    if ctx.store.finish_job(job, outcome, changes).await? {
        if queued {
            ctx.wake.notify_one();
        }
        ends.count(&ctx.store, &ctx.metrics).await;
    }
    Ok(())
}
