//! SPEC 4.1 and 11 against real `hoist serve` processes: a configuration file as users write it,
//! kill -9 with releases in flight, two replicas on one store, concurrent redeliveries.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hoist_cli::stack::{REPO, StackOptions};
use hoist_sim::Fault;

use crate::process::{Hoist, JIRA_SECRET, Sims, eventually, free_port};
use crate::util::{count, stack_with, store_url};

async fn store_for(dir: &std::path::Path) -> String {
    store_url()
        .await
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("hoist.db").display()))
}

/// Releases as the API lists them: id -> (status, tag).
async fn releases(h: &Hoist) -> HashMap<i64, (String, Option<String>)> {
    let v: serde_json::Value = reqwest::get(format!("{}/api/releases?limit=500", h.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["tag"].as_str().map(String::from),
                ),
            )
        })
        .collect()
}

fn family_tags(sims: &Sims) -> Vec<String> {
    sims.bitbucket
        .tags(REPO)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("stg"))
        .collect()
}

fn consecutive(n: usize) -> BTreeSet<String> {
    (1..=n).map(|p| format!("stg0.0.{p}")).collect()
}

#[tokio::test]
async fn serve_with_a_spec_configuration_tags_automation_and_native_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let config = sims.config_toml(&listen, &store_for(dir.path()).await, 30);
    let h = Hoist::start(dir.path(), "serve", &config, &listen).await;

    let a = sims.commit("automation");
    let (status, body) = h.assign(&sims, "PAY-1", &a).await;
    assert_eq!(status, 202, "{body}");

    let n = sims.commit("native");
    let fields = serde_json::json!({"customfield_10050": REPO, "customfield_10051": n});
    let native = hoist_sim::jira::issue_updated_assignee("PAY-2", fields, Some("Jess"));
    let (status, body2) = sims
        .jira
        .send_native(
            &format!("{}/hooks/jira", h.url),
            Some(JIRA_SECRET),
            &native,
            "wh-serve-1",
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body2}");

    assert!(
        eventually(Duration::from_secs(20), async || releases(&h)
            .await
            .values()
            .all(|(_, t)| t.is_some()))
        .await
    );
    let tags = sims.bitbucket.tags(REPO);
    assert!(
        tags.contains(&("stg0.0.1".to_string(), a.clone()))
            || tags.contains(&("stg0.0.2".to_string(), a.clone()))
    );
    assert_eq!(
        family_tags(&sims).into_iter().collect::<BTreeSet<_>>(),
        consecutive(2)
    );
    let r = h.release(body["release"].as_i64().unwrap()).await;
    assert_eq!(r["issue"], "PAY-1");
    assert_eq!(r["commit"], a.as_str());
}

#[tokio::test]
async fn kill_9_with_releases_in_flight_loses_nothing_and_tags_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    // Builds take long enough that none is sent while the process is down (the simulated
    // CircleCI does not resend a webhook that found no server).
    let _ci = sims.circleci(&url, Duration::from_millis(3000));
    let config = sims.config_toml(&listen, &store_for(dir.path()).await, 2);
    let mut h = Hoist::start(dir.path(), "before", &config, &listen).await;

    // Slow Bitbucket so that tag jobs are mid-call when the process dies.
    sims.bitbucket
        .faults()
        .push(Fault::Delay(Duration::from_millis(150)), 200);
    let commits: Vec<String> = (0..10).map(|i| sims.commit(&format!("c{i}"))).collect();
    let mut ids = Vec::new();
    for (i, c) in commits.iter().enumerate() {
        let (status, body) = h.assign(&sims, &format!("PAY-{i}"), c).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["release"].as_i64().unwrap());
    }
    // About two releases are tagged by then, and the third is mid-call.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.kill9();
    let tagged_before = family_tags(&sims).len();

    let restarted = Instant::now();
    let h = Hoist::start(dir.path(), "after", &config, &listen).await;
    let ready = restarted.elapsed();
    let all_tagged = eventually(Duration::from_secs(30), async || {
        let r = releases(&h).await;
        ids.iter()
            .all(|id| r.get(id).is_some_and(|(_, t)| t.is_some()))
    })
    .await;
    let tagged_after = restarted.elapsed();
    assert!(
        all_tagged,
        "not every release was tagged after the restart: {:?}",
        releases(&h).await
    );
    let all_deployed = eventually(Duration::from_secs(30), async || {
        let r = releases(&h).await;
        ids.iter()
            .all(|id| r.get(id).is_some_and(|(s, _)| s == "deployed"))
    })
    .await;
    assert!(
        all_deployed,
        "not every release deployed: {:?}",
        releases(&h).await
    );
    println!(
        "kill -9 with {} of 10 tags made: ready again in {ready:?}, every release tagged {tagged_after:?} after restart, deployed {:?} after restart",
        tagged_before,
        restarted.elapsed()
    );

    // No tag twice, none lost: ten consecutive versions on ten distinct commits.
    let tags = sims.bitbucket.tags(REPO);
    let family: Vec<_> = tags.iter().filter(|(n, _)| n.starts_with("stg")).collect();
    assert_eq!(
        family
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<BTreeSet<_>>(),
        consecutive(10)
    );
    assert_eq!(
        family
            .iter()
            .map(|(_, h)| h.clone())
            .collect::<BTreeSet<_>>(),
        commits.iter().cloned().collect()
    );
    // Each deploy triggered once.
    let triggers = sims.gate.triggers();
    let triggered: BTreeSet<String> = triggers
        .iter()
        .map(|t| t.parameters["tag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(triggers.len(), 10, "{triggers:?}");
    assert_eq!(triggered, consecutive(10));
}

/// Two replicas on one PostgreSQL store. (On SQLite a second server refuses to start: below.)
#[tokio::test]
async fn two_replicas_share_the_work_and_one_killed_midway_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let Some(store) = store_url().await else {
        println!("skipped: two replicas need PostgreSQL (HOIST_TEST_PG)");
        return;
    };
    let (la, lb) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut a = Hoist::start(dir.path(), "a", &sims.config_toml(&la, &store, 2), &la).await;
    let b = Hoist::start(dir.path(), "b", &sims.config_toml(&lb, &store, 2), &lb).await;
    let _ci = sims.circleci(&b.url, Duration::from_millis(300));

    sims.bitbucket
        .faults()
        .push(Fault::Delay(Duration::from_millis(100)), 300);
    let commits: Vec<String> = (0..12).map(|i| sims.commit(&format!("c{i}"))).collect();
    let mut ids = Vec::new();
    for (i, c) in commits.iter().enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        let (status, body) = replica.assign(&sims, &format!("PAY-{i}"), c).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["release"].as_i64().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.kill9();
    let killed = Instant::now();
    let done = eventually(Duration::from_secs(40), async || {
        let r = releases(&b).await;
        ids.iter()
            .all(|id| r.get(id).is_some_and(|(s, _)| s == "deployed"))
    })
    .await;
    assert!(done, "replica b did not finish: {:?}", releases(&b).await);
    println!(
        "replica a killed; b finished every release {:?} later",
        killed.elapsed()
    );
    let family: BTreeSet<String> = family_tags(&sims).into_iter().collect();
    assert_eq!(family, consecutive(12));
    let triggers = sims.gate.triggers();
    assert_eq!(
        triggers.len(),
        12,
        "each deploy triggered once: {triggers:?}"
    );
}

/// SQLite is one process's: a second `hoist serve` on the file refuses to start, naming the
/// first; commands that read keep working beside it. Killed with -9, the first leaves its jobs
/// claimed for a minute (`lease_secs = 60`), yet the next one to start takes them over at once.
#[tokio::test]
async fn one_server_per_sqlite_file_and_a_restart_takes_over_at_once() {
    if store_url().await.is_some() {
        println!("skipped: SQLite only");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let db = dir.path().join("hoist.db");
    let store = format!("sqlite://{}", db.display());
    let listen = format!("127.0.0.1:{}", free_port());
    let config = sims.config_toml(&listen, &store, 60);
    let mut first = Hoist::start(dir.path(), "first", &config, &listen).await;

    let other = format!("127.0.0.1:{}", free_port());
    let path = dir.path().join("second.toml");
    std::fs::write(&path, sims.config_toml(&other, &store, 60)).unwrap();
    let second = crate::process::hoist_cmd(&path)
        .arg("serve")
        .output()
        .expect("run a second hoist serve");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "a second server started: {stderr}"
    );
    let pid = first.child.id();
    assert!(
        stderr.contains(&format!("is in use by pid {pid}")) && stderr.contains("hoist"),
        "{stderr}"
    );
    let read = crate::process::hoist_cmd(&path)
        .args(["releases", "--json"])
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );

    // Bitbucket answers slowly: tag jobs are mid-call when the process dies.
    let _ci = sims.circleci(&first.url, Duration::from_millis(200));
    sims.bitbucket
        .faults()
        .push(Fault::Delay(Duration::from_millis(400)), 40);
    let mut ids = Vec::new();
    for i in 0..3 {
        let c = sims.commit(&format!("c{i}"));
        let (status, body) = first.assign(&sims, &format!("PAY-{i}"), &c).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["release"].as_i64().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.kill9();
    let tagged_before = family_tags(&sims).len();
    let after = Hoist::start(dir.path(), "after", &config, &listen).await;
    let ready = Instant::now();
    let moving = eventually(Duration::from_secs(30), async || {
        family_tags(&sims).len() > tagged_before
    })
    .await;
    let first_move = ready.elapsed();
    assert!(moving, "nothing moved after the restart");
    let moved = eventually(Duration::from_secs(30), async || {
        let r = releases(&after).await;
        ids.iter()
            .all(|id| r.get(id).is_some_and(|(s, _)| s == "deployed"))
    })
    .await;
    let took = ready.elapsed();
    assert!(moved, "{:?}", releases(&after).await);
    println!(
        "restarted on SQLite ({tagged_before} of 3 tagged before the kill): the next tag {first_move:?} after /healthz, every release deployed {took:?} after"
    );
    assert!(
        first_move < Duration::from_secs(20),
        "waited out the 60 s lease: {first_move:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("after.log")).unwrap();
    assert!(
        log.contains("took over the jobs a previous process had claimed"),
        "{log}"
    );
}

#[tokio::test]
async fn ten_concurrent_copies_of_one_delivery_make_one_release_and_one_deploy() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |c| {
            c.sources.jira.secret =
                Some(hoist::config::SecretRef::Value("stack-jira-secret".into()));
        },
    )
    .await;
    let commit = s.commit("x");
    // Jira: the same webhook delivery (same identifier) ten times at once.
    let fields = serde_json::json!({"customfield_10050": REPO, "customfield_10051": commit});
    let native = hoist_sim::jira::issue_updated_assignee("PAY-50", fields, Some("Jess"));
    let url = format!("{}/hooks/jira", s.url);
    let secret = "stack-jira-secret";
    let answers = futures_util::future::join_all(
        (0..10).map(|_| s.jira.send_native(&url, Some(secret), &native, "wh-dup-1")),
    )
    .await;
    let answers: Vec<(u16, serde_json::Value)> = answers.into_iter().map(Result::unwrap).collect();
    let ids: BTreeSet<i64> = answers
        .iter()
        .map(|(_, b)| b["release"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 202).count(),
        1,
        "{answers:?}"
    );
    // Automation bodies (no delivery id) for the same commit join the open release.
    let token = s.options.jira_token.clone();
    let body = hoist_sim::jira::automation_body(REPO, &commit, "PAY-50", None);
    let joined = futures_util::future::join_all((0..10).map(|_| {
        s.jira
            .send_automation(&url, hoist_cli::stack::JIRA_TOKEN_HEADER, &token, &body)
    }))
    .await;
    for j in joined {
        let (status, b) = j.unwrap();
        assert_eq!(status, 200, "{b}");
        assert!(ids.contains(&b["release"].as_i64().unwrap()));
    }
    let id = *ids.iter().next().unwrap();
    s.wait_release(id, Duration::from_secs(20), |r| r.tag.is_some())
        .await
        .unwrap();
    // CircleCI: one event delivered ten times at once.
    let (kind, payload) = s.circleci.build_events(None, &commit, "success").remove(0);
    let bytes = payload.to_string().into_bytes();
    let sent =
        futures_util::future::join_all((0..10).map(|_| s.circleci.send_raw(&kind, bytes.clone())))
            .await;
    let statuses: Vec<u16> = sent.into_iter().map(|r| r.unwrap().status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 200),
        "{statuses:?}"
    );
    s.settle(Duration::from_secs(20)).await.unwrap();
    assert_eq!(count(&s, "releases").await, 1);
    assert_eq!(s.gate.triggers().len(), 1);
    assert_eq!(s.bitbucket.tags(REPO).len(), 1);
    s.finish().await.unwrap();
}

/// The options of a store at `url`.
fn options(url: String) -> hoist::store::Options {
    hoist::store::Options {
        url,
        fsync: false,
        max_attempts: 5,
        schema: None,
        serve: true,
    }
}

/// A tag job for release 1, as the queue holds it.
fn a_job() -> hoist::core::plan::Changes {
    let project = hoist::domain::ProjectName::parse("test").unwrap();
    let env = hoist::domain::EnvName::parse("stg").unwrap();
    let job = hoist::core::job::Job::create_tag(1.into(), &project, &env);
    hoist::core::plan::Changes::default().job(job)
}

/// A store with one job, claimed by `worker-a` with a 1 ms lease: answers the store (and the
/// folder of its SQLite file, kept while the store is used), the job's id and that claim.
async fn one_claimed_job() -> (
    tempfile::TempDir,
    hoist::store::Store,
    hoist::domain::JobId,
    hoist::store::ClaimedJob,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = hoist::store::Store::connect(&options(store_for(dir.path()).await))
        .await
        .unwrap();
    let id = store.apply(a_job()).await.unwrap()[0];
    let first = store.claim_job("worker-a", 1).await.unwrap().unwrap();
    (dir, store, id, first)
}

/// A worker that went silent past its lease loses the job to another: the first one's late finish
/// or retry changes nothing and its attempt is closed as `lost lease`; the second one's counts.
#[tokio::test]
async fn a_late_finish_after_another_worker_took_over_changes_nothing() {
    use hoist::core::plan::Changes;
    use hoist::domain::JobState;

    let (_dir, store, id, first) = one_claimed_job().await;
    assert_eq!((first.id, first.attempt), (id, 1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = store.claim_job("worker-b", 60_000).await.unwrap().unwrap();
    assert_eq!((second.id, second.attempt), (id, 2));

    assert!(
        !store
            .finish_job(&first, "done", Changes::default())
            .await
            .unwrap()
    );
    assert!(
        !store.retry_later(&first, "late", 0).await.unwrap(),
        "a lost claim cannot requeue the job either"
    );
    assert!(
        !store
            .give_up(&first, "late", Changes::default())
            .await
            .unwrap()
    );
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Running, 2));

    // The holder fails, to be retried at once: queued again, with its error kept.
    assert!(
        store
            .retry_later(&second, "bitbucket: 503", 0)
            .await
            .unwrap()
    );
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.last_error.as_deref(), Some("bitbucket: 503"));
    assert_eq!(job.finished_at, None);

    let third = store.claim_job("worker-a", 60_000).await.unwrap().unwrap();
    assert_eq!((third.id, third.attempt), (id, 3));
    assert!(
        store
            .finish_job(&third, "tag created", Changes::default())
            .await
            .unwrap()
    );
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Done, 3));
    assert!(job.finished_at.is_some());
    let attempts = store.job_attempts(id).await.unwrap();
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| (a.attempt, a.outcome.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, Some("lost lease")),
            (2, Some("error")),
            (3, Some("tag created"))
        ],
        "each attempt closed with what happened to it"
    );
    assert_eq!(attempts[1].error.as_deref(), Some("bitbucket: 503"));
    assert!(attempts.iter().all(|a| a.finished_at.is_some()));
}

/// PostgreSQL: connections the server dropped while they sat idle in the pool (a database restart,
/// a failover, a proxy's idle cut) are found and replaced before use: the next request after them
/// succeeds. (SQLite has no connection to drop.)
#[tokio::test]
async fn connections_dropped_by_the_server_while_idle_are_replaced_not_used() {
    let Some(url) = store_url().await else {
        return;
    };
    let store = hoist::store::Store::connect(&options(url.clone()))
        .await
        .unwrap();
    // Several connections in the pool, all idle afterwards.
    let pings = futures_util::future::join_all((0..6).map(|_| store.ping())).await;
    assert!(pings.iter().all(|ok| *ok));
    let name = url.rsplit('/').next().unwrap();
    let admin = format!("{}/postgres", url.rsplit_once('/').unwrap().0);
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let killed: i64 = client
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()) t"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the pool held connections");
    tokio::time::sleep(Duration::from_millis(200)).await;

    for _ in 0..8 {
        assert!(store.ping().await, "a dropped connection was used");
    }
    store.apply(a_job()).await.unwrap();
}
