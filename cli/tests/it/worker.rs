//! The worker's loops: what an idle worker costs the store, and how fast work that no
//! notification announces (retries, other replicas' jobs) is started.

use std::time::{Duration, Instant};

use hoist::core::job::{Job, NotifyEvent};
use hoist::core::plan::Changes;
use hoist::domain::ReleaseStatus;
use hoist_cli::stack::{Stack, StackOptions};
use hoist_sim::Fault;

use crate::util::{WAIT, stack_with};

/// A stack whose worker has `loops` loops and polls every `poll_ms`, with a tagged release (no
/// build) for each issue and every job of theirs done.
async fn tagged_releases(poll_ms: u64, loops: usize, issues: &[&str]) -> (Stack, Vec<i64>) {
    let s = stack_with(
        StackOptions {
            poll_ms,
            auto_build: false,
            ..Default::default()
        },
        |c| c.worker.concurrency = loops,
    )
    .await;
    let mut releases = Vec::new();
    for issue in issues {
        let commit = s.commit(&format!("{issue} change"));
        let (_, body) = s.assign(issue, &commit).await.unwrap();
        let id = body["release"].as_i64().unwrap();
        s.wait_release(id, WAIT, |r| r.status == ReleaseStatus::Tagged)
            .await
            .unwrap();
        releases.push(id);
    }
    s.settle(WAIT).await.unwrap();
    (s, releases)
}

/// Queues a Slack post for each release, in one commit and without waking the worker, as
/// another replica would.
async fn queue_posts(s: &Stack, releases: &[i64]) {
    let mut changes = Changes::default();
    for id in releases {
        let event = NotifyEvent::BuildFailed {
            status: "failed".into(),
        };
        changes = changes.job(Job::notify((*id).into(), event));
    }
    s.hoist.store.apply(changes).await.unwrap();
}

/// Waits until Slack holds `count` messages; answers how long that took from `since`.
async fn slack_holds(s: &Stack, count: usize, since: Instant) -> Duration {
    while s.slack.messages().len() < count {
        assert!(
            since.elapsed() < WAIT,
            "the posts were never made: {:?}",
            s.slack.messages()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    since.elapsed()
}

/// One poll for the process, not one per loop: 8 idle loops polling every 50 ms look for due
/// jobs about 20 times a second, not 160 (each look is a claim statement on the database).
#[tokio::test]
async fn an_idle_worker_claims_once_per_poll_whatever_its_loops() {
    let s = stack_with(
        StackOptions {
            poll_ms: 50,
            ..Default::default()
        },
        |c| c.worker.concurrency = 8,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = s.hoist.store.claims_made();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let made = s.hoist.store.claims_made() - before;
    assert!(
        (5..=30).contains(&made),
        "{made} claims in a second of idling (8 loops, a 50 ms poll)"
    );
    s.finish().await.unwrap();
}

/// Jobs that come due together without a notification here (written by another replica, or
/// retries whose time came) start together: the poll wakes one loop, and each loop that claims a
/// job wakes the next. Four Slack posts that each take a second, found by a 500 ms poll, are all
/// made within 1.5 s; one job per poll would take 2.5 s at least.
#[tokio::test]
async fn jobs_found_by_the_poll_start_together() {
    let (s, releases) = tagged_releases(500, 8, &["PAY-71", "PAY-72", "PAY-73", "PAY-74"]).await;
    let posted = s.slack.messages().len();

    s.slack
        .faults()
        .push(Fault::Delay(Duration::from_secs(1)), releases.len());
    queue_posts(&s, &releases).await;
    let took = slack_holds(&s, posted + releases.len(), Instant::now()).await;
    assert!(
        took < Duration::from_millis(2200),
        "four one-second posts found by the poll took {took:?}: they started one per poll"
    );
    s.finish().await.unwrap();
}

/// A loop running a job holds no claim on wake-ups: a job enqueued while one loop is busy with a
/// slow Slack post is started by another loop at once, not after the slow post (the busy loop
/// registered for wake-ups before it claimed, and a wake-up it got meanwhile must pass on).
#[tokio::test]
async fn a_busy_loop_does_not_keep_a_wake_up_from_an_idle_one() {
    let (s, releases) = tagged_releases(60_000, 2, &["PAY-81", "PAY-82"]).await;
    let posted = s.slack.messages().len();

    // One loop takes the slow post; the other is woken by its claim, finds nothing and waits.
    s.slack
        .faults()
        .push(Fault::Delay(Duration::from_secs(4)), 1);
    queue_posts(&s, &releases[..1]).await;
    s.hoist.worker.wake.notify_one();
    while s.slack.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Enqueued and announced, as ingest does.
    let started = Instant::now();
    queue_posts(&s, &releases[1..]).await;
    s.hoist.worker.wake.notify_one();
    let took = slack_holds(&s, posted + 1, started).await;
    assert!(
        took < Duration::from_millis(2000),
        "a job enqueued beside a busy loop took {took:?}: it waited for the busy loop"
    );
    s.finish().await.unwrap();
}
