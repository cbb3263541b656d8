//! The worker: claims jobs from the store and runs them, retrying failures durably.
//!
//! Each job gathers what the decision needs (the release as stored, what a vendor answers), asks
//! the core ([`crate::core`]) what follows, and has the store write it together with marking the
//! job done, in one transaction. A crash between a call and that commit leaves the job to be
//! claimed again after its lease, so every job is written to be idempotent.

mod build;
mod deploy;
mod follow;
mod jira;
mod notify;
mod observe;
mod promote;
mod reconcile;
mod step;
mod tag;

pub use step::{Context, StepError, StepResult};

use std::time::Duration;

use rand::Rng;
use tracing::Instrument;

use crate::config::RetryConfig;
use crate::core::failure;
use crate::core::job::JobSpec;
use crate::domain::now_ms;
use crate::store::{ClaimedJob, StoreError};

/// What one call of [`run_next`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    Job(crate::domain::JobId),
    Empty,
}

/// Runs one job, if one is ready.
pub async fn run_next(ctx: &Context) -> Result<Ran, StoreError> {
    match ctx.store.claim_job(&ctx.id, ctx.lease_ms()).await? {
        Some(job) => {
            // More may be due (the poll found this one): the next idle loop looks at once, so
            // that jobs due together start together, not one per poll.
            ctx.wake.notify_one();
            run_claimed(ctx, job).await
        }
        None => Ok(Ran::Empty),
    }
}

/// Runs a claimed job to its end: done, or its failure recorded (a retry or a give-up).
async fn run_claimed(ctx: &Context, job: ClaimedJob) -> Result<Ran, StoreError> {
    let span = tracing::info_span!(
        "job",
        job.id = job.id.0,
        job.kind = job.spec.kind(),
        job.attempt = job.attempt
    );
    let id = job.id;
    ctx.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id);
    let ended = async {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            r = run_job(ctx, &job) => r,
            _ = keep_lease(ctx, &job) => Err(StepError::Fatal("lost the job's lease".into())),
        };
        match result {
            Ok(()) => {
                tracing::info!(
                    duration_ms = started.elapsed().as_millis() as u64,
                    "job done"
                );
                Ok(())
            }
            Err(e) => record_failure(ctx, &job, &e).await,
        }
    }
    .instrument(span)
    .await;
    ctx.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    ended?;
    Ok(Ran::Job(id))
}

/// Renews the lease while a job runs; returns only if the lease was lost.
async fn keep_lease(ctx: &Context, job: &ClaimedJob) {
    let lease_ms = ctx.lease_ms();
    loop {
        tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(100) as u64)).await;
        match ctx.store.renew_lease(job, lease_ms).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "could not renew a job lease"),
        }
    }
}

async fn run_job(ctx: &Context, job: &ClaimedJob) -> StepResult {
    match &job.spec {
        JobSpec::CreateTag { release_id } => tag::run(ctx, job, *release_id).await,
        JobSpec::HandleBuild { delivery_id } => build::run(ctx, job, *delivery_id).await,
        JobSpec::Deploy { release_id } => deploy::run(ctx, job, *release_id).await,
        JobSpec::Promote { release_id, env } => promote::run(ctx, job, *release_id, env).await,
        JobSpec::FollowDeploy {
            deployment_id,
            poll,
        } => follow::run(ctx, job, *deployment_id, *poll).await,
        JobSpec::Notify {
            release_id,
            deployment,
            event,
        } => notify::run(ctx, job, *release_id, *deployment, event).await,
        JobSpec::Respond { url, body } => {
            crate::clients::slack::respond(&ctx.clients.http, &ctx.clients.metrics, url, body)
                .await?;
            step::finish(ctx, job, "answered", Default::default()).await
        }
        JobSpec::ConsiderPromotion { release_id, env } => {
            promote::consider(ctx, job, *release_id, env).await
        }
        JobSpec::JiraComment {
            release_id,
            deployment,
            event,
        } => jira::comment(ctx, job, *release_id, *deployment, event).await,
        JobSpec::JiraTransition { release_id, env } => {
            jira::transition(ctx, job, *release_id, env).await
        }
        JobSpec::ReconcileBuild { release_id } => reconcile::run(ctx, job, *release_id).await,
        JobSpec::PromoteOnStatus { issue, status, by } => {
            promote::on_status(ctx, job, issue, status, by).await
        }
    }
}

async fn record_failure(ctx: &Context, job: &ClaimedJob, e: &StepError) -> Result<(), StoreError> {
    let message = e.to_string();
    if e.retriable() && job.attempt < job.max_attempts {
        let after = match e {
            StepError::Call(c) => c.retry_after(),
            _ => None,
        };
        let retry_in = backoff_ms(&ctx.config.worker.retry, job.attempt, after);
        tracing::warn!(job.id = job.id.0, job.kind = job.spec.kind(), error = %message, retry_in_ms = retry_in, "job attempt failed; will retry");
        return ctx
            .store
            .retry_later(job, &message, now_ms() + retry_in)
            .await
            .map(drop);
    }
    tracing::error!(job.id = job.id.0, job.kind = job.spec.kind(), error = %message, attempts = job.attempt, "job failed for good");
    let changes = gave_up(ctx, job, &message).await;
    let queued = !changes.jobs.is_empty();
    let ends = observe::Ends::of(&changes);
    let written = ctx.store.give_up(job, &message, changes).await?;
    if queued {
        ctx.wake.notify_one();
    }
    if written {
        ends.count(&ctx.store, &ctx.metrics).await;
    }
    Ok(())
}

/// What giving up on `job` means: the core's rule for its kind, with the records it needs read.
async fn gave_up(ctx: &Context, job: &ClaimedJob, error: &str) -> crate::core::plan::Changes {
    let mut changes = failure::give_up(&ctx.config, &job.spec, error, job.attempt);
    let extra = match &job.spec {
        JobSpec::FollowDeploy { deployment_id, .. } => {
            follow::gave_up(ctx, *deployment_id, error).await
        }
        JobSpec::Deploy { release_id } => ctx
            .store
            .deployments(*release_id)
            .await
            .map(|all| failure::trigger_abandoned(&all, error, now_ms()))
            .map_err(StepError::from),
        JobSpec::Promote { release_id, env } => ctx
            .store
            .deployments(*release_id)
            .await
            .map(|all| {
                let into: Vec<_> = all.into_iter().filter(|d| d.env == *env).collect();
                failure::trigger_abandoned(&into, error, now_ms())
            })
            .map_err(StepError::from),
        _ => Ok(Default::default()),
    };
    match extra {
        Ok(more) => changes.extend(more),
        Err(e) => {
            tracing::warn!(job.id = job.id.0, error = %e, "could not read what giving up a job changes")
        }
    }
    changes
}

/// After a claim or a job's end failed without an answer (a dropped connection), the claim may
/// have been written: lets this process's claims of jobs it is not running go, so that they run
/// again now rather than after their lease. Tries until the store answers, in the background.
fn let_go_of_lost_claims(ctx: &Context) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        for attempt in 0..20u32 {
            // Past the second in which a claim just made may not be running yet.
            tokio::time::sleep(Duration::from_millis(1_100 + 200 * u64::from(attempt))).await;
            let running: Vec<_> = ctx
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .copied()
                .collect();
            match ctx.store.release_lost_claims(&ctx.id, running).await {
                Ok(0) => return,
                Ok(n) => {
                    tracing::info!(jobs = n, "let go of claims lost with a connection");
                    ctx.wake.notify_one();
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "could not yet let go of lost claims"),
            }
        }
    });
}

/// Exponential backoff with jitter: base * 2^(attempt-1), capped, then a random point in its upper
/// half; never sooner than the service's `Retry-After`.
pub fn backoff_ms(c: &RetryConfig, attempt: i64, retry_after: Option<Duration>) -> i64 {
    let exp = c
        .base_ms
        .saturating_mul(1u64 << (attempt.clamp(1, 30) - 1) as u32)
        .min(c.max_delay_ms);
    let jittered = rand::rng().random_range(exp / 2..=exp.max(1));
    let floor = retry_after.map(|d| d.as_millis() as u64).unwrap_or(0);
    jittered.max(floor) as i64
}

/// Runs jobs until `shutdown` fires: `worker.concurrency` loops that claim, run, and wait when
/// idle until they are woken: by a job enqueued here, by a loop that claimed a job (more may be
/// due), or by the poll.
///
/// The poll is one per process, not one per loop: every `worker.poll_ms` it wakes one idle loop
/// to look for work that no notification announces (retries coming due, other replicas' jobs,
/// leases run out).
pub async fn run(ctx: Context, shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut loops = tokio::task::JoinSet::new();
    loops.spawn({
        let ctx = ctx.clone();
        let mut shutdown = shutdown.clone();
        async move {
            let mut every =
                tokio::time::interval(Duration::from_millis(ctx.config.worker.poll_ms.max(1)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => ctx.wake.notify_one(),
                    _ = shutdown.changed() => return,
                }
            }
        }
    });
    for _ in 0..ctx.config.worker.concurrency {
        let ctx = ctx.clone();
        let mut shutdown = shutdown.clone();
        loops.spawn(async move {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                // Registered before the claim, so a job enqueued meanwhile is not missed, and
                // dropped before the job runs: a wake-up that reached this loop while it claimed
                // goes on to another waiting loop then, not after the job. One loop is woken per
                // job (`notify_one`): waking them all would send every idle loop into a claim
                // that finds nothing.
                let job = {
                    let mut notified = std::pin::pin!(ctx.wake.notified());
                    notified.as_mut().enable();
                    let job = ctx
                        .store
                        .claim_job(&ctx.id, ctx.lease_ms())
                        .await
                        .unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "worker could not claim a job");
                            let_go_of_lost_claims(&ctx);
                            None
                        });
                    match &job {
                        Some(_) => ctx.wake.notify_one(),
                        None => {
                            tokio::select! {
                                _ = notified => {}
                                _ = shutdown.changed() => {}
                            }
                        }
                    }
                    job
                };
                if let Some(job) = job
                    && let Err(e) = run_claimed(&ctx, job).await
                {
                    tracing::warn!(error = %e, "worker could not record a job's end");
                    let_go_of_lost_claims(&ctx);
                }
            }
        });
    }
    let mut shutdown = shutdown;
    let _ = shutdown.changed().await;
    while loops.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let c = RetryConfig {
            base_ms: 1000,
            max_delay_ms: 60_000,
            max_attempts: 10,
        };
        for attempt in 1..=12 {
            let d = backoff_ms(&c, attempt, None);
            let exp = (1000u64 << (attempt - 1).min(20)).min(60_000) as i64;
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d}");
        }
        assert!(backoff_ms(&c, 1, Some(Duration::from_secs(30))) >= 30_000);
    }

    #[test]
    fn default_schedule_outlasts_an_hour_long_outage() {
        // Even with the shortest jitter at every step, the default attempts span over an hour,
        // so an outage of a minute (or an hour) never exhausts a job.
        let c = RetryConfig::default();
        let total: i64 = (1..i64::from(c.max_attempts))
            .map(|a| {
                let exp = c.base_ms.saturating_mul(1 << (a - 1)).min(c.max_delay_ms);
                (exp / 2) as i64
            })
            .sum();
        assert!(total > 3_600_000, "{total} ms");
    }
}
