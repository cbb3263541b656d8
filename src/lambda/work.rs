//! Jobs inside an invocation. Lambda freezes the process once it answers, so the jobs a request
//! starts run *before* the answer, as long as `[lambda] job_budget_ms` lasts; the rest waits in the
//! store for the next invocation or the scheduled one.
//!
//! Rules: a job is started only while the budget lasts (counted from the invocation's start); a job
//! that is running when the budget ends is let finish, because stopping it halfway could repeat an
//! outbound effect (a deploy trigger, a Slack message) when it is retried; nothing runs into the
//! function's own deadline (less `deadline_margin_ms`): a job still running then is abandoned, and
//! its lease expires so another invocation takes it over, exactly as after a crash.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::worker::Context;
use crate::worker::{self, Ran};

/// When an invocation stops starting jobs, and when it must stop altogether.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No job starts after this.
    pub budget_end: Instant,
    /// Nothing runs after this: the function's deadline less a margin.
    pub hard_end: Instant,
}

impl Limits {
    /// Limits for an invocation starting now whose deadline is `deadline_ms` (Unix epoch
    /// milliseconds, `0` when unknown), with `budget` for jobs.
    pub fn new(ctx: &Context, deadline_ms: u64, budget: Duration) -> Self {
        let now = Instant::now();
        let margin = ctx.config.lambda.deadline_margin_ms;
        let hard_end = if deadline_ms == 0 {
            now + budget + Duration::from_secs(30)
        } else {
            let left = deadline_ms.saturating_sub(crate::domain::now_ms().max(0) as u64);
            now + Duration::from_millis(left.saturating_sub(margin))
        };
        Self {
            budget_end: (now + budget).min(hard_end),
            hard_end,
        }
    }
}

/// Why an invocation stopped running jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// No job was ready.
    QueueEmpty,
    /// The budget was spent; ready jobs are left for later invocations.
    Budget,
    /// The function's deadline was near; a job may have been abandoned mid-way.
    Deadline,
    /// The store failed; the jobs stay queued.
    StoreError,
}

/// What an invocation's job runner did.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Worked {
    pub jobs: usize,
    pub stopped: Stop,
}

/// Runs `answer` and, alongside and after it, ready jobs within `limits`; returns both once the
/// answer is ready and the job runner has stopped. Jobs run while the answer is being prepared too:
/// `POST /hooks/jira?wait=N` waits for the tag a job creates.
pub async fn work_while<F: Future>(
    ctx: &Context,
    limits: Limits,
    answer: F,
) -> (F::Output, Worked) {
    let (answered_tx, answered) = watch::channel(false);
    let answer = async move {
        let out = answer.await;
        let _ = answered_tx.send(true);
        out
    };
    tokio::join!(answer, run_jobs(ctx, limits, answered))
}

/// Claims and runs jobs one by one until the queue is empty (once answered), the budget is spent,
/// or the deadline comes.
async fn run_jobs(ctx: &Context, limits: Limits, mut answered: watch::Receiver<bool>) -> Worked {
    let mut jobs = 0;
    let poll = Duration::from_millis(ctx.config.worker.poll_ms.max(5));
    loop {
        let answering = !*answered.borrow_and_update();
        let now = Instant::now();
        if now >= limits.hard_end {
            return Worked {
                jobs,
                stopped: Stop::Deadline,
            };
        }
        if now >= limits.budget_end {
            if !answering {
                return Worked {
                    jobs,
                    stopped: Stop::Budget,
                };
            }
            // Nothing more may start: wait for the answer.
            let _ = answered.changed().await;
            continue;
        }
        let notified = ctx.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match tokio::time::timeout_at(limits.hard_end, worker::run_next(ctx)).await {
            Err(_) => {
                tracing::warn!(
                    "a job was still running at the function's deadline: abandoned, it is taken over after its lease"
                );
                return Worked {
                    jobs,
                    stopped: Stop::Deadline,
                };
            }
            Ok(Ok(Ran::Job(_))) => {
                jobs += 1;
                continue;
            }
            Ok(Ok(Ran::Empty)) if !answering => {
                return Worked {
                    jobs,
                    stopped: Stop::QueueEmpty,
                };
            }
            Ok(Ok(Ran::Empty)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not claim a job");
                if !answering {
                    return Worked {
                        jobs,
                        stopped: Stop::StoreError,
                    };
                }
            }
        }
        // The answer is still being prepared: wait for a job it enqueues, or for the answer.
        tokio::select! {
            _ = notified => {}
            _ = answered.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = tokio::time::sleep_until(limits.budget_end) => {}
        }
    }
}
