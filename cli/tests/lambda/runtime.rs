//! The process as Lambda runs it: `bootstrap`, start-up failures, unsupported events, the store.

use std::time::Duration;

use serde_json::json;

use crate::events::{Req, http_api};
use crate::harness::{Harness, Options, StoreChoice};
use hoist_sim::lambda::Outcome;

fn healthz() -> serde_json::Value {
    let mut get = Req::post("/healthz", "203.0.113.9", Vec::new());
    get.method = "GET";
    http_api(&get, "$default")
}

#[tokio::test]
async fn bootstrap_without_a_store_runs_stateless_and_says_what_is_lost() {
    let h = Harness::start(Options {
        bootstrap: true,
        store: StoreChoice::Unset,
        ..Options::default()
    })
    .await;
    let (status, body) = h.http(healthz()).await;
    assert_eq!(status, 200, "{body}");
    let logs = h.logs();
    assert!(logs.contains("running stateless"), "{logs}");
    assert!(logs.contains("redelivery"), "{logs}");
    // The scratch store is in the instance's temporary directory.
    let scratch = std::fs::read_dir(h.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("hoist-lambda-"));
    assert!(scratch, "no scratch store in TMPDIR");
    h.assert_no_secret_in_logs();
}

#[tokio::test]
async fn an_sqlite_store_is_said_to_be_per_instance() {
    let h = Harness::start(Options::default()).await;
    let (status, _) = h.http(healthz()).await;
    assert_eq!(status, 200);
    let logs = h.logs();
    assert!(
        logs.contains("belongs to this Lambda instance only"),
        "{logs}"
    );
}

#[tokio::test]
async fn an_unsupported_event_fails_that_invocation_only() {
    let h = Harness::start(Options::default()).await;
    let answered = h
        .invoke(json!({"Records": [{"eventSource": "aws:sqs", "body": "hello"}]}))
        .await;
    match answered.outcome {
        Outcome::Error(e) => {
            assert_eq!(e.body["errorType"], "Hoist.UnsupportedEvent", "{e:?}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let (status, _) = h.http(healthz()).await;
    assert_eq!(status, 200, "the runtime goes on after a failed invocation");
    let requests = h.api.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with("/error") && r.path.contains("/invocation/"))
    );
}

#[tokio::test]
async fn a_configuration_that_cannot_load_is_an_init_error() {
    let mut h = Harness::start(Options {
        missing_secret: true,
        ..Options::default()
    })
    .await;
    let error = h
        .api
        .init_error(Duration::from_secs(30))
        .await
        .expect("an init error");
    assert_eq!(error.error_type.as_deref(), Some("Hoist.InitError"));
    let message = error.body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("sources.jira.token") && message.contains("HOIST_JIRA_TOKEN"),
        "{message}"
    );
    let status = h.exit(Duration::from_secs(10)).await.expect("hoist exits");
    assert!(!status.success());
}

#[tokio::test]
async fn trace_logs_hold_no_secret() {
    let h = Harness::start(Options {
        log: Some("trace"),
        ..Options::default()
    })
    .await;
    let commit = h.commit("PAY-66 change");
    let req = Req::post(
        "/hooks/jira",
        "203.0.113.9",
        crate::events::automation(&commit, "PAY-66"),
    )
    .header("content-type", "application/json")
    .header("x-hoist-token", crate::harness::JIRA_TOKEN);
    let (status, body) = h.http(http_api(&req, "$default")).await;
    assert_eq!(status, 202, "{body}");
    assert!(h.logs().contains("TRACE"), "logs are at TRACE");
    h.assert_no_secret_in_logs();
}
