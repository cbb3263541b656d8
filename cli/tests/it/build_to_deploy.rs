//! SPEC 3.2: a CircleCI build of the tag becomes one Spinnaker trigger, with Slack in the thread.

use hoist::domain::ReleaseStatus;
use hoist_cli::stack::{REPO, StackOptions};
use hoist_sim::Fault;
use hoist_sim::circleci::{PayloadShape, sign};

use crate::util::{WAIT, count, post, stack, stack_with};

#[tokio::test]
async fn ticket_to_deploy_end_to_end() {
    let s = stack().await;
    let commit = s.commit("PAY-30 change");
    let (_, body) = s.assign("PAY-30", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    let triggers = s.gate.triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].source, "payments-api-stg");
    assert_eq!(triggers[0].parameters["tag"], "stg0.0.1");
    assert_eq!(triggers[0].parameters["issue"], "PAY-30");
    assert_eq!(triggers[0].parameters["commit"], commit.as_str());
    assert_eq!(
        r.deploy_event_id.as_deref(),
        Some(triggers[0].event_id.as_str())
    );
    assert_eq!(r.build_status.as_deref(), Some("success"));
    assert!(
        r.build_url
            .as_deref()
            .unwrap()
            .starts_with("https://app.circleci.com/pipelines/")
    );
    let lead = r.lead_time_ms().unwrap();
    assert!(
        lead >= 200,
        "lead time {lead} ms includes the simulated build"
    );
    assert!(
        r.received_at <= r.tagged_at.unwrap()
            && r.tagged_at <= r.built_at
            && r.built_at <= r.deploy_triggered_at
    );
    assert!(r.deploy_triggered_at <= r.deployed_at);
    s.settle(WAIT).await.unwrap();
    // One thread: tagged (root), build succeeded, deploy triggered, started, deployed (replies).
    let msgs = s.slack.messages();
    assert_eq!(msgs.len(), 5, "{msgs:?}");
    assert!(msgs[0].thread_ts.is_none());
    assert!(
        msgs[1..]
            .iter()
            .all(|m| m.thread_ts.as_deref() == Some(msgs[0].ts.as_str()))
    );
    let last = msgs[4].text.clone().unwrap();
    assert!(last.contains("lead time"), "{last}");
    assert!(
        msgs[1]
            .blocks
            .as_ref()
            .unwrap()
            .to_string()
            .contains("app.circleci.com")
    );
    s.finish().await.unwrap();
}

/// Each job of a release runs once, in one attempt, when nothing fails: the tag job, the build
/// job, the deploy.
#[tokio::test]
async fn each_job_of_a_release_runs_once() {
    let s = stack().await;
    let commit = s.commit("PAY-31 change");
    let (_, body) = s.assign("PAY-31", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    s.settle(WAIT).await.unwrap();
    let jobs = s.hoist.store.jobs_for_release(id.into()).await.unwrap();
    let run: Vec<_> = jobs
        .iter()
        .filter(|j| j.kind != "notify")
        .map(|j| (j.kind.as_str(), j.state.as_str(), j.attempts))
        .collect();
    assert_eq!(
        run,
        [("create_tag", "done", 1), ("deploy", "done", 1)],
        "{jobs:?}"
    );
    // The build job has no release of its own yet: it is the delivery's.
    let builds = s
        .hoist
        .store
        .jobs_in_state(hoist::domain::JobState::Done)
        .await
        .unwrap();
    assert!(
        builds
            .iter()
            .any(|j| j.kind == "handle_build" && j.attempts == 1),
        "{builds:?}"
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn gitlab_and_github_app_payloads_work() {
    let s = stack_with(
        StackOptions {
            shape: PayloadShape::TriggerParameters,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let commit = s.commit("x");
    let (_, body) = s.assign("PAY-31", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| {
            r.status.is_terminal()
        })
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    assert_eq!(s.gate.triggers().len(), 1);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_tag_made_by_hand_deploys_through_the_scm() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let commit = s.commit("hand");
    s.bitbucket.add_tag(REPO, "stg3.1.4", &commit);
    // Another commit's tag shares no prefix but must not be confused.
    let other = s.commit("other");
    s.bitbucket.add_tag(REPO, "stg3.1.3", &other);
    let sent = s
        .circleci
        .send_build(None, &commit, "success")
        .await
        .unwrap();
    assert!(sent.iter().all(|w| w.status == 202), "{sent:?}");
    s.settle(WAIT).await.unwrap();
    let triggers = s.gate.triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].parameters["tag"], "stg3.1.4");
    let releases = s.hoist.store.releases(10, None).await.unwrap();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].status, ReleaseStatus::Deployed);
    assert_eq!(releases[0].issue, None);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_commit_without_a_release_tag_deploys_nothing() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let commit = s.commit("untagged");
    s.circleci
        .send_build(None, &commit, "success")
        .await
        .unwrap();
    s.settle(WAIT).await.unwrap();
    assert!(s.gate.triggers().is_empty());
    assert_eq!(count(&s, "releases").await, 0);
    let d = s
        .hoist
        .store
        .delivery(hoist::domain::DeliveryId(1))
        .await
        .unwrap()
        .unwrap();
    assert!(
        d.outcome.contains("no release tag for commit"),
        "{}",
        d.outcome
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn unrelated_jobs_are_acknowledged_and_ignored() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let commit = s.commit("x");
    let events = s.circleci.build_events(None, &commit, "success");
    // The workflow-completed event names workflow build-and-deploy: not this project's build job.
    let (kind, payload) = events
        .iter()
        .find(|(k, _)| k == "workflow-completed")
        .unwrap();
    let sent = s
        .circleci
        .send_raw(kind, payload.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(sent.status, 202);
    assert!(
        sent.response.contains("is not payments-api's build"),
        "{}",
        sent.response
    );
    // Another project's job.
    let mut other = events[0].1.clone();
    other["project"]["slug"] = "bitbucket/acme/other".into();
    other["id"] = "other-1".into();
    let sent = s
        .circleci
        .send_raw("job-completed", other.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(sent.status, 202);
    assert!(
        sent.response.contains("no project has circleci_project"),
        "{}",
        sent.response
    );
    s.settle(WAIT).await.unwrap();
    assert_eq!(
        count(&s, "deliveries").await,
        2,
        "ignored events are recorded"
    );
    assert_eq!(count(&s, "jobs").await, 0);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_failed_build_is_reported_and_not_deployed() {
    let s = stack().await;
    s.circleci.set_outcome("failed");
    let commit = s.commit("broken");
    let (_, body) = s.assign("PAY-32", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| {
            r.status.is_terminal()
        })
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::BuildFailed);
    s.settle(WAIT).await.unwrap();
    assert!(s.gate.triggers().is_empty());
    let msgs = s.slack.messages();
    let failed = msgs
        .iter()
        .find(|m| m.text.as_deref().unwrap_or("").contains("build failed"))
        .expect("failure reported");
    assert!(
        failed
            .blocks
            .as_ref()
            .unwrap()
            .to_string()
            .contains("app.circleci.com")
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn five_redeliveries_trigger_one_deploy() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let commit = s.commit("x");
    let (_, body) = s.assign("PAY-33", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    s.wait_release(id, WAIT, |r| r.tag.is_some()).await.unwrap();
    let events = s.circleci.build_events(None, &commit, "success");
    let (kind, payload) = events.iter().find(|(k, _)| k == "job-completed").unwrap();
    let bytes = payload.to_string().into_bytes();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            s.circleci
                .send_raw(kind, bytes.clone())
                .await
                .unwrap()
                .status,
        );
    }
    assert_eq!(statuses, vec![202, 200, 200, 200, 200]);
    s.settle(WAIT).await.unwrap();
    assert_eq!(s.gate.triggers().len(), 1);
    assert_eq!(
        count(&s, "deliveries").await,
        2,
        "the ticket and one build event"
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn gate_errors_then_recovery_trigger_once() {
    let s = stack().await;
    s.gate.faults().push(Fault::Status(500), 2);
    s.gate.faults().push(Fault::Drop, 1);
    let commit = s.commit("x");
    let (_, body) = s.assign("PAY-34", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    assert_eq!(s.gate.triggers().len(), 1);
    let jobs = s.hoist.store.jobs_for_release(id.into()).await.unwrap();
    let deploy = jobs.iter().find(|j| j.kind == "deploy").unwrap();
    assert_eq!(deploy.attempts, 4);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn gate_permanent_error_fails_the_release_visibly() {
    let s = stack().await;
    s.gate.require_header("Authorization", "Bearer gate");
    let commit = s.commit("x");
    let (_, body) = s.assign("PAY-35", &commit).await.unwrap();
    let r = s
        .wait_release(body["release"].as_i64().unwrap(), WAIT, |r| {
            r.status.is_terminal()
        })
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::Failed);
    assert!(
        r.error.as_deref().unwrap().contains("spinnaker.headers"),
        "{:?}",
        r.error
    );
    s.expect_leftover_jobs(); // the deploy job failed for good, as it should
    s.finish().await.unwrap();
}

#[tokio::test]
async fn wrong_or_missing_signature_is_refused_and_changes_nothing() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let commit = s.commit("x");
    let (_, payload) = s.circleci.build_events(None, &commit, "success").remove(0);
    let body = payload.to_string();
    let good = sign(&s.options.circleci_secret, body.as_bytes());
    let other_secret = sign("not-the-secret", body.as_bytes());
    let other_body = sign(&s.options.circleci_secret, b"{}");
    let ct = ("content-type", "application/json");
    for sig in [
        None,
        Some(other_secret.as_str()),
        Some(other_body.as_str()),
        Some("v1=zz"),
        Some("v2=abc"),
    ] {
        let mut headers = vec![ct, ("circleci-event-type", "job-completed")];
        if let Some(sig) = sig {
            headers.push(("circleci-signature", sig));
        }
        let (status, answer) = post(&s, "/hooks/circleci", &headers, body.clone()).await;
        assert_eq!(status, 401, "{sig:?}: {answer}");
        assert_eq!(answer["error"]["code"], "unauthorized");
    }
    assert_eq!(count(&s, "deliveries").await, 0);
    let (status, _) = post(
        &s,
        "/hooks/circleci",
        &[ct, ("circleci-signature", &good)],
        body.clone(),
    )
    .await;
    assert_eq!(status, 202);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn outages_and_timeouts_of_every_service_end_when_they_recover() {
    let s = stack_with(
        StackOptions {
            client_timeout_secs: 1,
            retry_base_ms: 50,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    // Bitbucket answers 503 for a while, Gate does not answer in time twice, Slack is down.
    s.bitbucket.faults().set_outage(Some(503));
    s.gate
        .faults()
        .push(Fault::Delay(std::time::Duration::from_millis(1500)), 2);
    s.slack.faults().set_outage(Some(503));
    let commits: Vec<String> = (0..3).map(|i| s.commit(&format!("c{i}"))).collect();
    let mut ids = Vec::new();
    for (i, c) in commits.iter().enumerate() {
        let (status, body) = s.assign(&format!("PAY-4{i}"), c).await.unwrap();
        assert_eq!(status, 202);
        ids.push(body["release"].as_i64().unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(s.bitbucket.request_count() >= 3, "Hoist kept trying");
    s.bitbucket.faults().set_outage(None);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    s.slack.faults().set_outage(None);
    for id in ids {
        let r = s
            .wait_release(id, WAIT, |r| r.status.is_terminal())
            .await
            .unwrap();
        assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    }
    s.settle(WAIT).await.unwrap();
    assert_eq!(s.gate.triggers().len(), 3);
    // Every step of every release reached Slack once it was back: 5 messages each (tagged,
    // built, deploy triggered, started, deployed).
    assert_eq!(s.slack.messages().len(), 15);
    s.finish().await.unwrap();
}
