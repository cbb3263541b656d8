//! The pipeline through Lambda events: answers, and the effects on the simulators, which happen
//! before the answer because Lambda freezes the process after it.

use hoist_cli::stack::REPO;
use hoist_sim::Fault;
use hoist_sim::circleci::sign;

use crate::events::{Req, automation, function_url, http_api, rest_api, schedule};
use crate::harness::{Harness, JIRA_TOKEN, Options, StoreChoice};

/// The CircleCI `job-completed` body for a build of `commit`, and its signature.
fn build_completed(h: &Harness, commit: &str) -> (Vec<u8>, String) {
    let events = h.circleci.build_events(None, commit, "success");
    let (_, payload) = events
        .into_iter()
        .find(|(kind, _)| kind == "job-completed")
        .unwrap();
    let body = serde_json::to_vec(&payload).unwrap();
    let signature = sign(crate::harness::CIRCLECI_SECRET, &body);
    (body, signature)
}

fn ticket(commit: &str, issue: &str, ip: &'static str) -> Req {
    Req::post("/hooks/jira", ip, automation(commit, issue))
        .header("content-type", "application/json")
        .header("x-hoist-token", JIRA_TOKEN)
}

#[tokio::test]
async fn ticket_via_http_api_tags_and_build_via_rest_api_deploys_before_each_answer() {
    let h = Harness::start(Options {
        store: StoreChoice::PostgresIfAvailable,
        allow_ips: vec!["203.0.113.0/24"],
        ..Options::default()
    })
    .await;
    let commit = h.commit("PAY-61 change");

    // HTTP API (payload 2.0), lower-case headers, as API Gateway sends them today.
    let (status, body) = h
        .http(http_api(
            &ticket(&commit, "PAY-61", "203.0.113.9"),
            "$default",
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(body["release"].as_i64().is_some(), "{body}");
    assert!(
        body["status_url"]
            .as_str()
            .unwrap()
            .starts_with("https://hoist.example.com/api/releases/"),
        "{body}"
    );
    // The tag and the Slack message were made inside the invocation.
    let tags = h.bitbucket.tags(REPO);
    assert!(
        tags.iter().any(|(n, c)| n == "stg0.0.1" && c == &commit),
        "{tags:?}"
    );
    assert_eq!(h.slack.messages().len(), 1);

    // REST API (payload 1.0): base64 body, the signature (over the decoded bytes) and event type
    // only in multiValueHeaders, in CircleCI's own letter case.
    let (build, signature) = build_completed(&h, &commit);
    let mut req = Req::post("/hooks/circleci", "34.207.10.2", build.clone())
        .header("CircleCI-Event-Type", "job-completed")
        .header("CircleCI-Signature", signature.clone());
    req.base64 = true;
    let (status, body) = h.http(rest_api(&req, true)).await;
    assert_eq!(status, 202, "{body}");
    let triggers = h.gate.triggers();
    assert_eq!(
        triggers.len(),
        1,
        "Gate was triggered inside the invocation"
    );
    assert_eq!(triggers[0].source, "payments-api-stg");
    assert_eq!(triggers[0].parameters["tag"], "stg0.0.1");
    assert_eq!(triggers[0].parameters["issue"], "PAY-61");

    // The same delivery again changes nothing.
    let (status, body) = h.http(rest_api(&req, true)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], true, "{body}");
    assert_eq!(h.gate.triggers().len(), 1);

    // A signature computed over the base64 text instead of the bytes is refused.
    let mut forged = Req::post("/hooks/circleci", "34.207.10.2", build.clone())
        .header("CircleCI-Event-Type", "job-completed");
    forged.base64 = true;
    let encoded = rest_api(&forged, false)["body"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = forged.header(
        "CircleCI-Signature",
        sign(crate::harness::CIRCLECI_SECRET, encoded.as_bytes()),
    );
    let (status, body) = h.http(rest_api(&forged, false)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    h.assert_no_secret_in_logs();
}

#[tokio::test]
async fn client_address_is_the_request_context_source_ip_never_a_header() {
    let h = Harness::start(Options {
        allow_ips: vec!["192.0.2.0/24"],
        ..Options::default()
    })
    .await;
    let commit = h.commit("PAY-62 change");

    // HTTP API from outside the allowlist, claiming an allowed address in X-Forwarded-For.
    let spoofed = ticket(&commit, "PAY-62", "198.51.100.7").header("x-forwarded-for", "192.0.2.10");
    let (status, body) = h.http(http_api(&spoofed, "$default")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");

    // REST API: the sample's own X-Forwarded-For and sourceIp (192.168.196.186) are refused...
    let (status, body) = h
        .http(rest_api(
            &ticket(&commit, "PAY-62", "192.168.196.186"),
            false,
        ))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(h.bitbucket.tags(REPO).is_empty());

    // ...and an allowed identity.sourceIp is let in; the token header came in Title-Case.
    let req = Req::post("/hooks/jira", "192.0.2.44", automation(&commit, "PAY-62"))
        .header("X-Hoist-Token", JIRA_TOKEN);
    let (status, body) = h.http(rest_api(&req, false)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(h.bitbucket.tags(REPO).len(), 1);
}

#[tokio::test]
async fn function_url_with_a_base64_body_and_wait_answers_with_the_tag() {
    let h = Harness::start(Options::default()).await;
    let commit = h.commit("PAY-63 change");
    let mut req = ticket(&commit, "PAY-63", "123.123.123.123");
    req.base64 = true;
    req.query = "wait=10";
    let (status, body) = h.http(function_url(&req)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["tag"], "stg0.0.1", "{body}");
    assert_eq!(body["commit"], commit.as_str(), "{body}");

    // A named HTTP API stage in the path is not part of the route.
    let mut get = Req::post("/healthz", "123.123.123.123", Vec::new());
    get.method = "GET";
    let (status, body) = h.http(http_api(&get, "prod")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn jobs_left_over_run_on_the_next_scheduled_invocation() {
    // A budget of zero answers at once and leaves every job to later invocations.
    let h = Harness::start(Options {
        job_budget_ms: 0,
        ..Options::default()
    })
    .await;
    let commit = h.commit("PAY-64 change");
    let (status, body) = h
        .http(http_api(
            &ticket(&commit, "PAY-64", "203.0.113.9"),
            "$default",
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        h.bitbucket.tags(REPO).is_empty(),
        "no job ran before the answer"
    );

    let answered = h.invoke(schedule()).await;
    let out = answered.response();
    assert!(out["jobs_run"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(out["stopped"], "queue_empty", "{out}");
    assert!(h.bitbucket.tags(REPO).iter().any(|(n, _)| n == "stg0.0.1"));
    assert_eq!(h.slack.messages().len(), 1);
}

#[tokio::test]
async fn a_failed_trigger_is_retried_by_the_schedule() {
    // The retry is due 1 to 2 s after the failure: well after the invocation has answered.
    let h = Harness::start(Options {
        retry_base_ms: 2_000,
        ..Options::default()
    })
    .await;
    let commit = h.commit("PAY-65 change");
    let (status, _) = h
        .http(http_api(
            &ticket(&commit, "PAY-65", "203.0.113.9"),
            "$default",
        ))
        .await;
    assert_eq!(status, 202);
    // Gate fails the first trigger; its retry is due after the answer, so the schedule sends it.
    h.gate.faults().push(Fault::Status(503), 1);
    let (build, signature) = build_completed(&h, &commit);
    let req = Req::post("/hooks/circleci", "34.207.10.2", build)
        .header("content-type", "application/json")
        .header("circleci-event-type", "job-completed")
        .header("circleci-signature", signature);
    let (status, body) = h.http(http_api(&req, "$default")).await;
    assert_eq!(status, 202, "{body}");
    assert!(h.gate.triggers().is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let out = h.invoke(schedule()).await.response().clone();
    assert!(out["jobs_run"].as_u64().unwrap() >= 1, "{out}");
    let triggers = h.gate.triggers();
    assert_eq!(triggers.len(), 1, "{out}");
    assert_eq!(triggers[0].parameters["tag"], "stg0.0.1");
}
