//! `[lambda]`: how `hoist lambda` spends an invocation (SPEC 8; README "Run on AWS Lambda").

use serde::Deserialize;

/// Lambda freezes the process once it answers, so work left running is paused, not done.
#[derive(Debug, Clone, Deserialize)]
pub struct LambdaConfig {
    /// How long an invocation may run queued jobs before answering, in milliseconds. A job is
    /// started only while the budget lasts; what is left waits for the next invocation or the
    /// schedule. The senders give up after 10 s (CircleCI, Bitbucket), so keep it well below.
    /// `0` answers at once and leaves every job to later invocations.
    #[serde(default = "default_job_budget_ms")]
    pub job_budget_ms: u64,
    /// Time kept free before the function's own deadline: no job runs into it.
    #[serde(default = "default_deadline_margin_ms")]
    pub deadline_margin_ms: u64,
}

impl Default for LambdaConfig {
    fn default() -> Self {
        Self {
            job_budget_ms: default_job_budget_ms(),
            deadline_margin_ms: default_deadline_margin_ms(),
        }
    }
}

fn default_job_budget_ms() -> u64 {
    5_000
}

fn default_deadline_margin_ms() -> u64 {
    1_000
}
