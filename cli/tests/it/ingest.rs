//! The store driven directly: deliveries sent at once land exactly once each, duplicates inside
//! one batch are told apart, releases and jobs commit with their delivery, lanes hold their order
//! across replicas, migrations carry older stores forward, and on SQLite the WAL starts over while
//! writes keep coming.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hoist::core::inbound::{Action, Ingest};
use hoist::core::job::{Job, JobSpec};
use hoist::core::plan::Changes;
use hoist::domain::{
    CommitSha, DeliveryId, EnvName, JobId, JobState, NewDelivery, NewRelease, ProjectName,
    ReleaseId, Source,
};
use hoist::store::{Ingested, Options, Store};

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

/// The store at `url`, its schema migrated up to `schema` (`None`: the newest).
async fn open(url: &str, schema: Option<i64>) -> Store {
    Store::connect(&Options {
        url: url.into(),
        fsync: false,
        max_attempts: 5,
        schema,
        // Several handles on one SQLite file stand for replicas here: none takes it over.
        serve: false,
    })
    .await
    .unwrap()
}

/// The store of one test, its URL and, on SQLite, the directory that holds it.
async fn store_at() -> (Store, String, Option<tempfile::TempDir>) {
    let (url, dir) = fresh_url().await;
    (open(&url, None).await, url, dir)
}

async fn store() -> (Store, Option<tempfile::TempDir>) {
    let (store, _, dir) = store_at().await;
    (store, dir)
}

fn delivery(source: Source, key: Option<String>, body: String) -> NewDelivery {
    NewDelivery {
        source,
        key,
        event_at: String::new(),
        event: "job-completed".into(),
        client_ip: Some("127.0.0.1".parse().unwrap()),
        body,
    }
}

/// A CircleCI delivery: recorded only, or with a build job.
fn build(key: Option<String>, body: String, job: bool) -> Ingest {
    let outcome = "recorded".to_string();
    Ingest {
        delivery: delivery(Source::Circleci, key, body),
        action: if job {
            Action::HandleBuild { outcome }
        } else {
            Action::Record { outcome }
        },
    }
}

fn new_release(env: &str, commit: &str, issue: &str) -> NewRelease {
    NewRelease {
        project: ProjectName::parse("payments-api").unwrap(),
        env: EnvName::parse(env).unwrap(),
        repo: "payments-api".into(),
        commit: CommitSha::parse(commit).unwrap(),
        issue: Some(issue.into()),
    }
}

/// A ticket delivered under `key`, for `commit` in `env`.
fn ticket(key: &str, env: &str, commit: &str, issue: &str) -> Ingest {
    let mut d = delivery(
        Source::Jira,
        Some(key.into()),
        format!("{{\"issue\": \"{issue}\"}}"),
    );
    d.event = "jira:issue_updated".into();
    d.client_ip = Some("192.0.2.7".parse().unwrap());
    Ingest {
        delivery: d,
        action: Action::StartRelease(new_release(env, commit, issue)),
    }
}

#[tokio::test]
async fn deliveries_sent_at_once_each_land_once() {
    let (store, _dir) = store().await;
    // 600 distinct keys, each sent twice at the same moment, 100 without a key, and every
    // fifth keyed one with a job: batches mix all of them.
    let mut sends = Vec::new();
    for i in 0..600 {
        for _ in 0..2 {
            sends.push((Some(format!("key-{i}")), i % 5 == 0));
        }
    }
    for _ in 0..100 {
        sends.push((None, false));
    }
    let answers = futures_util::future::join_all(sends.iter().map(|(key, job)| {
        let store = store.clone();
        let body = format!("{{\"id\": {key:?}, \"pad\": \"{}\"}}", "x".repeat(1500));
        async move { store.ingest(build(key.clone(), body, *job)).await.unwrap() }
    }))
    .await;

    let mut by_key: HashMap<&str, Vec<Ingested>> = HashMap::new();
    let mut ids = BTreeSet::new();
    for ((key, job), answer) in sends.iter().zip(&answers) {
        match (key, answer) {
            (None, Ingested::Recorded { delivery }) => assert!(ids.insert(*delivery)),
            (None, other) => panic!("a keyless delivery answered {other:?}"),
            (Some(k), a) => by_key.entry(k).or_default().push(*a),
        }
        if let (Some(_), true, Ingested::Recorded { .. }) = (key, job, answer) {
            panic!("a build was recorded without its job: {answer:?}");
        }
    }
    for (key, answers) in &by_key {
        let first = answers
            .iter()
            .find_map(|a| match a {
                Ingested::Recorded { delivery } | Ingested::Queued { delivery } => Some(*delivery),
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
                delivery: first,
                release: None
            },
            "{key}"
        );
        assert!(ids.insert(first), "{key}: id {first} given twice");
    }
    assert_eq!(ids.len(), 700);
    assert_eq!(store.deliveries_count().await.unwrap(), 700);
    let queued = store.jobs_in_state(JobState::Queued).await.unwrap();
    assert_eq!(queued.len(), 120, "one job per build delivery");
    let lanes: BTreeSet<&str> = queued.iter().map(|j| j.lane.as_str()).collect();
    assert_eq!(lanes.len(), 120, "each build in a lane of its own");
}

#[tokio::test]
async fn tickets_at_once_for_one_commit_start_one_release() {
    let (store, _dir) = store().await;
    tickets_for_one_commit(&[store.clone(), store], "abc1234").await;
}

/// Two replicas on one store: each one's batch may find no open release and try to insert one;
/// the open-release index lets one insert win, and every other ticket joins that release.
#[tokio::test]
async fn tickets_for_one_commit_at_two_replicas_start_one_release() {
    let (store, url, _dir) = store_at().await;
    let other = open(&url, None).await;
    // Several rounds: whether the two batches meet is a matter of timing.
    for commit in ["abc1234", "bcd2345", "cde3456", "def4567", "ef05678"] {
        tickets_for_one_commit(&[store.clone(), other.clone()], commit).await;
    }
}

/// Two replicas on one store, each sent every delivery at once: one replica's multi-row inserts
/// meet the other's of the same keys. Each delivery lands once; one replica answers it recorded,
/// the other a duplicate of that record.
#[tokio::test]
async fn deliveries_sent_to_two_replicas_at_once_each_land_once() {
    let (store, url, _dir) = store_at().await;
    let other = open(&url, None).await;
    let sends = (0..300).flat_map(|i| [(store.clone(), i), (other.clone(), i)]);
    let answers = futures_util::future::join_all(sends.map(|(store, i)| async move {
        let mut plan = build(
            Some(format!("key-{i}")),
            format!("{{\"id\": \"key-{i}\"}}"),
            false,
        );
        plan.delivery.event_at = format!("2026-11-27T10:00:{:02}.{:03}Z", i / 1000, i % 1000);
        (i, store.ingest(plan).await.unwrap())
    }))
    .await;
    let mut by_key: HashMap<usize, Vec<Ingested>> = HashMap::new();
    for (i, answer) in answers {
        by_key.entry(i).or_default().push(answer);
    }
    assert_eq!(by_key.len(), 300);
    for (key, answers) in &by_key {
        let recorded: Vec<DeliveryId> = answers
            .iter()
            .filter_map(|a| match a {
                Ingested::Recorded { delivery } => Some(*delivery),
                _ => None,
            })
            .collect();
        assert_eq!(recorded.len(), 1, "key-{key}: {answers:?}");
        assert!(
            answers.contains(&Ingested::Duplicate {
                delivery: recorded[0],
                release: None
            }),
            "key-{key}: {answers:?}"
        );
    }
}

/// 50 tickets for `commit`, sent at once, in turn to each of `stores`.
async fn tickets_for_one_commit(stores: &[Store], commit: &str) {
    let store = &stores[0];
    let answers = futures_util::future::join_all((0..50).map(|i| {
        let store = stores[i % stores.len()].clone();
        let plan = ticket(&format!("jira-{commit}-{i}"), "stg", commit, "PAY-1");
        async move { store.ingest(plan).await.unwrap() }
    }))
    .await;
    let created: Vec<_> = answers
        .iter()
        .filter_map(|a| match a {
            Ingested::Created { release, .. } => Some(*release),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for a in &answers {
        match a {
            Ingested::Created { release, .. } | Ingested::Joined { release, .. } => {
                assert_eq!(*release, created[0])
            }
            other => panic!("{other:?}"),
        }
    }
    let events = store.events(created[0]).await.unwrap();
    assert_eq!(events.len(), 50, "one timeline event per ticket");
    let jobs = store.jobs_for_release(created[0]).await.unwrap();
    assert_eq!(jobs.len(), 1, "one tag job: {jobs:?}");
}

/// Commits keep coming, yet the WAL starts over (SQLite only). Each start over rewrites the WAL's
/// header with the next checkpoint sequence number (bytes 12..16), read here straight from the
/// file so that the test itself checkpoints nothing.
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
                        .ingest(build(Some(key), body.clone(), false))
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

/// Jobs of one lane run one at a time in the order they were queued: the second tag job of a
/// project and environment is claimable only once the first is done, while another lane's job
/// runs beside them.
#[tokio::test]
async fn jobs_of_one_lane_are_claimed_in_order_one_at_a_time() {
    let (store, _dir) = store().await;
    let Ingested::Created { release: first, .. } = store
        .ingest(ticket("t-1", "stg", "abc1234", "PAY-1"))
        .await
        .unwrap()
    else {
        panic!("a release")
    };
    let Ingested::Created {
        release: second, ..
    } = store
        .ingest(ticket("t-2", "stg", "bcd2345", "PAY-2"))
        .await
        .unwrap()
    else {
        panic!("a release")
    };
    let Ingested::Created { release: other, .. } = store
        .ingest(ticket("t-3", "qa", "cde3456", "PAY-3"))
        .await
        .unwrap()
    else {
        panic!("a release")
    };
    let a = store.claim_job("worker-a", 60_000).await.unwrap().unwrap();
    assert_eq!(a.spec, JobSpec::CreateTag { release_id: first });
    assert_eq!(
        (a.attempt, store.job_attempts(a.id).await.unwrap().len()),
        (1, 1)
    );
    let b = store.claim_job("worker-b", 60_000).await.unwrap().unwrap();
    assert_eq!(
        b.spec,
        JobSpec::CreateTag { release_id: other },
        "another lane runs beside"
    );
    assert!(
        store.claim_job("worker-b", 60_000).await.unwrap().is_none(),
        "the lane's second job waits for its first"
    );
    assert!(
        store
            .finish_job(&a, "tagged", Changes::default())
            .await
            .unwrap()
    );
    let next = store.claim_job("worker-b", 60_000).await.unwrap().unwrap();
    assert_eq!(next.spec, JobSpec::CreateTag { release_id: second });
    let outcomes: Vec<_> = store
        .job_attempts(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, [Some("tagged".to_string())]);
    // A worker that lost its claim writes nothing.
    let mut stale = b.clone();
    stale.worker = "worker-z".into();
    assert!(
        !store
            .finish_job(&stale, "done", Changes::default())
            .await
            .unwrap()
    );
    assert_eq!(
        store.job(b.id).await.unwrap().unwrap().state,
        JobState::Running
    );
}

/// Two replicas claim at the same instant from one lane with two queued jobs: one job runs, the
/// other waits. PostgreSQL's claims read committed rows; the unique index on running jobs' lanes
/// settles the instant where both would pass (SQLite has one writer).
#[tokio::test]
async fn claims_at_two_replicas_at_once_start_one_job_of_a_lane() {
    let (store, url, _dir) = store_at().await;
    let other = open(&url, None).await;
    for round in 0..5 {
        let commits = [format!("abc{round}234"), format!("bcd{round}345")];
        for (i, commit) in commits.iter().enumerate() {
            let plan = ticket(&format!("r{round}-{i}"), "stg", commit, "PAY-1");
            store.ingest(plan).await.unwrap();
        }
        let (a, b) = tokio::join!(
            store.claim_job("worker-a", 60_000),
            other.claim_job("worker-b", 60_000)
        );
        let claimed: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(claimed.len(), 1, "round {round}: {claimed:?}");
        assert!(
            store
                .finish_job(&claimed[0], "done", Changes::default())
                .await
                .unwrap()
        );
        let next = other.claim_job("worker-b", 60_000).await.unwrap().unwrap();
        assert!(
            other
                .finish_job(&next, "done", Changes::default())
                .await
                .unwrap()
        );
    }
}

/// A job of a lane is not claimed while a later job of that lane runs: an earlier job that
/// failed and was retried by hand waits for the running one to end.
#[tokio::test]
async fn a_job_retried_by_hand_waits_for_the_running_job_of_its_lane() {
    let (store, _dir) = store().await;
    store
        .ingest(ticket("t-1", "stg", "abc1234", "PAY-1"))
        .await
        .unwrap();
    store
        .ingest(ticket("t-2", "stg", "bcd2345", "PAY-2"))
        .await
        .unwrap();
    let first = store.claim_job("worker-a", 60_000).await.unwrap().unwrap();
    let failed = Changes::default().release(
        first.spec.release().unwrap(),
        hoist::core::plan::ReleaseChange::Failed {
            error: "tagging failed: Bitbucket refused".into(),
        },
    );
    assert!(
        store
            .give_up(&first, "Bitbucket refused", failed)
            .await
            .unwrap()
    );
    let second = store.claim_job("worker-b", 60_000).await.unwrap().unwrap();
    assert_ne!(second.id, first.id);

    let retried = hoist::core::failure::retried;
    assert!(store.retry_job(first.id, retried).await.unwrap());
    assert!(
        store.claim_job("worker-c", 60_000).await.unwrap().is_none(),
        "the retried job waits while a job of its lane runs"
    );
    assert!(
        store
            .finish_job(&second, "tagged", Changes::default())
            .await
            .unwrap()
    );
    let again = store.claim_job("worker-c", 60_000).await.unwrap().unwrap();
    assert_eq!(again.id, first.id);
    let release = store
        .release(first.spec.release().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(release.status.as_str(), "received", "reopened at its step");
    assert!(
        !store.retry_job(again.id, retried).await.unwrap(),
        "not failed"
    );
}

/// A ticket's writes, read back field by field: the release and its first event, the delivery
/// with its outcome, a `create_tag` job that parses; a second ticket for the same commit joins
/// with its own delivery and event; the first ticket again is a duplicate naming its release.
#[tokio::test]
async fn a_ticket_records_its_release_delivery_event_and_job() {
    let (store, _dir) = store().await;
    let Ingested::Created { release, delivery } = store
        .ingest(ticket("t-1", "stg", "abc1234", "PAY-1"))
        .await
        .unwrap()
    else {
        panic!("the first ticket starts a release")
    };
    let r = store.release(release).await.unwrap().unwrap();
    assert_eq!(
        (
            r.project.as_str(),
            r.env.as_str(),
            r.repo.as_str(),
            r.commit.as_str(),
            r.issue.as_deref(),
            r.status.as_str(),
            r.tag_reused,
        ),
        (
            "payments-api",
            "stg",
            "payments-api",
            "abc1234",
            Some("PAY-1"),
            "received",
            false
        )
    );
    let d = store.delivery(delivery).await.unwrap().unwrap();
    assert_eq!(
        (
            d.source,
            d.key.as_deref(),
            d.event.as_str(),
            d.client_ip.as_deref(),
            d.body.as_str(),
            d.outcome.as_str(),
            d.release
        ),
        (
            Source::Jira,
            Some("t-1"),
            "jira:issue_updated",
            Some("192.0.2.7"),
            "{\"issue\": \"PAY-1\"}",
            "release started",
            Some(release)
        )
    );
    assert!(
        (d.received_at - hoist::domain::now_ms()).abs() < 60_000,
        "a time in ms"
    );
    let job = store.claim_job("w", 60_000).await.unwrap().unwrap();
    assert_eq!(
        job.spec,
        JobSpec::CreateTag {
            release_id: release
        }
    );
    assert_eq!(job.max_attempts, 5);
    assert_eq!(
        store.job(job.id).await.unwrap().unwrap().lane,
        "tag:payments-api:stg"
    );

    let joined = store
        .ingest(ticket("t-2", "stg", "abc1234", "PAY-2"))
        .await
        .unwrap();
    let Ingested::Joined {
        release: same,
        delivery: second,
    } = joined
    else {
        panic!("a second ticket for the commit joins: {joined:?}")
    };
    assert_eq!(same, release);
    assert_eq!(
        store.delivery(second).await.unwrap().unwrap().outcome,
        format!("joined open release {release}")
    );
    let events: Vec<_> = store
        .events(release)
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
    assert_eq!(
        store
            .ingest(ticket("t-1", "stg", "abc1234", "PAY-1"))
            .await
            .unwrap(),
        Ingested::Duplicate {
            delivery,
            release: Some(release)
        }
    );
}

/// A plan's changes commit with the job that made them, or not at all: a release change that no
/// longer applies (the release moved on meanwhile) writes nothing of the plan and leaves the job
/// claimed, so its next attempt decides again.
#[tokio::test]
async fn a_plan_made_on_a_stale_release_writes_nothing() {
    use hoist::core::plan::ReleaseChange;
    let (store, _dir) = store().await;
    let Ingested::Created { release, .. } = store
        .ingest(ticket("t-1", "stg", "abc1234", "PAY-1"))
        .await
        .unwrap()
    else {
        panic!("a release")
    };
    let job = store.claim_job("w", 60_000).await.unwrap().unwrap();
    let stale = Changes::default()
        .release(release, ReleaseChange::DeployTriggered { event_id: None })
        .event(release, "deploy_triggered", "never".into())
        .job(Job::deploy(release));
    let err = store.finish_job(&job, "done", stale).await.unwrap_err();
    assert!(matches!(err, hoist::store::StoreError::Stale(..)), "{err}");
    assert_eq!(
        store.events(release).await.unwrap().len(),
        1,
        "no event written"
    );
    assert_eq!(count_jobs(&store).await, 1, "no job queued");
    assert_eq!(
        store.job(job.id).await.unwrap().unwrap().state,
        JobState::Running
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
        let old = open(&url, Some(3)).await;
        for (source, key, body) in [
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
        ] {
            old.execute_sql(&format!(
                "INSERT INTO deliveries (source, delivery_key, event, received_at, body, outcome)
                 VALUES ('{source}', '{key}', 'old', 1, '{body}', 'recorded')"
            ))
            .await
            .unwrap();
        }
    }

    let store = open(&url, None).await;
    let again = |source: Source, key: &str, event_at: &str| {
        let mut plan = build(Some(key.into()), "{}".into(), false);
        plan.delivery.source = source;
        plan.delivery.event_at = event_at.into();
        plan
    };
    for (i, (source, key, event_at)) in [
        (Source::Circleci, "old-1", "2026-11-20T10:00:00.000Z"),
        (Source::Circleci, "old-2", ""),
        (Source::Circleci, "old-3", ""),
        (Source::Jira, "old-4", ""),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            store.ingest(again(source, key, event_at)).await.unwrap(),
            Ingested::Duplicate {
                delivery: DeliveryId(i as i64 + 1),
                release: None
            },
            "{key}"
        );
    }
    // The same id at another time is another event.
    assert!(matches!(
        store
            .ingest(again(Source::Circleci, "old-1", "2026-11-20T10:00:01.000Z"))
            .await
            .unwrap(),
        Ingested::Recorded { .. }
    ));
    // The older rows read back with their times (PostgreSQL's moved to timestamptz).
    let old = store.delivery(DeliveryId(1)).await.unwrap().unwrap();
    assert_eq!(old.received_at, 1);
}

/// A store that already holds two running jobs of one lane (recorded before the unique index on
/// running jobs' lanes, by replicas racing) keeps the first running and queues the others again.
#[tokio::test]
async fn running_jobs_sharing_a_lane_before_the_index_are_queued_again() {
    let (url, _dir) = fresh_url().await;
    {
        let old = open(&url, Some(4)).await;
        for lane in [
            "tag:payments-api:stg",
            "tag:payments-api:stg",
            "tag:payments-api:stg",
            "tag:payments-api:prod",
        ] {
            old.execute_sql(&format!(
                "INSERT INTO jobs (kind, lane, payload, state, attempts, max_attempts, run_at, created_at, updated_at, claimed_by, lease_until)
                 VALUES ('handle_build', '{lane}', '{{\"type\": \"handle_build\", \"delivery_id\": 1}}', 'running', 1, 5, 1, 1, 1, 'worker-a', 9000000000000)"
            ))
            .await
            .unwrap();
        }
    }

    let store = open(&url, None).await;
    let mut states = Vec::new();
    for id in 1..=4 {
        states.push(store.job(JobId(id)).await.unwrap().unwrap().state);
    }
    use JobState::{Queued, Running};
    assert_eq!(states, [Running, Queued, Queued, Running]);
    assert!(
        store.claim_job("worker-b", 60_000).await.unwrap().is_none(),
        "the queued ones wait for the running one of their lane"
    );
}

/// A store an earlier Hoist made recorded its migrations in sqlx's table: those count as applied,
/// and only the newer ones run, once.
#[tokio::test]
async fn a_store_migrated_by_sqlx_is_carried_forward() {
    let (url, _dir) = fresh_url().await;
    {
        let old = open(&url, Some(5)).await;
        old.execute_sql("DROP TABLE hoist_migrations")
            .await
            .unwrap();
        old.execute_sql(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
                 installed_on TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
                 checksum BYTEA NOT NULL DEFAULT '', execution_time BIGINT NOT NULL DEFAULT 0)"
                .replace("TIMESTAMPTZ", if url.starts_with("sqlite") { "TEXT" } else { "TIMESTAMPTZ" })
                .replace("BYTEA", if url.starts_with("sqlite") { "BLOB" } else { "BYTEA" })
                .as_str(),
        )
        .await
        .unwrap();
        for v in 1..=5 {
            old.execute_sql(&format!(
                "INSERT INTO _sqlx_migrations (version, description, success) VALUES ({v}, 'm{v}', TRUE)"
            ))
            .await
            .unwrap();
        }
        old.execute_sql(
            "INSERT INTO releases (project, env, repo, commit_sha, issue, status, is_open, received_at, updated_at)
             VALUES ('payments-api', 'stg', 'payments-api', 'abc1234', 'PAY-1', 'received', 1, 1, 1)",
        )
        .await
        .unwrap();
    }
    let store = open(&url, None).await;
    let versions = store
        .query_i64("SELECT COUNT(*) AS n FROM hoist_migrations")
        .await
        .unwrap();
    assert_eq!(versions, 10, "five adopted, the sixth to the tenth applied");
    let r = store.release(ReleaseId(1)).await.unwrap().unwrap();
    assert_eq!((r.issue.as_deref(), r.received_at), (Some("PAY-1"), 1));
    // The open release still holds its commit: a ticket for it joins.
    let joined = store
        .ingest(ticket("t-2", "stg", "abc1234", "PAY-2"))
        .await
        .unwrap();
    assert!(
        matches!(joined, Ingested::Joined { release, .. } if release == r.id),
        "{joined:?}"
    );
    // Opening again changes nothing.
    drop(store);
    let again = open(&url, None).await;
    assert_eq!(
        again
            .query_i64("SELECT COUNT(*) AS n FROM hoist_migrations")
            .await
            .unwrap(),
        10
    );
}
