//! SPEC 12: after the trigger, Hoist follows the executions it started in Spinnaker to their end,
//! records the steps at Gate's times, tells Slack, and survives Gate's faults.

use std::time::Duration;

use hoist::domain::{Release, ReleaseStatus};
use hoist_cli::stack::{Stack, StackOptions};
use hoist_sim::Fault;
use hoist_sim::spinnaker::Outcome;

use crate::util::{WAIT, stack, stack_with};

const SOURCE: &str = "payments-api-stg";

/// A ticket for a new commit, followed to the end of its deploy.
async fn released(s: &Stack, issue: &str) -> Release {
    let commit = s.commit(&format!("{issue} change"));
    let (status, body) = s.assign(issue, &commit).await.unwrap();
    assert_eq!(status, 202, "{body}");
    s.wait_release(body["release"].as_i64().unwrap(), WAIT, |r| {
        r.status.is_terminal()
    })
    .await
    .unwrap()
}

/// Gate's requests of one kind: `search` (by event) or `pipelines` (one execution).
fn gate_calls(s: &Stack, kind: &str) -> usize {
    s.gate
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains(kind))
        .count()
}

#[tokio::test]
async fn a_deploy_is_followed_to_deployed_at_gates_times() {
    let s = stack().await;
    s.gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: Duration::from_millis(400),
        },
    );
    let r = released(&s, "PAY-201").await;
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    let executions = s.gate.executions();
    assert_eq!(executions.len(), 1);
    let e = &executions[0];
    assert_eq!(
        r.deploy_started_at,
        e["startTime"].as_i64(),
        "Gate's start time"
    );
    assert_eq!(r.deployed_at, e["endTime"].as_i64(), "Gate's end time");
    assert_eq!(
        r.lead_time_ms(),
        Some(r.deployed_at.unwrap() - r.received_at)
    );
    assert!(r.trigger_lead_time_ms().unwrap() < r.lead_time_ms().unwrap());

    let deployments = s.hoist.store.deployments(r.id).await.unwrap();
    assert_eq!(deployments.len(), 1);
    let d = &deployments[0];
    assert_eq!(
        (d.status.as_str(), d.env.as_str(), d.tag.as_str()),
        ("deployed", "stg", r.tag.as_ref().unwrap().as_str())
    );
    assert_eq!(d.event_id, r.deploy_event_id);
    let seen = s.hoist.store.executions(d.id).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (
            seen[0].id.as_str(),
            seen[0].name.as_str(),
            seen[0].status.as_str()
        ),
        (e["id"].as_str().unwrap(), "deploy-staging", "SUCCEEDED")
    );

    let steps: Vec<String> = s
        .hoist
        .store
        .events(r.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.step)
        .collect();
    for step in ["deploy_triggered", "deploy_started", "deployed"] {
        assert!(steps.iter().any(|s| s == step), "{step} not in {steps:?}");
    }
    let events = s.hoist.store.events(r.id).await.unwrap();
    let started = events.iter().find(|e| e.step == "deploy_started").unwrap();
    assert!(
        started
            .message
            .contains("https://deck.acme.example/#/applications/payments-api/executions/details/"),
        "{}",
        started.message
    );
    // The searches by event were few: one found the execution, then it was polled until done.
    assert!(gate_calls(&s, "executions/search") >= 1);
    s.settle(WAIT).await.unwrap();
    let texts: Vec<String> = s
        .slack
        .messages()
        .iter()
        .filter_map(|m| m.text.clone())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("pipeline `deploy-staging` started")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("deployed") && t.contains("lead time")),
        "{texts:?}"
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_failed_pipeline_is_reported_with_its_stage_and_where_to_look() {
    let s = stack().await;
    s.gate.set_outcome(
        SOURCE,
        Outcome::FailAt {
            pipeline: "deploy-staging".into(),
            stage: "Deploy (Manifest)".into(),
            after: Duration::from_millis(200),
        },
    );
    let r = released(&s, "PAY-202").await;
    assert_eq!(r.status, ReleaseStatus::DeployFailed, "{:?}", r.error);
    let error = r.error.clone().unwrap();
    assert!(
        error.contains("ended TERMINAL at stage `Deploy (Manifest)`"),
        "{error}"
    );
    assert_eq!(r.deployed_at, None);
    assert_eq!(r.lead_time_ms(), None, "no lead time without a deploy");
    let d = &s.hoist.store.deployments(r.id).await.unwrap()[0];
    assert_eq!(d.failed_stage.as_deref(), Some("Deploy (Manifest)"));
    s.settle(WAIT).await.unwrap();
    let failed = s
        .slack
        .messages()
        .into_iter()
        .find(|m| {
            m.text
                .as_deref()
                .is_some_and(|t| t.contains("deploy failed"))
        })
        .expect("Slack is told");
    let blocks = failed.blocks.unwrap().to_string();
    assert!(blocks.contains("Deploy (Manifest)"), "{blocks}");
    assert!(
        blocks
            .contains("https://deck.acme.example/#/applications/payments-api/executions/details/"),
        "{blocks}"
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn other_final_statuses_end_the_deploy_as_orca_means_them() {
    let s = stack().await;
    // (status, the release's end)
    let table = [
        ("CANCELED", ReleaseStatus::DeployFailed),
        ("STOPPED", ReleaseStatus::DeployFailed),
        ("SKIPPED", ReleaseStatus::DeployFailed),
        ("FAILED_CONTINUE", ReleaseStatus::Deployed),
    ];
    for (i, (status, end)) in table.into_iter().enumerate() {
        s.gate.set_outcome(
            SOURCE,
            Outcome::EndAs {
                pipeline: "deploy-staging".into(),
                status: status.into(),
                after: Duration::from_millis(50),
            },
        );
        let r = released(&s, &format!("PAY-21{i}")).await;
        assert_eq!(r.status, end, "{status}: {:?}", r.error);
    }
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_trigger_that_starts_no_pipeline_ends_not_started_with_what_to_check() {
    let s = stack_with(
        StackOptions {
            deploy_start_timeout_secs: 1,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    s.gate.set_outcome(SOURCE, Outcome::NoPipeline);
    let r = released(&s, "PAY-203").await;
    assert_eq!(r.status, ReleaseStatus::DeployNotStarted, "{:?}", r.error);
    let error = r.error.unwrap();
    assert!(error.contains("source is `payments-api-stg`"), "{error}");
    assert!(error.contains("application `payments-api`"), "{error}");
    assert!(
        gate_calls(&s, "executions/search") >= 2,
        "searched until the timeout"
    );
    assert_eq!(gate_calls(&s, "/pipelines/"), 0);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_deploy_still_running_at_the_timeout_is_timed_out() {
    let s = stack_with(
        StackOptions {
            deploy_timeout_secs: 2,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    s.gate.set_outcome(
        SOURCE,
        Outcome::NeverFinish {
            pipeline: "deploy-staging".into(),
        },
    );
    let r = released(&s, "PAY-204").await;
    assert_eq!(r.status, ReleaseStatus::DeployTimedOut, "{:?}", r.error);
    assert!(r.deploy_started_at.is_some(), "it had started");
    assert!(r.error.unwrap().contains("still RUNNING"));
    s.finish().await.unwrap();
}

#[tokio::test]
async fn several_executions_deploy_when_all_succeed_and_fail_when_one_fails() {
    let s = stack().await;
    s.gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-api".into(), "deploy-worker".into()],
            after: Duration::from_millis(300),
        },
    );
    let r = released(&s, "PAY-205").await;
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    let d = &s.hoist.store.deployments(r.id).await.unwrap()[0];
    assert_eq!(s.hoist.store.executions(d.id).await.unwrap().len(), 2);

    s.gate.set_outcome(
        SOURCE,
        Outcome::Several(vec![
            Outcome::Succeed {
                pipelines: vec!["deploy-api".into()],
                after: Duration::from_millis(100),
            },
            Outcome::FailAt {
                pipeline: "deploy-worker".into(),
                stage: "Wait for healthy".into(),
                after: Duration::from_millis(300),
            },
        ]),
    );
    let r = released(&s, "PAY-206").await;
    assert_eq!(r.status, ReleaseStatus::DeployFailed, "{:?}", r.error);
    assert!(r.error.unwrap().contains("deploy-worker"));
    s.finish().await.unwrap();
}

/// Gate knows no such application, so its search finds nothing: the deploy never starts, and
/// the error names the keys to check.
#[tokio::test]
async fn an_unknown_application_ends_not_started_naming_the_key_to_fix() {
    let s = stack_with(
        StackOptions {
            deploy_start_timeout_secs: 1,
            ..StackOptions::default()
        },
        |c| {
            let env = c.projects[0].environments.get_mut("stg").unwrap();
            env.spinnaker_application = Some("payments-apj".into());
        },
    )
    .await;
    let r = released(&s, "PAY-207").await;
    assert_eq!(r.status, ReleaseStatus::DeployNotStarted, "{:?}", r.error);
    let error = r.error.unwrap();
    assert!(error.contains("application `payments-apj`"), "{error}");
    assert!(error.contains("spinnaker_application"), "{error}");
    assert_eq!(
        s.gate.executions().len(),
        1,
        "the pipeline ran, in its own application"
    );
    s.finish().await.unwrap();
}

/// A Gate whose front refuses unknown applications answers 404: failed at once, not retried.
#[tokio::test]
async fn an_application_gate_refuses_fails_at_once_naming_the_key_to_fix() {
    let s = stack_with(StackOptions::default(), |c| {
        let env = c.projects[0].environments.get_mut("stg").unwrap();
        env.spinnaker_application = Some("payments-apj".into());
    })
    .await;
    s.gate.refuse_unknown_applications();
    let r = released(&s, "PAY-212").await;
    assert_eq!(r.status, ReleaseStatus::DeployFailed, "{:?}", r.error);
    let error = r.error.unwrap();
    assert!(error.contains("spinnaker_application"), "{error}");
    assert!(error.contains("`payments-apj`"), "{error}");
    assert_eq!(
        gate_calls(&s, "executions/search"),
        1,
        "a 404 is not retried"
    );
    s.expect_leftover_jobs(); // the following job failed for good, as it should
    s.finish().await.unwrap();
}

#[tokio::test]
async fn refused_credentials_fail_naming_the_headers() {
    let s = stack().await;
    s.gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: Duration::from_millis(300),
        },
    );
    // The trigger goes through; then Gate starts asking for credentials.
    let commit = s.commit("PAY-208 change");
    let (_, body) = s.assign("PAY-208", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    s.wait_release(id, WAIT, |r| {
        r.status == ReleaseStatus::DeployTriggered || r.status.is_terminal()
    })
    .await
    .unwrap();
    s.gate.require_header("Authorization", "Bearer gate");
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::DeployFailed, "{:?}", r.error);
    assert!(r.error.unwrap().contains("spinnaker.headers"));
    s.expect_leftover_jobs();
    s.finish().await.unwrap();
}

#[tokio::test]
async fn server_errors_and_garbled_answers_are_retried_until_gate_answers() {
    let s = stack().await;
    s.gate.faults().push(Fault::Status(502), 3);
    s.gate.faults().push(
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        1,
    );
    let r = released(&s, "PAY-209").await;
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);

    s.gate.malformed_searches(2);
    let r = released(&s, "PAY-210").await;
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn an_answer_that_stays_garbled_fails_with_its_first_bytes() {
    let s = stack_with(
        StackOptions {
            max_attempts: 3,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    s.gate.malformed_searches(100);
    let r = released(&s, "PAY-211").await;
    assert_eq!(r.status, ReleaseStatus::DeployFailed, "{:?}", r.error);
    let error = r.error.unwrap();
    assert!(error.contains("cannot read as executions"), "{error}");
    assert!(
        error.contains("[{\"id\""),
        "the body's first bytes: {error}"
    );
    s.expect_leftover_jobs();
    s.finish().await.unwrap();
}

/// Gate down while ten releases are being followed: every one reaches its end once Gate is back,
/// each triggered once. The outage lasts 3 s against a retry base of 50 ms: the issue's minute
/// at the production base of 1 s (and far from the 25 attempts that would give up).
#[tokio::test]
async fn gate_down_while_ten_deploys_are_followed_loses_none() {
    let s = stack_with(
        StackOptions {
            retry_base_ms: 50,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    s.gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: Duration::from_millis(500),
        },
    );
    let mut ids = Vec::new();
    for i in 0..10 {
        let commit = s.commit(&format!("PAY-3{i:02} change"));
        let (_, body) = s.assign(&format!("PAY-3{i:02}"), &commit).await.unwrap();
        ids.push(body["release"].as_i64().unwrap());
    }
    for id in &ids {
        s.wait_release(*id, WAIT, |r| {
            r.status == ReleaseStatus::DeployTriggered || r.status == ReleaseStatus::DeployStarted
        })
        .await
        .unwrap();
    }
    s.gate.faults().set_outage(Some(503));
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.gate.faults().set_outage(None);
    for id in ids {
        let r = s
            .wait_release(id, WAIT, |r| r.status.is_terminal())
            .await
            .unwrap();
        assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    }
    assert_eq!(s.gate.triggers().len(), 10, "one trigger each");
    s.finish().await.unwrap();
}

/// The schedule of looks: the first after `poll_min_ms`, doubling up to `poll_max_secs`. With
/// the defaults (1 s, 30 s) a deploy of a minute costs a search and five polls.
#[test]
fn looks_back_off_to_the_maximum() {
    let mut sp = hoist::config::Spinnaker::default();
    let waits: Vec<i64> = (0..8)
        .map(|p| hoist::core::follow::wait_ms(&sp, p))
        .collect();
    assert_eq!(
        waits,
        [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    );
    let mut t = 0;
    let mut looks = 0;
    while t < 61_000 {
        t += hoist::core::follow::wait_ms(&sp, looks);
        looks += 1;
    }
    assert_eq!(looks, 6, "looks at 1, 3, 7, 15, 31 and 61 s");
    sp.poll_max = Duration::from_secs(5);
    assert_eq!(hoist::core::follow::wait_ms(&sp, 7), 5_000);
}
