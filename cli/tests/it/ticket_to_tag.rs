//! SPEC 3.1: a ticket assignment becomes the right new tag, durably, with Slack told.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use hoist::domain::ReleaseStatus;
use hoist_cli::stack::{REPO, StackOptions};
use hoist_sim::Fault;

use crate::util::{WAIT, stack, stack_with};

fn no_builds() -> StackOptions {
    StackOptions {
        auto_build: false,
        ..StackOptions::default()
    }
}

#[tokio::test]
async fn highest_version_over_three_pages_wins_not_the_newest_by_date() {
    let s = stack_with(no_builds(), |_| {}).await;
    // 221 family tags over three pages of 100; the newest by date is a low version.
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    for i in 0..221u32 {
        let c = s.commit(&format!("change {i}"));
        let name = format!("stg1.{}.{}", i / 50, i % 50);
        s.bitbucket.add_tag_at(
            REPO,
            &name,
            &c,
            base + chrono::Duration::hours(i64::from(i)),
        );
    }
    let newest = s.commit("hotfix");
    s.bitbucket.add_tag_at(
        REPO,
        "stg0.9.1",
        &newest,
        base + chrono::Duration::days(400),
    );
    for noise in ["stgfoo", "stg1.2", "stg9.9.9-rc1", "xstg9.9.9", "STG8.0.0"] {
        s.bitbucket.add_tag(REPO, noise, &newest);
    }
    let commit = s.commit("PAY-1 work");
    let (status, body) = s.assign("PAY-1", &commit).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["release"].as_i64().unwrap();
    assert!(
        body["status_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/releases/{id}"))
    );
    let r = s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    // Highest is stg1.4.20 (i = 220): next is stg1.4.21.
    assert_eq!(r.tag.as_deref(), Some("stg1.4.21"));
    assert_eq!(r.status, ReleaseStatus::Tagged);
    assert_eq!(r.full_commit.as_deref(), Some(commit.as_str()));
    let tags = s.bitbucket.tags(REPO);
    assert!(tags.iter().any(|(n, h)| n == "stg1.4.21" && h == &commit));
    // Steady state: the commit, the first page in natural order, the create.
    let calls = s.bitbucket.request_count();
    assert!(calls <= 3, "{calls} Bitbucket calls for one release");
    s.settle(WAIT).await.unwrap();
    let msgs = s.slack.messages();
    assert_eq!(msgs.len(), 1);
    let text = msgs[0].text.clone().unwrap();
    assert!(
        text.contains("stg1.4.21") && text.contains("PAY-1"),
        "{text}"
    );
    let blocks = msgs[0].blocks.clone().unwrap().to_string();
    assert!(
        blocks.contains("https://acme.atlassian.net/browse/PAY-1"),
        "{blocks}"
    );
    assert!(blocks.contains(&commit[..7]), "{blocks}");
    s.finish().await.unwrap();
}

#[tokio::test]
async fn every_page_is_read_when_other_names_sort_above_the_family() {
    let s = stack_with(no_builds(), |_| {}).await;
    // 150 names that match the `stg` filter and sort above every version (letters after digits):
    // the first page in natural order holds no member of the family.
    let c = s.commit("noise");
    for i in 0..150 {
        s.bitbucket.add_tag(REPO, &format!("stgz-nightly-{i}"), &c);
    }
    for v in ["stg2.0.7", "stg2.0.12", "stg1.9.99"] {
        let t = s.commit(v);
        s.bitbucket.add_tag(REPO, v, &t);
    }
    let commit = s.commit("work");
    let (_, body) = s.assign("PAY-15", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
        .await
        .unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg2.0.13"));
    let pages = s
        .bitbucket
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/refs/tags"))
        .count();
    assert!(
        pages >= 3,
        "the first sorted page, then both pages of the full listing: {pages}"
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn patch_rolls_over_after_99() {
    let s = stack_with(no_builds(), |_| {}).await;
    let c = s.commit("old");
    s.bitbucket.add_tag(REPO, "stg1.3.99", &c);
    s.bitbucket.add_tag(REPO, "stg1.3.100x", &c);
    let commit = s.commit("new");
    let (_, body) = s.assign("PAY-2", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
        .await
        .unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg1.4.0"));
    s.finish().await.unwrap();
}

#[tokio::test]
async fn first_release_uses_the_initial_version() {
    let s = stack_with(no_builds(), |_| {}).await;
    let commit = s.commit("first");
    let (_, body) = s.assign("PAY-3", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
        .await
        .unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg0.0.1"));
    s.finish().await.unwrap();
}

#[tokio::test]
async fn missing_commit_fails_the_release_and_slack_says_so() {
    let s = stack_with(no_builds(), |_| {}).await;
    let (status, body) = s.assign("PAY-4", "abc1234def").await.unwrap();
    assert_eq!(status, 202);
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| {
            r.status.is_terminal()
        })
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("commit abc1234 not found in acme/payments-api")
    );
    assert!(s.bitbucket.tags(REPO).is_empty());
    s.settle(WAIT).await.unwrap();
    let msgs = s.slack.messages();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0]
            .blocks
            .as_ref()
            .unwrap()
            .to_string()
            .contains("commit abc1234 not found in acme/payments-api")
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn wait_answers_with_the_tag() {
    let s = stack_with(no_builds(), |_| {}).await;
    let commit = s.commit("x");
    let body = hoist_sim::jira::automation_body(REPO, &commit, "PAY-5", Some("stg"));
    let (status, answer) = s
        .jira
        .send_automation(
            &format!("{}/hooks/jira?wait=10", s.url),
            hoist_cli::stack::JIRA_TOKEN_HEADER,
            &s.options.jira_token,
            &body,
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["tag"], "stg0.0.1");
    assert_eq!(answer["commit"], commit.as_str());
    // A failed release answers with the reason.
    let body = hoist_sim::jira::automation_body(REPO, "0000000", "PAY-6", None);
    let (status, answer) = s
        .jira
        .send_automation(
            &format!("{}/hooks/jira?wait=10", s.url),
            hoist_cli::stack::JIRA_TOKEN_HEADER,
            &s.options.jira_token,
            &body,
        )
        .await
        .unwrap();
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn reassigned_ticket_reuses_the_tag_and_mints_no_second_version() {
    let s = stack_with(no_builds(), |_| {}).await;
    let commit = s.commit("x");
    let (_, first) = s.assign("PAY-7", &commit).await.unwrap();
    let id = first["release"].as_i64().unwrap();
    s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    // The same ticket assigned again while the release is open: the same release.
    let (status, again) = s.assign("PAY-7", &commit).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(again["release"].as_i64(), Some(id));
    // A commit someone already tagged by hand: reused, no second tag.
    let tagged = s.commit("y");
    s.bitbucket.add_tag(REPO, "stg5.0.0", &tagged);
    let (_, b) = s.assign("PAY-8", &tagged).await.unwrap();
    let r = s
        .wait_release(b["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
        .await
        .unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg5.0.0"));
    assert!(r.tag_reused);
    assert_eq!(s.bitbucket.tags(REPO).len(), 2);
    s.settle(WAIT).await.unwrap();
    s.finish().await.unwrap();
}

#[tokio::test]
async fn twenty_concurrent_tickets_get_twenty_consecutive_tags() {
    let s = stack_with(no_builds(), |_| {}).await;
    let c = s.commit("base");
    s.bitbucket.add_tag(REPO, "stg2.0.0", &c);
    let commits: Vec<String> = (0..20).map(|i| s.commit(&format!("c{i}"))).collect();
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all(commits.iter().enumerate().map(|(i, c)| {
        let s = &s;
        async move { s.assign(&format!("PAY-{}", 100 + i), c).await.unwrap() }
    }))
    .await;
    let mut tags = Vec::new();
    for (status, body) in answers {
        assert_eq!(status, 202, "{body}");
        let r = s
            .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
            .await
            .unwrap();
        tags.push(r.tag.unwrap().to_string());
    }
    let elapsed = started.elapsed();
    tags.sort_by_key(|t| t.trim_start_matches("stg2.0.").parse::<u32>().unwrap());
    let want: Vec<String> = (1..=20).map(|p| format!("stg2.0.{p}")).collect();
    assert_eq!(tags, want);
    println!(
        "20 concurrent tickets tagged in {elapsed:?} ({:.1} tags/s)",
        20.0 / elapsed.as_secs_f64()
    );
    s.settle(WAIT).await.unwrap();
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_tag_made_between_list_and_create_is_skipped() {
    let s = stack_with(no_builds(), |_| {}).await;
    let c = s.commit("base");
    s.bitbucket.add_tag(REPO, "stg1.0.0", &c);
    let other = s.commit("someone else's");
    s.bitbucket.race_next_create(REPO, "stg1.0.1", &other);
    let commit = s.commit("ours");
    let (_, body) = s.assign("PAY-9", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
        .await
        .unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg1.0.2"));
    let tags = s.bitbucket.tags(REPO);
    assert!(tags.contains(&("stg1.0.1".to_string(), other)));
    assert!(tags.contains(&("stg1.0.2".to_string(), commit)));
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_tag_an_earlier_attempt_made_on_this_commit_is_adopted() {
    // As after a crash between Bitbucket's 201 and Hoist's commit: the name exists, on our commit.
    let s = stack_with(no_builds(), |_| {}).await;
    let commit = s.commit("ours");
    s.bitbucket.race_next_create(REPO, "stg0.0.1", &commit);
    let (_, body) = s.assign("PAY-14", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
        .await
        .unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg0.0.1"));
    assert_eq!(s.bitbucket.tags(REPO).len(), 1, "no second tag");
    s.finish().await.unwrap();
}

#[tokio::test]
async fn bitbucket_outage_then_recovery_completes_the_release() {
    let s = stack_with(no_builds(), |_| {}).await;
    let commit = s.commit("x");
    s.bitbucket.faults().push(Fault::Status(503), 3);
    s.bitbucket.faults().push(
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    s.bitbucket.faults().push(Fault::Drop, 1);
    let (_, body) = s.assign("PAY-10", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg0.0.1"));
    let jobs = s.hoist.store.jobs_for_release(id.into()).await.unwrap();
    let tag_job = jobs.iter().find(|j| j.kind == "create_tag").unwrap();
    assert_eq!(tag_job.state, hoist::domain::JobState::Done);
    assert!(tag_job.attempts >= 6, "attempts {}", tag_job.attempts);
    assert!(
        tag_job
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("Bitbucket")
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn slack_down_never_blocks_the_release() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            max_attempts: 3,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    s.slack.faults().set_outage(Some(500));
    let commit = s.commit("x");
    let (_, body) = s.assign("PAY-11", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    assert_eq!(r.status, ReleaseStatus::Tagged);
    s.settle(WAIT).await.unwrap();
    // The notification failed after its attempts, and is kept, visible.
    let jobs = s.hoist.store.jobs_for_release(id.into()).await.unwrap();
    let n = jobs.iter().find(|j| j.kind == "notify").unwrap();
    assert_eq!(n.state, hoist::domain::JobState::Failed);
    assert_eq!(n.attempts, 3);
    // It can be retried by hand once Slack is back.
    s.slack.faults().set_outage(None);
    assert!(
        s.hoist
            .store
            .retry_job(n.id, hoist::core::failure::retried)
            .await
            .unwrap()
    );
    s.hoist.worker.wake.notify_waiters();
    s.settle(WAIT).await.unwrap();
    assert_eq!(s.slack.messages().len(), 1);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn slack_rate_limit_is_honoured() {
    let s = stack_with(no_builds(), |_| {}).await;
    s.slack.faults().push(
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    let commit = s.commit("x");
    let t0 = std::time::Instant::now();
    let (_, body) = s.assign("PAY-12", &commit).await.unwrap();
    s.wait_release(body["release"].as_i64().unwrap(), WAIT, |r| r.tag.is_some())
        .await
        .unwrap();
    s.settle(WAIT).await.unwrap();
    assert_eq!(s.slack.messages().len(), 1);
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After"
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn native_assignee_webhook_creates_the_tag_and_other_updates_are_ignored() {
    let s = stack().await;
    let commit = s.commit("x");
    let fields = serde_json::json!({"customfield_10050": REPO, "customfield_10051": commit});
    let body = hoist_sim::jira::issue_updated_assignee("PAY-20", fields, Some("557058:abc"));
    let secret = None;
    let (status, answer) = s
        .jira
        .send_native(&format!("{}/hooks/jira", s.url), secret, &body, "wh-1")
        .await
        .unwrap();
    // Native webhooks cannot carry the Automation token: this stack requires it, so 401.
    assert_eq!(status, 401, "{answer}");
    s.finish().await.unwrap();

    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |c| {
            c.sources.jira.token = None;
            c.sources.jira.token_header = None;
            c.sources.jira.secret = Some(hoist::config::SecretRef::Value("jira-hub-secret".into()));
        },
    )
    .await;
    let commit = s.commit("x");
    let fields = serde_json::json!({"customfield_10050": REPO, "customfield_10051": commit});
    let body = hoist_sim::jira::issue_updated_assignee("PAY-21", fields, Some("557058:abc"));
    let url = format!("{}/hooks/jira", s.url);
    let (status, answer) = s
        .jira
        .send_native(&url, Some("jira-hub-secret"), &body, "wh-2")
        .await
        .unwrap();
    assert_eq!(status, 202, "{answer}");
    let r = s
        .wait_release(answer["release"].as_i64().unwrap(), WAIT, |r| {
            r.tag.is_some()
        })
        .await
        .unwrap();
    assert_eq!(r.issue.as_deref(), Some("PAY-21"));
    // The same delivery again: 200 with the original release, nothing new.
    let (status, again) = s
        .jira
        .send_native(&url, Some("jira-hub-secret"), &body, "wh-2")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(again["release"], answer["release"]);
    // Another kind of update: acknowledged with the reason.
    let other = hoist_sim::jira::issue_updated_other("PAY-21");
    let (status, ignored) = s
        .jira
        .send_native(&url, Some("jira-hub-secret"), &other, "wh-3")
        .await
        .unwrap();
    assert_eq!(status, 202);
    assert!(
        ignored["ignored"].as_str().unwrap().contains("assignee"),
        "{ignored}"
    );
    // Wrong signature: 401.
    let (status, _) = s
        .jira
        .send_native(&url, Some("wrong"), &body, "wh-4")
        .await
        .unwrap();
    assert_eq!(status, 401);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn releases_api_shows_the_timeline_and_jobs() {
    let s = stack_with(no_builds(), |_| {}).await;
    let commit = s.commit("x");
    let (_, body) = s.assign("PAY-13", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    s.settle(WAIT).await.unwrap();
    let list: serde_json::Value = reqwest::get(format!("{}/api/releases", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["releases"][0]["id"].as_i64(), Some(id));
    let one: serde_json::Value = reqwest::get(format!("{}/api/releases/{id}", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["tag"], "stg0.0.1");
    assert_eq!(one["timeline"][0]["step"], "received");
    assert!(one["timeline"][2]["at"].is_string(), "tagged time: {one}");
    let jobs = one["jobs"].as_array().unwrap();
    assert!(jobs.iter().any(|j| j["kind"] == "create_tag"
        && j["state"] == "done"
        && j["history"][0]["outcome"] == "tag created"));
    let health = reqwest::get(format!("{}/healthz", s.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    s.finish().await.unwrap();
}
