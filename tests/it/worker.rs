//! The worker's loops: what an idle worker costs the store, and how fast work that no
//! notification announces (retries, other replicas' jobs) is started.

use std::time::{Duration, Instant};

use hoist::domain::{JobSpec, NotifyEvent, ReleaseStatus};
use hoist::sim::Fault;
use hoist::stack::StackOptions;

use crate::util::{WAIT, stack_with};

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
    let before = s.app.store.claims_made().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let made = s.app.store.claims_made().await - before;
    assert!(
        (5..=30).contains(&made),
        "{made} claims in a second of idling (8 loops, a 50 ms poll)"
    );
}

/// Jobs that come due together without a notification here (written by another replica, or
/// retries whose time came) start together: the poll wakes one loop, and each loop that claims a
/// job wakes the next. Four Slack posts that each take a second, found by a 500 ms poll, are all
/// made within 1.5 s; one job per poll would take 2.5 s at least.
#[tokio::test]
async fn jobs_found_by_the_poll_start_together() {
    let s = stack_with(
        StackOptions {
            poll_ms: 500,
            auto_build: false,
            ..Default::default()
        },
        |c| c.worker.concurrency = 8,
    )
    .await;
    let mut releases = Vec::new();
    for issue in ["PAY-71", "PAY-72", "PAY-73", "PAY-74"] {
        let commit = s.commit(&format!("{issue} change"));
        let (_, body) = s.assign(issue, &commit).await.unwrap();
        let id = body["release"].as_i64().unwrap();
        s.wait_release(id, WAIT, |r| r.status == ReleaseStatus::Tagged)
            .await
            .unwrap();
        releases.push(id);
    }
    s.settle(WAIT).await.unwrap();
    let posted = s.slack.messages().len();

    s.slack
        .faults()
        .push(Fault::Delay(Duration::from_secs(1)), releases.len());
    let mut tx = s.app.store.begin().await.unwrap();
    for id in &releases {
        let spec = JobSpec::Notify {
            release_id: *id,
            event: NotifyEvent::BuildFailed {
                status: "failed".into(),
            },
        };
        tx.enqueue(&spec, &format!("notify:{id}"), 3, 0)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let started = Instant::now();
    while s.slack.messages().len() < posted + releases.len() {
        assert!(
            started.elapsed() < WAIT,
            "the posts were never made: {:?}",
            s.slack.messages()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2200),
        "four one-second posts found by the poll took {took:?}: they started one per poll"
    );
}

/// A loop running a job holds no claim on wake-ups: a job enqueued while one loop is busy with a
/// slow Slack post is started by another loop at once, not after the slow post (the busy loop
/// registered for wake-ups before it claimed, and a wake-up it got meanwhile must pass on).
#[tokio::test]
async fn a_busy_loop_does_not_keep_a_wake_up_from_an_idle_one() {
    let s = stack_with(
        StackOptions {
            poll_ms: 60_000,
            auto_build: false,
            ..Default::default()
        },
        |c| c.worker.concurrency = 2,
    )
    .await;
    let mut releases = Vec::new();
    for issue in ["PAY-81", "PAY-82"] {
        let commit = s.commit(&format!("{issue} change"));
        let (_, body) = s.assign(issue, &commit).await.unwrap();
        let id = body["release"].as_i64().unwrap();
        s.wait_release(id, WAIT, |r| r.status == ReleaseStatus::Tagged)
            .await
            .unwrap();
        releases.push(id);
    }
    s.settle(WAIT).await.unwrap();
    let posted = s.slack.messages().len();
    let enqueue = |id: i64| {
        let s = &s;
        async move {
            let mut tx = s.app.store.begin().await.unwrap();
            let spec = JobSpec::Notify {
                release_id: id,
                event: NotifyEvent::BuildFailed {
                    status: "failed".into(),
                },
            };
            tx.enqueue(&spec, &format!("notify:{id}"), 3, 0)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            s.app.jobs_ready.notify_one();
        }
    };

    // One loop takes the slow post; the other is woken by its claim, finds nothing and waits.
    s.slack
        .faults()
        .push(Fault::Delay(Duration::from_secs(4)), 1);
    enqueue(releases[0]).await;
    while s.slack.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    enqueue(releases[1]).await;
    while s.slack.messages().len() < posted + 1 {
        assert!(started.elapsed() < WAIT, "the second post was never made");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2000),
        "a job enqueued beside a busy loop took {took:?}: it waited for the busy loop"
    );
}
