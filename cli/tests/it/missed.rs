//! SPEC 16: a CircleCI webhook that never comes does not strand a release. With `[circleci]
//! token`, a release still waiting for its build `build_timeout_secs` after its tag is looked up
//! in CircleCI's API v2 (its newest pipelines, page after page, for the one whose `vcs.tag` is the
//! release's tag; its workflows; their jobs), and goes on as the webhook would have made it.

use std::time::Duration;

use hoist::domain::{ReleaseId, ReleaseStatus};
use hoist_cli::stack::{Stack, StackOptions};

use crate::util::{WAIT, stack_with};

fn asking_after(secs: u64) -> StackOptions {
    StackOptions {
        circleci_api_after_secs: Some(secs),
        ..StackOptions::default()
    }
}

async fn steps(s: &Stack, id: i64) -> Vec<(String, String)> {
    s.hoist
        .store
        .events(ReleaseId(id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.step, e.message))
        .collect()
}

#[tokio::test]
async fn a_lost_webhook_is_found_in_the_api_and_a_late_one_changes_nothing() {
    let s = stack_with(asking_after(1), |_| {}).await;
    s.circleci.set_delivering(false);
    let commit = s.commit("PAY-600 change");
    let (_, body) = s.assign("PAY-600", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    // Other tags' builds come after it: the release's pipeline is on the API's second page.
    let r = s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    for i in 0..25 {
        s.circleci.record_build(
            Some(&format!("feature-{i}")),
            &hoist_sim::bitbucket::random_hash(),
            "success",
        );
    }
    let done = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(done.status, ReleaseStatus::Deployed, "{:?}", done.error);
    assert!(
        done.build_url.as_deref().unwrap_or("").contains("/jobs/"),
        "{:?}",
        done.build_url
    );
    let timeline = steps(&s, id).await;
    assert!(
        timeline.iter().any(|(step, m)| step == "build_reconciled"
            && m.contains(&format!(
                "build of {} ended `success`",
                r.tag.clone().unwrap()
            ))),
        "{timeline:#?}"
    );
    assert!(s.circleci.sent().is_empty(), "no webhook came");
    let asked = s.circleci_api.requests();
    assert!(
        asked.iter().any(|q| q
            .query
            .as_deref()
            .is_some_and(|q| q.contains("page-token="))),
        "followed next_page_token"
    );
    assert!(
        asked.iter().all(|q| q
            .headers
            .iter()
            .any(|(k, v)| k == "circle-token" && v == &s.options.circleci_token)),
        "every call carries Circle-Token"
    );

    // CircleCI delivers the build's webhook late: recorded, nothing changes.
    let triggers = s.gate.triggers().len();
    s.circleci.set_delivering(true);
    let sent = s
        .circleci
        .send_build(None, r.full_commit.as_ref().unwrap().as_str(), "success")
        .await
        .unwrap();
    assert!(sent.iter().all(|w| w.status < 300), "{sent:?}");
    s.settle(WAIT).await.unwrap();
    assert_eq!(s.gate.triggers().len(), triggers, "deployed once");
    let again = s.hoist.store.release(ReleaseId(id)).await.unwrap().unwrap();
    assert_eq!(again.status, ReleaseStatus::Deployed);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_build_still_running_is_asked_about_again_and_a_failed_one_ends_the_release() {
    let s = stack_with(
        StackOptions {
            build_delay: Duration::from_millis(2500),
            ..asking_after(1)
        },
        |_| {},
    )
    .await;
    s.circleci.set_delivering(false);
    s.circleci.set_outcome("failed");
    let commit = s.commit("PAY-610 change");
    let (_, body) = s.assign("PAY-610", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let done = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(done.status, ReleaseStatus::BuildFailed);
    let looks = s
        .hoist
        .store
        .jobs_for_release(ReleaseId(id))
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == "reconcile_build")
        .count();
    assert!(looks >= 2, "asked while it ran, then again: {looks}");
    assert!(s.gate.triggers().is_empty());
    s.finish().await.unwrap();
}

#[tokio::test]
async fn no_pipeline_at_all_is_said_and_a_broken_token_is_a_warning() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..asking_after(1)
        },
        |_| {},
    )
    .await;
    let commit = s.commit("PAY-620 change");
    let (_, body) = s.assign("PAY-620", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let wait = async {
        loop {
            let t = steps(&s, id).await;
            if let Some(found) = t.into_iter().find(|(step, _)| step == "build_missing") {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (_, message) = tokio::time::timeout(WAIT, wait).await.expect("said");
    assert!(
        message.contains("no CircleCI pipeline built stg"),
        "{message}"
    );
    s.settle(WAIT).await.unwrap();
    assert!(
        s.slack.messages().iter().any(|m| m
            .text
            .as_deref()
            .is_some_and(|t| t.contains("no CircleCI pipeline built"))),
        "Slack told"
    );
    let r = s.hoist.store.release(ReleaseId(id)).await.unwrap().unwrap();
    assert_eq!(
        r.status,
        ReleaseStatus::Tagged,
        "still waits: a webhook may yet come"
    );
    s.finish().await.unwrap();

    // A token CircleCI refuses: the look gives up, and says why.
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..asking_after(1)
        },
        |c| c.circleci.token = Some(hoist::config::SecretRef::Value("revoked".into())),
    )
    .await;
    let commit = s.commit("PAY-621 change");
    let (_, body) = s.assign("PAY-621", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let wait = async {
        loop {
            let t = steps(&s, id).await;
            if let Some(found) = t.into_iter().find(|(step, _)| step == "build_check_failed") {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (_, message) = tokio::time::timeout(WAIT, wait).await.expect("said");
    assert!(
        message.contains("HTTP 401") && message.contains("check [circleci] token"),
        "{message}"
    );
    assert!(
        !message.contains("revoked"),
        "the token never shows: {message}"
    );
    s.expect_leftover_jobs();
    s.finish().await.unwrap();
}
