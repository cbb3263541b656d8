//! The worker: claims jobs from the store and runs them, retrying failures durably.
//!
//! Each job body does its outbound calls first, then commits its effects (release state, timeline
//! event, follow-up jobs) together with marking itself done, in one transaction. A crash between
//! the call and the commit leaves the job to be claimed again after its lease, so every job body
//! is written to be idempotent.

mod build;
mod deploy;
mod notify;
mod tag;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tracing::Instrument;

use crate::app::App;
use crate::clients::CallError;
use crate::config::RetryConfig;
use crate::domain::{JobSpec, NotifyEvent};
use crate::store::{ClaimedJob, StoreError, Tx, now_ms};

/// Why a job attempt did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An outbound call failed; retried if the error is transient.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The store failed; always retried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Cannot succeed (configuration changed, data missing): the job fails now.
    #[error("{0}")]
    Fatal(String),
}

impl StepError {
    fn retriable(&self) -> bool {
        match self {
            Self::Call(e) => e.is_retriable(),
            Self::Store(_) => true,
            Self::Fatal(_) => false,
        }
    }
}

pub type StepResult = Result<(), StepError>;

/// What one call of [`run_next`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    Job(i64),
    Empty,
}

/// Jobs born claimed by this process's worker ([`crate::store::BornClaim`]), waiting for one of
/// its loops, and how many loops wait idle. A job is born claimed at ingest only against a
/// reservation ([`Self::reserve`]): at most one job promised per idle loop, counting the jobs being
/// recorded and those waiting here, so that a burst of webhooks does not pile jobs up for a few
/// loops. A job whose lease has run down too far while it waited here is dropped: its lease
/// expires and it is claimed as usual, by whichever worker comes first (so no two run it at once).
#[derive(Debug, Default)]
pub struct Handoff {
    jobs: Mutex<VecDeque<(ClaimedJob, Instant)>>,
    idle: AtomicUsize,
    /// Jobs promised to idle loops: reserved for a job being recorded, or waiting here.
    promised: AtomicUsize,
    /// The worker's loops run ([`run`]).
    running: AtomicBool,
    /// Jobs handed over since the start.
    handed: AtomicU64,
}

impl Handoff {
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Loops waiting for a job.
    pub fn idle_loops(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }

    /// Jobs born claimed and handed to this worker since it started.
    pub fn handed(&self) -> u64 {
        self.handed.load(Ordering::Relaxed)
    }

    /// Promises an idle loop to a job about to be recorded, if one has nothing promised yet. The
    /// promise ends with [`Self::give`] (`reserved`) or [`Self::unreserve`].
    pub fn reserve(&self) -> bool {
        self.promised
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p < self.idle.load(Ordering::Acquire)).then_some(p + 1)
            })
            .is_ok()
    }

    /// Ends a promise that brought no job (the lane was busy, the delivery a duplicate, the
    /// store failed).
    pub fn unreserve(&self) {
        let _ = self
            .promised
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(1));
    }

    /// Queues a job born claimed for the next loop; `reserved`: against a promise of
    /// [`Self::reserve`].
    pub fn give(&self, job: ClaimedJob, reserved: bool) {
        self.handed.fetch_add(1, Ordering::Relaxed);
        if !reserved {
            self.promised.fetch_add(1, Ordering::AcqRel);
        }
        match self.jobs.lock() {
            Ok(mut jobs) => jobs.push_back((job, Instant::now())),
            Err(_) => self.unreserve(),
        }
    }

    /// The oldest job handed over with at least half of its lease left (a loop renews it within
    /// a third).
    fn take(&self, lease: Duration) -> Option<ClaimedJob> {
        let mut jobs = self.jobs.lock().ok()?;
        while let Some((job, given)) = jobs.pop_front() {
            self.unreserve();
            if given.elapsed() < lease / 2 {
                return Some(job);
            }
            tracing::warn!(
                job.id = job.id,
                "a job born claimed waited too long for a loop; it is claimed again after its lease"
            );
        }
        None
    }

    fn drain(&self) -> Vec<ClaimedJob> {
        let jobs: Vec<ClaimedJob> = self
            .jobs
            .lock()
            .map(|mut j| j.drain(..).map(|(job, _)| job).collect())
            .unwrap_or_default();
        for _ in &jobs {
            self.unreserve();
        }
        jobs
    }
}

/// Marks a worker loop idle while it lives.
struct Idle<'a>(&'a AtomicUsize);

impl<'a> Idle<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one job, if one is ready: one handed over (born claimed here), else one claimed.
pub async fn run_next(app: &App) -> Result<Ran, StoreError> {
    match next_job(app).await? {
        Some(job) => run_claimed(app, job).await,
        None => Ok(Ran::Empty),
    }
}

/// The next job for this process: one handed over (born claimed here), else one claimed from the
/// store, else `None`.
async fn next_job(app: &App) -> Result<Option<ClaimedJob>, StoreError> {
    let lease_ms = app.lease_ms();
    if let Some(job) = app.handoff.take(Duration::from_millis(lease_ms as u64)) {
        return Ok(Some(job));
    }
    let job = app.store.claim_job(&app.worker_id, lease_ms).await?;
    if job.is_some() {
        // More may be due (the poll found this one): the next idle loop looks at once, so that
        // jobs due together start together, not one per poll.
        app.jobs_ready.notify_one();
    }
    Ok(job)
}

/// Runs a claimed job to its end: done, or its failure recorded (a retry or a give-up).
async fn run_claimed(app: &App, job: ClaimedJob) -> Result<Ran, StoreError> {
    let lease_ms = app.lease_ms();
    let span = tracing::info_span!(
        "job",
        job.id = job.id,
        job.kind = job.spec.kind(),
        job.attempt = job.attempt
    );
    async {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            r = run_job(app, &job) => r,
            _ = keep_lease(app, &job, lease_ms) => Err(StepError::Fatal("lost the job's lease".into())),
        };
        match result {
            Ok(()) => {
                tracing::info!(duration_ms = started.elapsed().as_millis() as u64, "job done");
                Ok(())
            }
            Err(e) => record_failure(app, &job, &e).await,
        }
    }
    .instrument(span)
    .await?;
    Ok(Ran::Job(job.id))
}

/// Renews the lease while a job runs; returns only if the lease was lost.
async fn keep_lease(app: &App, job: &ClaimedJob, lease_ms: i64) {
    loop {
        tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(100) as u64)).await;
        match app.store.renew_lease(job, lease_ms).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "could not renew a job lease"),
        }
    }
}

async fn run_job(app: &App, job: &ClaimedJob) -> StepResult {
    match &job.spec {
        JobSpec::CreateTag { release_id } => tag::run(app, job, *release_id).await,
        JobSpec::HandleBuild { delivery_id } => build::run(app, job, *delivery_id).await,
        JobSpec::Deploy { release_id } => deploy::run(app, job, *release_id).await,
        JobSpec::Notify { release_id, event } => notify::run(app, job, *release_id, event).await,
    }
}

async fn record_failure(app: &App, job: &ClaimedJob, e: &StepError) -> Result<(), StoreError> {
    let message = e.to_string();
    let retry_at = (e.retriable() && job.attempt < job.max_attempts).then(|| {
        let after = match e {
            StepError::Call(c) => c.retry_after(),
            _ => None,
        };
        now_ms() + backoff_ms(&app.config.worker.retry, job.attempt, after)
    });
    match retry_at {
        Some(at) => {
            tracing::warn!(job.id = job.id, job.kind = job.spec.kind(), error = %message, retry_in_ms = at - now_ms(), "job attempt failed; will retry")
        }
        None => {
            tracing::error!(job.id = job.id, job.kind = job.spec.kind(), error = %message, attempts = job.attempt, "job failed for good")
        }
    }
    if retry_at.is_some() {
        return app.store.fail_job(job, &message, retry_at).await.map(drop);
    }
    let mut tx = app.store.begin().await?;
    if tx.fail_job(job, &message, None).await? {
        give_up(&mut tx, app, job, &message).await?;
    }
    tx.commit().await
}

/// Effects of a job that will not be retried: the release fails visibly, and Slack is told.
async fn give_up(tx: &mut Tx, app: &App, job: &ClaimedJob, error: &str) -> Result<(), StoreError> {
    let (release_id, step) = match &job.spec {
        JobSpec::CreateTag { release_id } => (*release_id, "tagging"),
        JobSpec::Deploy { release_id } => (*release_id, "deploy trigger"),
        JobSpec::HandleBuild { delivery_id } => {
            tx.set_delivery_outcome(*delivery_id, &format!("failed: {error}"), None)
                .await?;
            return Ok(());
        }
        JobSpec::Notify { .. } => return Ok(()),
    };
    tx.set_failed(release_id, &format!("{step} failed: {error}"))
        .await?;
    tx.add_event(
        release_id,
        "failed",
        &format!("{step} failed after {} attempt(s): {error}", job.attempt),
    )
    .await?;
    notify_later(
        tx,
        app,
        release_id,
        NotifyEvent::Failed {
            step: step.into(),
            error: error.into(),
        },
    )
    .await
}

/// Marks a job done with no other effect.
async fn finish_job(app: &App, job: &ClaimedJob, outcome: &str) -> StepResult {
    app.store.finish_job(job, outcome).await?;
    Ok(())
}

/// Enqueues a Slack message for a release, in the release's notification lane (one at a time,
/// in order, so a thread's first message is its root).
pub async fn notify_later(
    tx: &mut Tx,
    app: &App,
    release_id: i64,
    event: NotifyEvent,
) -> Result<(), StoreError> {
    if app.slack.is_none() {
        return Ok(());
    }
    tx.enqueue(
        &JobSpec::Notify { release_id, event },
        &format!("notify:{release_id}"),
        app.max_attempts(),
        0,
    )
    .await
    .map(|_| ())
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

/// Runs jobs until `shutdown` fires: `concurrency` loops that claim, run, and wait when idle
/// until they are woken: by a job enqueued or handed over here, by a loop that claimed a job (more
/// may be due), or by the poll.
///
/// The poll is one per process, not one per loop: every `worker.poll_ms` it wakes one idle loop
/// to look for work that no notification announces (retries coming due, other replicas' jobs,
/// leases run out). An idle worker of 8 loops thus makes 4 claims a second at the default 250 ms,
/// not 32, and a loop that finds a job wakes the next, so jobs that came due together still
/// start together.
pub async fn run(app: App, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    app.handoff.running.store(true, Ordering::Relaxed);
    let mut loops = tokio::task::JoinSet::new();
    loops.spawn({
        let app = app.clone();
        let mut shutdown = shutdown.clone();
        async move {
            let mut every =
                tokio::time::interval(Duration::from_millis(app.config.worker.poll_ms.max(1)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => app.jobs_ready.notify_one(),
                    _ = shutdown.changed() => return,
                }
            }
        }
    });
    for _ in 0..app.config.worker.concurrency {
        let app = app.clone();
        let mut shutdown = shutdown.clone();
        loops.spawn(async move {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                // Registered before the claim, so a job enqueued meanwhile is not missed, and
                // dropped before the job runs: a wake-up that reached this loop while it claimed
                // goes on to another waiting loop then, not after the job. One loop is woken per
                // job (`notify_one`): waking them all would send every idle loop into a claim that
                // finds nothing, each taking the store's write lock.
                let job = {
                    let mut notified = std::pin::pin!(app.jobs_ready.notified());
                    notified.as_mut().enable();
                    let job = next_job(&app).await.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "worker could not claim a job");
                        None
                    });
                    if job.is_none() {
                        let _idle = Idle::new(&app.handoff.idle);
                        tokio::select! {
                            _ = notified => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                    job
                };
                if let Some(job) = job
                    && let Err(e) = run_claimed(&app, job).await
                {
                    tracing::warn!(error = %e, "worker could not record a job's end");
                }
            }
        });
    }
    let _ = shutdown.changed().await;
    while loops.join_next().await.is_some() {}
    app.handoff.running.store(false, Ordering::Relaxed);
    // Jobs handed over that no loop started go back to the queue now rather than wait out their
    // lease.
    for job in app.handoff.drain() {
        let handed_back =
            app.store
                .fail_job(&job, "not started: the worker stopped", Some(now_ms()));
        if let Err(e) = handed_back.await {
            tracing::warn!(job.id = job.id, error = %e, "could not hand a job back; it is claimed again after its lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64) -> ClaimedJob {
        ClaimedJob::born(
            id,
            JobSpec::CreateTag { release_id: id },
            5,
            &crate::store::BornClaim {
                worker: "w".into(),
                lease_ms: 60_000,
            },
        )
    }

    #[test]
    fn each_idle_loop_is_promised_one_job_at_most() {
        let h = Handoff::default();
        assert!(!h.reserve(), "no loop waits");
        let first = Idle::new(&h.idle);
        let second = Idle::new(&h.idle);
        assert!(h.reserve() && h.reserve());
        assert!(!h.reserve(), "two loops, two promises");
        h.give(job(1), true);
        h.unreserve(); // the second delivery brought no job
        assert!(h.reserve(), "one loop has nothing promised again");
        h.give(job(2), true);
        assert!(!h.reserve());
        drop((first, second));
        let lease = Duration::from_secs(60);
        assert_eq!(h.take(lease).map(|j| j.id), Some(1), "in the order given");
        assert_eq!(h.take(lease).map(|j| j.id), Some(2));
        assert!(h.take(lease).is_none());
        assert_eq!(h.promised.load(Ordering::Relaxed), 0);
        // A job a step makes and runs after itself needs no promise, and counts while it waits.
        let _idle = Idle::new(&h.idle);
        h.give(job(3), false);
        assert!(!h.reserve());
        assert_eq!(h.take(lease).map(|j| j.id), Some(3));
        assert!(h.reserve());
    }

    #[test]
    fn a_handed_job_whose_lease_ran_down_is_left_to_its_expiry() {
        let h = Handoff::default();
        h.give(job(1), false);
        std::thread::sleep(Duration::from_millis(200));
        h.give(job(2), false);
        // A 300 ms lease: job 1 waited past half of it, job 2 did not.
        let lease = Duration::from_millis(300);
        assert_eq!(h.take(lease).map(|j| j.id), Some(2));
        assert!(h.take(lease).is_none());
    }

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
