//! SPEC 11's store faults: a file that is not SQLite, a place Hoist cannot write, a disk that
//! fills during a commit. Each is a clear error, and nothing is half-written.

use std::time::Duration;

use hoist_cli::stack::StackOptions;

use crate::util::{WAIT, count, stack_with, store_url};

/// `hoist serve` on `store`, expected to refuse: its stderr.
fn refused(dir: &std::path::Path, store: &str) -> String {
    let sims_config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[store]
url = "{store}"
[bitbucket]
workspace = "acme"
auth = {{ bearer = {{ env = "HOIST_TEST_BITBUCKET_TOKEN" }} }}
[sources.jira]
token_header = "X-Hoist-Token"
token = {{ env = "HOIST_TEST_JIRA_TOKEN" }}
[[projects]]
name = "api"
repo = "api"
[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
"#
    );
    let path = dir.join("hoist.toml");
    std::fs::write(&path, sims_config).unwrap();
    let out = crate::process::hoist_cmd(&path)
        .arg("serve")
        .output()
        .expect("run hoist serve");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_store_that_is_not_sqlite_or_cannot_be_written_is_refused_clearly() {
    if store_url().await.is_some() {
        println!("skipped: SQLite only");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&junk, &garbage).unwrap();
    let e = refused(dir.path(), &format!("sqlite://{}", junk.display()));
    assert!(
        e.contains(&format!("{} is not an SQLite database", junk.display())),
        "{e}"
    );
    assert_eq!(std::fs::read(&junk).unwrap(), garbage, "left as it was");

    // /proc takes no new files, even from root: as a directory Hoist may not write.
    let e = refused(dir.path(), "sqlite:///proc/hoist.db");
    assert!(
        e.contains("cannot open the lock file /proc/hoist.db.lock")
            && e.contains("Hoist needs to write beside the store file"),
        "{e}"
    );
}

/// The disk fills (SQLite's `max_page_count` stands for it): webhooks are answered `503` with
/// `Retry-After` and nothing of them is stored; the store stays sound; once there is room
/// again, the same webhooks are taken, whole.
#[tokio::test]
async fn a_full_disk_answers_503_writes_nothing_half_and_recovers() {
    if store_url().await.is_some() {
        println!("skipped: SQLite only");
        return;
    }
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let store = &s.hoist.store;
    let pages = store
        .query_i64("SELECT page_count AS n FROM pragma_page_count()")
        .await
        .unwrap();
    store
        .run_script(&format!("PRAGMA max_page_count = {pages}"))
        .await
        .unwrap();
    let mut refused = Vec::new();
    let mut taken = 0;
    for i in 0..60 {
        let commit = s.commit(&format!("PAY-{i}: {}", "x".repeat(2000)));
        let (status, body) = s.assign(&format!("PAY-{i}"), &commit).await.unwrap();
        match status {
            503 => {
                assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
                refused.push((i, commit));
            }
            202 => taken += 1,
            other => panic!("{other}: {body}"),
        }
    }
    assert!(!refused.is_empty(), "the store never filled");
    let releases_then = count(&s, "releases").await;
    assert_eq!(releases_then, taken, "a 503 stored nothing");
    assert_eq!(count(&s, "deliveries").await, taken);

    store
        .run_script("PRAGMA max_page_count = 1073741823")
        .await
        .unwrap();
    let broken = store
        .query_i64(
            "SELECT COUNT(*) AS n FROM pragma_integrity_check() WHERE integrity_check <> 'ok'",
        )
        .await
        .unwrap();
    assert_eq!(broken, 0, "the store is sound");
    for (i, commit) in &refused {
        let (status, body) = s.assign(&format!("PAY-{i}"), commit).await.unwrap();
        assert_eq!(status, 202, "sent again: {body}");
    }
    assert_eq!(count(&s, "releases").await, 60);
    // Every release was tagged once the disk had room (the tag jobs that failed were retried).
    for id in 1..=60 {
        s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.expect_leftover_jobs();
    s.finish().await.unwrap();
}

/// PostgreSQL drops every connection of Hoist's, three times, while tickets arrive (what a
/// server restart does to a client): requests in flight may be answered `503`, never a `2xx`
/// that was not stored; the pool replaces its connections, and every ticket sent again lands.
#[tokio::test]
async fn postgres_dropping_every_connection_under_load_loses_nothing() {
    let Some(url) = store_url().await else {
        println!("skipped: PostgreSQL only");
        return;
    };
    let s = stack_with(
        StackOptions {
            store_url: Some(url.clone()),
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let name = url.rsplit('/').next().unwrap().to_string();
    let admin = format!("{}/postgres", url.rsplit_once('/').unwrap().0);
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let killer = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            client
                .execute(
                    &format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ),
                    &[],
                )
                .await
                .unwrap();
        }
    };
    let commits: Vec<String> = (0..40).map(|i| s.commit(&format!("c{i}"))).collect();
    let sender = async {
        let mut answers = Vec::new();
        for (i, c) in commits.iter().enumerate() {
            answers.push(s.assign(&format!("PAY-{i}"), c).await.unwrap().0);
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        answers
    };
    let ((), answers) = tokio::join!(killer, sender);
    assert!(
        answers.iter().all(|a| *a == 202 || *a == 503),
        "{answers:?}"
    );
    let accepted = answers.iter().filter(|a| **a == 202).count() as i64;
    assert_eq!(
        count(&s, "releases").await,
        accepted,
        "each 2xx stored, nothing else"
    );
    // The senders retry what was refused (Jira Automation does not; a person would).
    for (i, c) in commits.iter().enumerate() {
        if answers[i] == 503 {
            let (status, _) = s.assign(&format!("PAY-{i}"), c).await.unwrap();
            assert_eq!(status, 202);
        }
    }
    // And CircleCI's webhooks that met a dropped connection, sent again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut resent = 0;
    for w in s.circleci.sent() {
        if w.status == 503 {
            let again = s
                .circleci
                .send_raw(&w.event_type, w.body.into_bytes())
                .await
                .unwrap();
            assert!(again.status < 300, "{}", again.response);
            resent += 1;
        }
    }
    // (PostgreSQL's ids have gaps where a refused write took one.)
    let all = s.hoist.store.releases(100, None).await.unwrap();
    assert_eq!(all.len(), 40);
    for r in all {
        let r = s
            .wait_release(r.id.0, WAIT, |r| r.status.is_terminal())
            .await
            .unwrap();
        assert_eq!(r.status.as_str(), "deployed", "{:?}", r.error);
    }
    println!(
        "{} of 40 tickets and {resent} CircleCI webhooks answered 503 while connections were dropped",
        40 - accepted
    );
    s.finish().await.unwrap();
}
