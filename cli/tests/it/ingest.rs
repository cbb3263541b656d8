//! The store's shared-commit ingest, driven directly: many deliveries at once land exactly once
//! each, duplicates inside one batch are told apart, releases and jobs commit with their
//! delivery, and on SQLite the WAL starts over while writes keep coming.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hoist::store::{Ingested, NewDelivery, NewRelease, Store};

use super::util::store_url;

/// The URL of a new, empty store for one test and, on SQLite, the directory that holds it.
async fn fresh_url() -> (String, Option<tempfile::TempDir>) {
    match store_url().await {
        Some(url) => (url, None),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("hoist.db").display());
            (url, Some(dir))
        }
    }
}

/// The store of one test, its URL and, on SQLite, the directory that holds it.
async fn store_at() -> (Store, String, Option<tempfile::TempDir>) {
    let (url, dir) = fresh_url().await;
    (Store::connect(&url, false).await.unwrap(), url, dir)
}

/// A pool on the store at `url` with its schema migrated up to `version` only: a store written
/// by an older Hoist.
async fn migrated_to(url: &str, version: i64) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let postgres = url.starts_with("postgres");
    let options = if postgres {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    };
    let pool = sqlx::AnyPool::connect(&options).await.unwrap();
    let migrator = if postgres {
        sqlx::migrate!("../migrations/postgres")
    } else {
        sqlx::migrate!("../migrations/sqlite")
    };
    migrator.run_to(version, &pool).await.unwrap();
    pool
}

async fn store() -> (Store, Option<tempfile::TempDir>) {
    let (store, _, dir) = store_at().await;
    (store, dir)
}

fn delivery(key: Option<String>, body: String) -> NewDelivery {
    NewDelivery {
        source: "circleci",
        key,
        event_at: String::new(),
        event: "job-completed".into(),
        client_ip: Some("127.0.0.1".into()),
        body,
    }
}

#[tokio::test]
async fn deliveries_sent_at_once_each_land_once() {
    let (store, _dir) = store().await;
    // 600 distinct keys, each sent twice at the same moment, 100 without a key, and every
    // fifth keyed one with a job: batches mix all of them.
    let mut sends = Vec::new();
    for i in 0..600 {
        let lane = (i % 5 == 0).then(|| format!("build:{i}"));
        for _ in 0..2 {
            sends.push((Some(format!("key-{i}")), lane.clone()));
        }
    }
    for _ in 0..100 {
        sends.push((None, None));
    }
    let answers = futures_util::future::join_all(sends.iter().map(|(key, lane)| {
        let store = store.clone();
        let body = format!("{{\"id\": {key:?}, \"pad\": \"{}\"}}", "x".repeat(1500));
        async move {
            store
                .ingest_delivery(delivery(key.clone(), body), "recorded", lane.clone(), 5)
                .await
                .unwrap()
        }
    }))
    .await;

    let mut by_key: HashMap<&str, Vec<Ingested>> = HashMap::new();
    let mut ids = BTreeSet::new();
    for ((key, lane), answer) in sends.iter().zip(&answers) {
        match (key, answer) {
            (None, Ingested::Ignored { delivery_id }) => assert!(ids.insert(*delivery_id)),
            (None, other) => panic!("a keyless delivery answered {other:?}"),
            (Some(k), a) => by_key.entry(k).or_default().push(*a),
        }
        if let (Some(_), Some(_), Ingested::Ignored { .. }) = (key, lane, answer) {
            panic!("a delivery with a lane was recorded without its job: {answer:?}");
        }
    }
    for (key, answers) in &by_key {
        let first = answers
            .iter()
            .find_map(|a| match a {
                Ingested::Ignored { delivery_id } | Ingested::Queued { delivery_id, .. } => {
                    Some(*delivery_id)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{key}: no copy was recorded: {answers:?}"));
        let duplicates: Vec<_> = answers
            .iter()
            .filter(|a| matches!(a, Ingested::Duplicate { .. }))
            .collect();
        assert_eq!(duplicates.len(), 1, "{key}: {answers:?}");
        assert_eq!(
            duplicates[0],
            &Ingested::Duplicate {
                delivery_id: first,
                release_id: None
            },
            "{key}"
        );
        assert!(ids.insert(first), "{key}: id {first} given twice");
    }
    assert_eq!(ids.len(), 700);
    assert_eq!(store.deliveries_count().await.unwrap(), 700);
    let queued = store.jobs_in_state("queued").await.unwrap();
    assert_eq!(queued.len(), 120, "one job per keyed delivery with a lane");
}

#[tokio::test]
async fn tickets_at_once_for_one_commit_start_one_release() {
    let (store, _dir) = store().await;
    tickets_for_one_commit(&[store.clone(), store], "abc1234").await;
}

/// Two replicas on one store: each one's batch may find no open release and insert one, and the
/// loser's batch (on PostgreSQL, the whole transaction) fails on the unique index; every request
/// is then applied alone and joins the winner's release.
#[tokio::test]
async fn tickets_for_one_commit_at_two_replicas_start_one_release() {
    let (store, url, _dir) = store_at().await;
    let other = Store::connect(&url, false).await.unwrap();
    // Several rounds: whether the two batches meet is a matter of timing.
    for commit in ["abc1234", "bcd2345", "cde3456", "def4567", "ef05678"] {
        tickets_for_one_commit(&[store.clone(), other.clone()], commit).await;
    }
}

/// Two replicas on one store, each sent every delivery at once: batches of recorded-only CircleCI
/// deliveries (on PostgreSQL one statement, outside a transaction) meet the other replica's
/// inserts of the same keys. Each delivery lands once; one replica answers it recorded, the other
/// a duplicate of that record.
#[tokio::test]
async fn deliveries_sent_to_two_replicas_at_once_each_land_once() {
    let (store, url, _dir) = store_at().await;
    let other = Store::connect(&url, false).await.unwrap();
    let sends = (0..300).flat_map(|i| [(store.clone(), i), (other.clone(), i)]);
    let answers = futures_util::future::join_all(sends.map(|(store, i)| async move {
        let mut d = delivery(Some(format!("key-{i}")), format!("{{\"id\": \"key-{i}\"}}"));
        d.event_at = format!("2026-11-27T10:00:{:02}.{:03}Z", i / 1000, i % 1000);
        (
            i,
            store.ingest_delivery(d, "recorded", None, 5).await.unwrap(),
        )
    }))
    .await;
    let mut by_key: HashMap<usize, Vec<Ingested>> = HashMap::new();
    for (i, answer) in answers {
        by_key.entry(i).or_default().push(answer);
    }
    assert_eq!(by_key.len(), 300);
    for (key, answers) in &by_key {
        let recorded: Vec<i64> = answers
            .iter()
            .filter_map(|a| match a {
                Ingested::Ignored { delivery_id } => Some(*delivery_id),
                _ => None,
            })
            .collect();
        assert_eq!(recorded.len(), 1, "key-{key}: {answers:?}");
        assert!(
            answers.contains(&Ingested::Duplicate {
                delivery_id: recorded[0],
                release_id: None
            }),
            "key-{key}: {answers:?}"
        );
    }
}

/// 50 tickets for `commit`, sent at once, in turn to each of `stores`.
async fn tickets_for_one_commit(stores: &[Store], commit: &str) {
    let store = &stores[0];
    let release = || NewRelease {
        project: "payments-api".into(),
        env: "stg".into(),
        repo: "payments-api".into(),
        commit: commit.into(),
        issue: Some("PAY-1".into()),
    };
    let answers = futures_util::future::join_all((0..50).map(|i| {
        let store = stores[i % stores.len()].clone();
        let d = NewDelivery {
            source: "jira",
            key: Some(format!("jira-{commit}-{i}")),
            event_at: String::new(),
            event: "jira:issue_updated".into(),
            client_ip: None,
            body: "{}".into(),
        };
        async move { store.ingest_release(d, release(), 5).await.unwrap() }
    }))
    .await;
    let created: Vec<_> = answers
        .iter()
        .filter_map(|a| match a {
            Ingested::Created { release_id, .. } => Some(*release_id),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for a in &answers {
        match a {
            Ingested::Created { release_id, .. } | Ingested::Existing { release_id, .. } => {
                assert_eq!(*release_id, created[0])
            }
            other => panic!("{other:?}"),
        }
    }
    let events = store.events(created[0]).await.unwrap();
    assert_eq!(events.len(), 50, "one timeline event per ticket");
    let jobs = store.jobs_for_release(created[0]).await.unwrap();
    assert_eq!(jobs.len(), 1, "one tag job: {jobs:?}");
}

/// Commits keep coming, yet the checkpointer lets the WAL start over (SQLite only; the store turns
/// SQLite's own checkpoints off). Each start over rewrites the WAL's header with the next
/// checkpoint sequence number (bytes 12..16), read here straight from the file so that the test
/// itself checkpoints nothing. This checks the outcome, not the checkpointer's final pass under
/// the writer lock: here the passes without the lock catch up often enough on their own (also
/// with commits back to back from one rusqlite connection), while release-build rates without
/// that pass grew the WAL past 1 GB in `scripts/bench.sh` (docs/PERFORMANCE.md).
#[tokio::test]
async fn the_wal_starts_over_while_writes_keep_coming() {
    let (store, dir) = store().await;
    let Some(dir) = dir else { return };
    let wal = dir.path().join("hoist.db-wal");
    let sequence = || -> Option<u32> {
        let bytes = std::fs::read(&wal).ok()?;
        Some(u32::from_be_bytes(bytes.get(12..16)?.try_into().ok()?))
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let body = "y".repeat(1500);
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let key = format!("w{w}-{n}");
                    store
                        .ingest_delivery(delivery(Some(key), body.clone()), "recorded", None, 5)
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = BTreeSet::new();
    while seen.len() < 3 && Instant::now() < deadline {
        if let Some(s) = sequence() {
            seen.insert(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    assert!(
        seen.len() >= 3,
        "the WAL did not start over twice in 20 s of writes: sequence numbers {seen:?}, {written} deliveries"
    );
    assert_eq!(store.deliveries_count().await.unwrap(), written as i64);
}

/// A job born claimed at ingest (an idle worker loop waits for it) runs under that claim, with its
/// first attempt open, and no other worker can claim it while its lease holds. A second job in
/// the same lane is born queued behind it and is claimable only once the first is done; a build
/// job (keyed delivery) is born claimed too, through the batch writer's one-at-a-time path.
#[tokio::test]
async fn jobs_born_claimed_at_ingest_keep_their_lane_order() {
    use hoist::domain::JobSpec;
    use hoist::store::{BornClaim, ClaimedJob, Ingest};

    let (store, _dir) = store().await;
    let claim = BornClaim {
        worker: "worker-a".into(),
        lease_ms: 60_000,
    };
    let ticket = |commit: &str| claimed_ticket("stg", commit, &claim.worker);

    let Ingested::Created {
        release_id: first_release,
        claimed_job: Some(first),
        ..
    } = store.ingest(ticket("abc1234")).await.unwrap()
    else {
        panic!("the first ticket's tag job is born claimed")
    };
    let job = store.job(first).await.unwrap().unwrap();
    assert_eq!((job.state.as_str(), job.attempts), ("running", 1));
    let attempts = store.job_attempts(first).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0]["finished_at"].is_null(), "{attempts:?}");
    assert!(
        store.claim_job("worker-b", 60_000).await.unwrap().is_none(),
        "a job born claimed is not claimable while its lease holds"
    );

    // The same project and environment: the lane is busy, so the next tag job waits.
    let Ingested::Created {
        release_id: second_release,
        claimed_job: None,
        ..
    } = store.ingest(ticket("bcd2345")).await.unwrap()
    else {
        panic!("a job behind an unfinished one in its lane is born queued")
    };
    assert!(store.claim_job("worker-b", 60_000).await.unwrap().is_none());

    let born = ClaimedJob::born(
        first,
        JobSpec::CreateTag {
            release_id: first_release,
        },
        5,
        &claim,
    );
    let mut tx = store.begin().await.unwrap();
    assert!(tx.finish_job(&born, "tagged").await.unwrap());
    tx.commit().await.unwrap();
    let next = store.claim_job("worker-b", 60_000).await.unwrap().unwrap();
    assert_eq!(
        next.spec,
        JobSpec::CreateTag {
            release_id: second_release
        }
    );
    // Born queued, it had no attempt: the claim opened its first.
    let attempts = store.job_attempts(next.id).await.unwrap();
    assert_eq!(next.attempt, 1);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["attempt"], 1);
    let outcomes: Vec<_> = store
        .job_attempts(first)
        .await
        .unwrap()
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["tagged"]);

    // A build event: its job is born claimed in a lane of its own.
    let answer = store
        .ingest(Ingest::Delivery {
            delivery: delivery(Some("build-1".into()), "{}".into()),
            outcome: "build queued".into(),
            build_lane: Some("build:build-1".into()),
            max_attempts: 5,
            claim: Some(claim.clone()),
        })
        .await
        .unwrap();
    let Ingested::Queued {
        claimed_job: Some(build),
        delivery_id,
    } = answer
    else {
        panic!("a build job is born claimed: {answer:?}")
    };
    let job = store.job(build).await.unwrap().unwrap();
    assert_eq!(
        (job.kind.as_str(), job.state.as_str()),
        ("handle_build", "running")
    );
    assert_eq!(
        store.job_attempts(build).await.unwrap()[0]["attempt"],
        1,
        "delivery {delivery_id}"
    );
}

/// A ticket for `commit` in `env`, its tag job to be born claimed by `worker`.
fn claimed_ticket(env: &str, commit: &str, worker: &str) -> hoist::store::Ingest {
    hoist::store::Ingest::Release {
        delivery: NewDelivery {
            source: "jira",
            key: Some(format!("{env}-{commit}")),
            event_at: String::new(),
            event: "jira:issue_updated".into(),
            client_ip: None,
            body: "{}".into(),
        },
        release: NewRelease {
            project: "payments-api".into(),
            env: env.into(),
            repo: "payments-api".into(),
            commit: commit.into(),
            issue: Some("PAY-1".into()),
        },
        max_attempts: 5,
        claim: Some(hoist::store::BornClaim {
            worker: worker.into(),
            lease_ms: 60_000,
        }),
    }
}

/// Two replicas, each with a worker loop idle, record tickets for one project and environment at
/// the same instant: one tag job is born running, the other queued behind it. Each replica's lane
/// check reads only what is committed, so without the unique index on running jobs' lanes both
/// could start (on PostgreSQL; SQLite has one writer).
#[tokio::test]
async fn tickets_at_two_replicas_at_once_start_one_job_of_their_lane() {
    let (store, url, _dir) = store_at().await;
    let other = Store::connect(&url, false).await.unwrap();
    for round in 0..20 {
        let env = format!("env{round}");
        let (a, b) = tokio::join!(
            store.ingest(claimed_ticket(&env, "abc1234", "worker-a")),
            other.ingest(claimed_ticket(&env, "bcd2345", "worker-b")),
        );
        let mut running = 0;
        for answer in [a.unwrap(), b.unwrap()] {
            let Ingested::Created { claimed_job, .. } = answer else {
                panic!("round {round}: each ticket starts a release: {answer:?}")
            };
            running += usize::from(claimed_job.is_some());
        }
        assert_eq!(running, 1, "round {round}: one tag job runs, one waits");
    }
}

/// A worker's step and another replica start jobs of one lane at once (a build starting its
/// deploy, say): the second waits for the first's commit and is born queued, without an error.
#[tokio::test]
async fn a_job_born_running_in_a_lane_started_meanwhile_is_queued_instead() {
    use hoist::domain::JobSpec;
    use hoist::store::BornClaim;

    let (store, url, _dir) = store_at().await;
    let other = Store::connect(&url, false).await.unwrap();
    let claim = |worker: &str| BornClaim {
        worker: worker.into(),
        lease_ms: 60_000,
    };
    let spec = JobSpec::Deploy { release_id: 1 };
    let mut first = store.begin().await.unwrap();
    let (first_id, claimed) = first
        .enqueue_claimed(&spec, "deploy:1", 5, &claim("worker-a"))
        .await
        .unwrap();
    assert!(claimed);
    let second = tokio::spawn({
        let (spec, claim) = (spec.clone(), claim("worker-b"));
        async move {
            let mut tx = other.begin().await.unwrap();
            let born = tx
                .enqueue_claimed(&spec, "deploy:1", 5, &claim)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            born
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.commit().await.unwrap();
    let (second_id, claimed) = second.await.unwrap();
    assert!(!claimed, "the lane was taken when the second could look");
    assert_eq!(store.job(first_id).await.unwrap().unwrap().state, "running");
    assert_eq!(store.job(second_id).await.unwrap().unwrap().state, "queued");
}

/// A claim races a job of the same lane born running in a commit it cannot see yet: it waits on
/// `jobs_running_lane` for that commit, fails on the index, claims again, and leaves the queued
/// job alone. PostgreSQL only: SQLite has one writer, so the claim sees every commit before it.
#[tokio::test]
async fn a_claim_racing_a_job_born_running_in_its_lane_claims_nothing() {
    use hoist::domain::JobSpec;
    use hoist::store::BornClaim;

    let (store, url, _dir) = store_at().await;
    if !url.starts_with("postgres") {
        return;
    }
    let spec = JobSpec::Deploy { release_id: 1 };
    // The queued job is recorded while the born one's transaction is open, so neither sees the
    // other: the born one checked an empty lane, and the claim will find the queued one free.
    let mut queued = store.begin().await.unwrap();
    let queued_id = queued.enqueue(&spec, "deploy:1", 5, 0).await.unwrap();
    let mut born = store.begin().await.unwrap();
    let claim = BornClaim {
        worker: "worker-a".into(),
        lease_ms: 60_000,
    };
    let (born_id, claimed) = born
        .enqueue_claimed(&spec, "deploy:1", 5, &claim)
        .await
        .unwrap();
    assert!(claimed, "the born job saw no other job of its lane");
    queued.commit().await.unwrap();
    let claiming = tokio::spawn({
        let store = store.clone();
        async move { store.claim_job("worker-b", 60_000).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    born.commit().await.unwrap();
    assert!(
        claiming.await.unwrap().unwrap().is_none(),
        "the lane's job runs: nothing to claim"
    );
    assert_eq!(store.job(born_id).await.unwrap().unwrap().state, "running");
    assert_eq!(store.job(queued_id).await.unwrap().unwrap().state, "queued");
}

/// A job of a lane is not claimed while a later job of that lane runs: an earlier job that
/// failed and was retried by hand waits for the running one to end.
#[tokio::test]
async fn a_job_retried_by_hand_waits_for_the_running_job_of_its_lane() {
    use hoist::domain::JobSpec;
    use hoist::store::ClaimedJob;

    let (store, _dir) = store().await;
    let Ingested::Created {
        release_id,
        claimed_job: Some(first),
        ..
    } = store
        .ingest(claimed_ticket("stg", "abc1234", "worker-a"))
        .await
        .unwrap()
    else {
        panic!("the first ticket's tag job is born claimed")
    };
    let Ingested::Created {
        claimed_job: None, ..
    } = store
        .ingest(claimed_ticket("stg", "bcd2345", "worker-a"))
        .await
        .unwrap()
    else {
        panic!("the second waits in the lane")
    };
    let born = ClaimedJob::born(
        first,
        JobSpec::CreateTag { release_id },
        5,
        &hoist::store::BornClaim {
            worker: "worker-a".into(),
            lease_ms: 60_000,
        },
    );
    assert!(
        store
            .fail_job(&born, "Bitbucket refused", None)
            .await
            .unwrap()
    );
    let second = store.claim_job("worker-b", 60_000).await.unwrap().unwrap();
    assert_ne!(second.id, first);

    assert!(store.retry_job(first).await.unwrap());
    assert!(
        store.claim_job("worker-c", 60_000).await.unwrap().is_none(),
        "the retried job waits while a job of its lane runs"
    );
    assert!(store.finish_job(&second, "tagged").await.unwrap());
    let again = store.claim_job("worker-c", 60_000).await.unwrap().unwrap();
    assert_eq!(again.id, first);
}

/// A ticket's writes, read back field by field: the release
/// and its first event, the delivery with its outcome, a `create_tag` job that parses; a second
/// ticket for the same commit joins with its own delivery and event; the first ticket again is a
/// duplicate naming its release.
#[tokio::test]
async fn a_ticket_records_its_release_delivery_event_and_job() {
    use hoist::domain::JobSpec;

    let (store, _dir) = store().await;
    let ticket = |key: &str, issue: &str| {
        (
            NewDelivery {
                source: "jira",
                key: Some(key.into()),
                event_at: String::new(),
                event: "jira:issue_updated".into(),
                client_ip: Some("192.0.2.7".into()),
                body: format!("{{\"issue\": \"{issue}\"}}"),
            },
            NewRelease {
                project: "payments-api".into(),
                env: "stg".into(),
                repo: "acme/payments-api".into(),
                commit: "abc1234".into(),
                issue: Some(issue.into()),
            },
        )
    };
    let (d, r) = ticket("t-1", "PAY-1");
    let Ingested::Created {
        release_id,
        delivery_id,
        claimed_job: None,
    } = store.ingest_release(d, r, 7).await.unwrap()
    else {
        panic!("the first ticket starts a release")
    };
    let release = store.release(release_id).await.unwrap().unwrap();
    assert_eq!(
        (
            release.project.as_str(),
            release.env.as_str(),
            release.repo.as_str(),
            release.commit.as_str(),
            release.issue.as_deref(),
            release.status.as_str()
        ),
        (
            "payments-api",
            "stg",
            "acme/payments-api",
            "abc1234",
            Some("PAY-1"),
            "received"
        )
    );
    let delivery = store.delivery(delivery_id).await.unwrap().unwrap();
    assert_eq!(
        (
            delivery.source.as_str(),
            delivery.delivery_key.as_deref(),
            delivery.event.as_str(),
            delivery.client_ip.as_deref(),
            delivery.body.as_str(),
            delivery.outcome.as_str(),
            delivery.release_id
        ),
        (
            "jira",
            Some("t-1"),
            "jira:issue_updated",
            Some("192.0.2.7"),
            "{\"issue\": \"PAY-1\"}",
            "release started",
            Some(release_id)
        )
    );
    let job = store.claim_job("w", 60_000).await.unwrap().unwrap();
    assert_eq!(job.spec, JobSpec::CreateTag { release_id });
    assert_eq!(job.max_attempts, 7);
    let row = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(row.lane, "tag:payments-api:stg");

    let (d, r) = ticket("t-2", "PAY-2");
    let joined = store.ingest_release(d, r, 7).await.unwrap();
    let Ingested::Existing {
        release_id: same,
        delivery_id: second,
    } = joined
    else {
        panic!("a second ticket for the commit joins: {joined:?}")
    };
    assert_eq!(same, release_id);
    assert_eq!(
        store.delivery(second).await.unwrap().unwrap().outcome,
        format!("joined open release {release_id}")
    );
    let events: Vec<_> = store
        .events(release_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.step, e.message))
        .collect();
    assert_eq!(
        events,
        [
            (
                "received".to_string(),
                "ticket PAY-1 asks for abc1234 on payments-api (stg)".to_string()
            ),
            (
                "received".to_string(),
                "another request for the same commit joined this release (issue PAY-2)".to_string()
            )
        ]
    );
    assert_eq!(
        count_jobs(&store).await,
        1,
        "joining makes no second tag job"
    );

    let (d, r) = ticket("t-1", "PAY-1");
    assert_eq!(
        store.ingest_release(d, r, 7).await.unwrap(),
        Ingested::Duplicate {
            delivery_id,
            release_id: Some(release_id)
        }
    );
}

async fn count_jobs(store: &Store) -> i64 {
    store
        .job_counts()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum()
}

/// Migration 0004 put the event's time into the de-duplication key. A store upgraded across it
/// still finds a redelivery of a delivery it recorded before: the migration reads each older
/// CircleCI delivery's `happened_at` back from its stored body, and one it cannot read keeps the
/// empty time, which is what Hoist then gives a body without one.
#[tokio::test]
async fn deliveries_recorded_before_the_event_time_joined_the_key_stay_duplicates() {
    let (url, _dir) = fresh_url().await;
    {
        let pool = migrated_to(&url, 3).await;
        let old = [
            (
                "circleci",
                "old-1",
                r#"{"id": "old-1", "happened_at": "2026-11-20T10:00:00.000Z", "type": "job-completed"}"#,
            ),
            ("circleci", "old-2", "not JSON {"),
            ("circleci", "old-3", r#"{"id": "old-3", "happened_at": 17}"#),
            (
                "jira",
                "old-4",
                r#"{"happened_at": "2026-11-20T10:00:00.000Z"}"#,
            ),
        ];
        for (source, key, body) in old {
            sqlx::query(
                "INSERT INTO deliveries (source, delivery_key, event, received_at, body, outcome)
                 VALUES ($1, $2, 'old', 1, $3, 'recorded')",
            )
            .bind(source)
            .bind(key)
            .bind(body)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }

    let store = Store::connect(&url, false).await.unwrap();
    let again = |source: &'static str, key: &str, event_at: &str| NewDelivery {
        source,
        key: Some(key.into()),
        event_at: event_at.into(),
        event: "job-completed".into(),
        client_ip: None,
        body: "{}".into(),
    };
    for (i, (source, key, event_at)) in [
        ("circleci", "old-1", "2026-11-20T10:00:00.000Z"),
        ("circleci", "old-2", ""),
        ("circleci", "old-3", ""),
        ("jira", "old-4", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = store
            .ingest_delivery(again(source, key, event_at), "recorded", None, 5)
            .await
            .unwrap();
        assert_eq!(
            answer,
            Ingested::Duplicate {
                delivery_id: i as i64 + 1,
                release_id: None
            },
            "{key}"
        );
    }
    // The same id at another time is another event.
    assert!(matches!(
        store
            .ingest_delivery(
                again("circleci", "old-1", "2026-11-20T10:00:01.000Z"),
                "recorded",
                None,
                5
            )
            .await
            .unwrap(),
        Ingested::Ignored { .. }
    ));
}

/// A store that already holds two running jobs of one lane (recorded before the unique index on
/// running jobs' lanes, by replicas racing) keeps the first running and queues the others again.
#[tokio::test]
async fn running_jobs_sharing_a_lane_before_the_index_are_queued_again() {
    let (url, _dir) = fresh_url().await;
    {
        let pool = migrated_to(&url, 4).await;
        for lane in [
            "tag:payments-api:stg",
            "tag:payments-api:stg",
            "tag:payments-api:stg",
            "tag:payments-api:prod",
        ] {
            sqlx::query(
                "INSERT INTO jobs (kind, lane, payload, state, attempts, max_attempts, run_at, created_at, updated_at, claimed_by, lease_until)
                 VALUES ('handle_build', $1, '{\"kind\": \"handle_build\", \"delivery_id\": 1}', 'running', 1, 5, 1, 1, 1, 'worker-a', 9000000000000)",
            )
            .bind(lane)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }

    let store = Store::connect(&url, false).await.unwrap();
    let mut states = Vec::new();
    for id in 1..=4 {
        let job = store.job(id).await.unwrap().unwrap();
        states.push(job.state);
    }
    assert_eq!(states, ["running", "queued", "queued", "running"]);
    assert!(
        store.claim_job("worker-b", 60_000).await.unwrap().is_none(),
        "the queued ones wait for the running one of their lane"
    );
}
