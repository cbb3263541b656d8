//! Tests of the Gate simulator through reqwest on loopback: triggers as Echo answers them, the
//! executions they start as Orca plays them out, searches, faults.

use std::time::Duration;

use super::*;
use crate::Fault;

const BODY: &str = include_str!("../../../fixtures/spinnaker-webhook-trigger-parameters.json");
const EXECUTION: &str = include_str!("../../../fixtures/spinnaker-execution-succeeded.json");
const SOURCE: &str = "payments-api-stg";

async fn send(gate: &GateSim, source: &str, body: &str, auth: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/webhooks/webhook/{source}", gate.url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Triggers `source`, answers the event id.
async fn trigger(gate: &GateSim, source: &str) -> String {
    let (status, answer) = send(gate, source, BODY, None).await;
    assert_eq!(status, 200, "{answer}");
    answer["eventId"].as_str().unwrap().to_string()
}

async fn get(gate: &GateSim, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{}{path}", gate.url())).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// What Hoist asks: the webhook executions of `event` in `app`.
fn search_path(app: &str, event: &str) -> String {
    format!("/applications/{app}/executions/search?triggerTypes=webhook&eventId={event}")
}

/// A search that must answer `200` with an array.
async fn search(gate: &GateSim, app: &str, event: &str) -> Vec<Value> {
    let (status, body) = get(gate, &search_path(app, event)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn execution(gate: &GateSim, id: &str) -> Value {
    let (status, body) = get(gate, &format!("/pipelines/{id}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn stage_statuses(e: &Value) -> Vec<(String, String)> {
    e["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn accepts_a_trigger_like_echo() {
    let gate = GateSim::start().await.unwrap();
    let (status, answer) = send(&gate, SOURCE, BODY, None).await;
    assert_eq!(status, 200);
    assert_eq!(answer["eventProcessed"], true);
    let event_id = answer["eventId"].as_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(event_id).unwrap().get_version_num(),
        4
    );
    let triggers = gate.triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].source, SOURCE);
    assert_eq!(triggers[0].parameters, json!({"stack": "prod"}));
    assert_eq!(triggers[0].event_id, event_id);
    let (_, second) = send(&gate, SOURCE, BODY, None).await;
    assert_ne!(second["eventId"], answer["eventId"]);
}

#[tokio::test]
async fn bad_json_is_a_spring_400() {
    let gate = GateSim::start().await.unwrap();
    let (status, error) = send(&gate, "x", "{not json", None).await;
    assert_eq!(status, 400);
    assert_eq!(error["status"], 400);
    assert_eq!(error["error"], "Bad Request");
    assert_eq!(error["path"], "/webhooks/webhook/x");
    assert!(error["timestamp"].is_i64());
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error")
    );
    assert!(gate.triggers().is_empty());
    assert!(gate.executions().is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_required_header_is_enforced() {
    let gate = GateSim::start().await.unwrap();
    gate.require_header("Authorization", "Bearer gate");
    let (status, error) = send(&gate, "x", BODY, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("Unauthorized"))
    );
    assert_eq!(send(&gate, "x", BODY, Some("Bearer nope")).await.0, 401);
    assert_eq!(send(&gate, "x", BODY, Some("Bearer gate")).await.0, 200);
}

#[tokio::test]
async fn faults_apply_then_triggers_resume() {
    let gate = GateSim::start().await.unwrap();
    gate.faults().push(Fault::Status(502), 2);
    assert_eq!(send(&gate, "x", BODY, None).await.0, 502);
    assert_eq!(send(&gate, "x", BODY, None).await.0, 502);
    assert_eq!(send(&gate, "x", BODY, None).await.0, 200);
    assert_eq!(gate.triggers().len(), 1);
    assert_eq!(gate.request_count(), 3);
    assert_eq!(gate.requests()[2].body, BODY);
    gate.faults().push(Fault::Drop, 1);
    let dropped = reqwest::Client::new()
        .post(format!("{}/webhooks/webhook/x", gate.url()))
        .body(BODY)
        .send()
        .await;
    assert!(dropped.is_err());
    assert_eq!(gate.triggers().len(), 1);
}

/// The fixture is a real Orca execution; ours carries the same fields Hoist and Deck read.
#[tokio::test]
async fn an_execution_has_the_fields_of_a_real_one() {
    let real: Value = serde_json::from_str(EXECUTION).unwrap();
    assert_eq!(real["type"], "PIPELINE");
    assert_eq!(real["status"], "SUCCEEDED");
    let gate = GateSim::start().await.unwrap();
    let event = trigger(&gate, SOURCE).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let found = search(&gate, "*", &event).await;
    let ours = execution(&gate, found[0]["id"].as_str().unwrap()).await;
    let fields = [
        "type",
        "id",
        "application",
        "name",
        "status",
        "buildTime",
        "startTime",
        "endTime",
        "canceled",
        "stages",
        "trigger",
        "pipelineConfigId",
        "authentication",
        "origin",
    ];
    let has = |v: &Value, keys: &[&str]| -> Vec<String> {
        keys.iter()
            .filter(|k| v.get(**k).is_some())
            .map(|k| k.to_string())
            .collect()
    };
    assert_eq!(has(&ours, &fields), has(&real, &fields));
    assert_eq!(has(&ours, &fields).len(), fields.len());
    let stage_fields = [
        "id",
        "refId",
        "type",
        "name",
        "status",
        "startTime",
        "endTime",
    ];
    for stage in ours["stages"].as_array().unwrap() {
        assert_eq!(
            has(stage, &stage_fields),
            has(&real["stages"][0], &stage_fields)
        );
    }
    let trigger_fields = ["type", "eventId", "parameters", "user"];
    assert_eq!(
        has(&ours["trigger"], &trigger_fields),
        has(&real["trigger"], &trigger_fields)
    );
    // Each field has the fixture's JSON type.
    for f in fields {
        let kind = |v: &Value| std::mem::discriminant(v);
        assert_eq!(
            kind(&ours[f]),
            kind(&real[f]),
            "{f}: {} vs {}",
            ours[f],
            real[f]
        );
    }
    assert_eq!(ours["id"].as_str().unwrap().len(), 26);
    assert_eq!(ours["origin"], "api");
    assert_eq!(ours["application"], "payments-api");
    assert_eq!(ours["name"], "deploy");
    assert_eq!(
        ours["trigger"],
        json!({
            "type": "webhook",
            "source": SOURCE,
            "user": "[anonymous]",
            "parameters": {"stack": "prod"},
            "eventId": event,
            "payload": serde_json::from_str::<Value>(BODY).unwrap(),
            "artifacts": [],
            "notifications": [],
            "rebake": false,
            "dryRun": false,
            "strategy": false,
            "resolvedExpectedArtifacts": [],
            "expectedArtifacts": [],
            "executionId": ours["id"],
            "enabled": false,
            "preferred": false
        })
    );
}

#[tokio::test]
async fn a_trigger_is_found_by_its_event_running_then_succeeded() {
    let gate = GateSim::start().await.unwrap();
    gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: Duration::from_millis(300),
        },
    );
    let event = trigger(&gate, SOURCE).await;
    let other = trigger(&gate, SOURCE).await; // another event, another execution
    tokio::time::sleep(Duration::from_millis(50)).await;
    let found = search(&gate, "payments-api", &event).await;
    assert_eq!(found.len(), 1, "only this event's execution");
    let e = &found[0];
    assert_eq!(e["trigger"]["eventId"], event.as_str());
    assert_eq!(e["status"], "RUNNING");
    assert!(e["startTime"].as_i64().unwrap() > e["buildTime"].as_i64().unwrap());
    assert!(e["endTime"].is_null());
    assert_eq!(e["stages"][0]["tasks"], json!([]), "not expanded");
    let id = e["id"].as_str().unwrap().to_string();
    assert_ne!(search(&gate, "payments-api", &other).await[0]["id"], id);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let found = search(&gate, "payments-api", &event).await;
    assert_eq!(found[0]["status"], "SUCCEEDED");
    let end = found[0]["endTime"].as_i64().unwrap();
    assert_eq!(end - found[0]["buildTime"].as_i64().unwrap(), 300);
    let one = execution(&gate, &id).await;
    assert_eq!(
        (
            one["id"].as_str(),
            one["status"].as_str(),
            one["endTime"].as_i64()
        ),
        (Some(id.as_str()), Some("SUCCEEDED"), Some(end))
    );
    assert_eq!(one["trigger"], found[0]["trigger"]);
    assert_eq!(
        one["stages"][1]["tasks"][0]["status"], "SUCCEEDED",
        "expanded"
    );
    assert!(
        stage_statuses(&one).iter().all(|(_, s)| s == "SUCCEEDED"),
        "{one}"
    );
    assert_eq!(gate.final_answers().len(), 1, "the other was not looked at");
    assert_eq!(gate.executions().len(), 2);
    let (_, wrong_type) = get(
        &gate,
        &format!(
            "/applications/payments-api/executions/search?triggerTypes=pubsub&eventId={event}"
        ),
    )
    .await;
    assert_eq!(wrong_type, "[]");
}

#[tokio::test]
async fn an_unknown_execution_is_a_spring_404() {
    let gate = GateSim::start().await.unwrap();
    let (status, body) = get(&gate, "/pipelines/01NOPE").await;
    assert_eq!(status, 404);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "Not Found");
    assert_eq!(error["message"], "No execution found for id 01NOPE");
    assert_eq!(error["path"], "/pipelines/01NOPE");
}

#[tokio::test]
async fn several_pipelines_are_all_found_newest_first() {
    let gate = GateSim::start().await.unwrap();
    gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec![
                "deploy-api".into(),
                "deploy-worker".into(),
                "deploy-cron".into(),
            ],
            after: Duration::from_millis(50),
        },
    );
    let event = trigger(&gate, SOURCE).await;
    let found = search(&gate, "payments-api", &event).await;
    let names: Vec<&str> = found.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["deploy-cron", "deploy-worker", "deploy-api"]);
    let builds: Vec<i64> = found
        .iter()
        .map(|e| e["buildTime"].as_i64().unwrap())
        .collect();
    assert!(builds.windows(2).all(|w| w[0] > w[1]), "{builds:?}");
    let ids: Vec<&str> = found.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    // Orca's paging: the oldest first, from an index, a page at a time.
    let (_, page) = get(
        &gate,
        &format!(
            "{}&reverse=true&startIndex=1&size=1",
            search_path("*", &event)
        ),
    )
    .await;
    let page: Vec<Value> = serde_json::from_str(&page).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["name"], "deploy-worker");
    let (_, named) = get(
        &gate,
        &format!("{}&pipelineName=deploy-api", search_path("*", &event)),
    )
    .await;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&named).unwrap().len(), 1);
    let (status, _) = get(&gate, &format!("{}&size=0", search_path("*", &event))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_trigger_that_matches_no_pipeline_is_never_found() {
    let gate = GateSim::start().await.unwrap();
    gate.set_outcome(SOURCE, Outcome::NoPipeline);
    let event = trigger(&gate, SOURCE).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        get(&gate, &search_path("*", &event)).await,
        (200, "[]".into())
    );
    assert_eq!(
        get(&gate, &search_path("payments-api", &event)).await,
        (200, "[]".into())
    );
    assert!(gate.executions().is_empty());
    assert_eq!(gate.triggers().len(), 1, "Echo accepted it all the same");
}

#[tokio::test]
async fn a_failing_pipeline_ends_terminal_at_its_stage() {
    let gate = GateSim::start().await.unwrap();
    gate.set_outcome(
        SOURCE,
        Outcome::FailAt {
            pipeline: "deploy-staging".into(),
            stage: "Wait for healthy".into(),
            after: Duration::from_millis(100),
        },
    );
    let event = trigger(&gate, SOURCE).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let found = search(&gate, "payments-api", &event).await;
    let e = execution(&gate, found[0]["id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "TERMINAL");
    assert_eq!(e["canceled"], false);
    assert_eq!(
        stage_statuses(&e),
        pairs(&[
            (BAKE, "SUCCEEDED"),
            (DEPLOY, "SUCCEEDED"),
            ("Wait for healthy", "TERMINAL"),
            (SMOKE_TEST, "NOT_STARTED"),
        ])
    );
    let failed = &e["stages"][2];
    assert!(failed["endTime"].as_i64().unwrap() <= e["endTime"].as_i64().unwrap());
    assert!(e["stages"][3]["startTime"].is_null());
}

#[tokio::test]
async fn other_ends_and_a_pipeline_that_never_ends() {
    let gate = GateSim::start().await.unwrap();
    gate.set_outcome(
        "billing-stg",
        Outcome::EndAs {
            pipeline: "deploy".into(),
            status: "CANCELED".into(),
            after: Duration::from_millis(30),
        },
    );
    gate.set_outcome(
        "ledger-stg",
        Outcome::NeverFinish {
            pipeline: "deploy".into(),
        },
    );
    let canceled = trigger(&gate, "billing-stg").await;
    let forever = trigger(&gate, "ledger-stg").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = &search(&gate, "billing", &canceled).await[0];
    assert_eq!(
        (c["status"].as_str(), c["canceled"].as_bool()),
        (Some("CANCELED"), Some(true))
    );
    let f = &search(&gate, "ledger", &forever).await[0];
    assert_eq!(f["status"], "RUNNING");
    assert!(f["endTime"].is_null());
    assert_eq!(
        stage_statuses(f),
        pairs(&[
            (BAKE, "SUCCEEDED"),
            (DEPLOY, "RUNNING"),
            (SMOKE_TEST, "NOT_STARTED")
        ])
    );
    assert_eq!(gate.final_answers().len(), 1, "only the canceled one ended");
}

#[tokio::test]
async fn outcomes_are_per_source_with_a_default() {
    let gate = GateSim::start().await.unwrap();
    // The default: one pipeline, `deploy`, SUCCEEDED 100 ms after the trigger.
    let event = trigger(&gate, "anything-stg").await;
    tokio::time::sleep(Duration::from_millis(130)).await;
    let found = search(&gate, "anything", &event).await;
    assert_eq!(
        (found[0]["name"].as_str(), found[0]["status"].as_str()),
        (Some("deploy"), Some("SUCCEEDED"))
    );
    gate.set_default_outcome(Outcome::NoPipeline);
    gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: Duration::ZERO,
        },
    );
    let none = trigger(&gate, "anything-stg").await;
    let one = trigger(&gate, SOURCE).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(search(&gate, "*", &none).await.is_empty());
    let found = search(&gate, "*", &one).await;
    assert_eq!(
        (found[0]["name"].as_str(), found[0]["status"].as_str()),
        (Some("deploy-staging"), Some("SUCCEEDED"))
    );
}

#[tokio::test]
async fn applications_unknown_any_and_others() {
    assert_eq!(application_of_source("payments-api-stg"), "payments-api");
    assert_eq!(application_of_source("payments"), "payments");
    let gate = GateSim::start().await.unwrap();
    gate.set_source_application("ledger-prod", "ledger-core");
    let payments = trigger(&gate, SOURCE).await;
    let ledger = trigger(&gate, "ledger-prod").await;
    // `*` finds each; an application finds only its own executions.
    assert_eq!(search(&gate, "*", &payments).await.len(), 1);
    assert_eq!(
        search(&gate, "*", &ledger).await[0]["application"],
        "ledger-core"
    );
    assert!(search(&gate, "ledger-core", &payments).await.is_empty());
    assert!(search(&gate, "payments-api", &ledger).await.is_empty());
    let (_, every) = get(&gate, "/applications/*/executions/search").await;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&every).unwrap().len(), 2);

    // Gate without authorization: an unknown application has no pipelines, so nothing.
    assert!(search(&gate, "billing", &payments).await.is_empty());
    // With Fiat: refused.
    gate.set_unknown_applications(UnknownApplications::Forbidden);
    let (status, body) = get(&gate, &search_path("billing", &payments)).await;
    assert_eq!(status, 403, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["message"], "Access is denied");
    // Behind a front that refuses unknown names.
    gate.refuse_unknown_applications();
    let (status, body) = get(&gate, &search_path("billing", &payments)).await;
    assert_eq!(status, 404, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["message"], "Application not found: billing");
    assert_eq!(error["path"], "/applications/billing/executions/search");
    // Known: set, added, or with executions; `*` always.
    gate.add_application("billing");
    assert!(search(&gate, "billing", &payments).await.is_empty());
    gate.set_application("orders");
    assert!(search(&gate, "orders", &payments).await.is_empty());
    assert_eq!(search(&gate, "payments-api", &payments).await.len(), 1);
    assert_eq!(search(&gate, "*", &payments).await.len(), 1);
    // The application set for all applies to the sources without their own.
    let orders = trigger(&gate, "orders-api-stg").await;
    assert_eq!(search(&gate, "orders", &orders).await.len(), 1);
}

#[tokio::test]
async fn faults_apply_to_searches_and_executions() {
    let gate = GateSim::start().await.unwrap();
    let event = trigger(&gate, SOURCE).await;
    gate.faults().push(Fault::Status(503), 1);
    gate.faults().push(
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        1,
    );
    let (status, body) = get(&gate, &search_path("payments-api", &event)).await;
    assert_eq!(status, 503);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (error["error"].as_str(), error["path"].as_str()),
        (
            Some("Service Unavailable"),
            Some("/applications/payments-api/executions/search")
        )
    );
    let response = reqwest::get(format!("{}{}", gate.url(), search_path("*", &event)))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let found = search(&gate, "payments-api", &event).await;
    let id = found[0]["id"].as_str().unwrap().to_string();

    gate.faults().push(Fault::Status(502), 1);
    assert_eq!(get(&gate, &format!("/pipelines/{id}")).await.0, 502);
    gate.faults().push(Fault::Drop, 1);
    assert!(
        reqwest::get(format!("{}/pipelines/{id}", gate.url()))
            .await
            .is_err()
    );
    gate.faults().set_outage(Some(503));
    assert_eq!(get(&gate, &format!("/pipelines/{id}")).await.0, 503);
    gate.faults().set_outage(None);
    assert_eq!(execution(&gate, &id).await["id"], id.as_str());

    // Every GET was recorded, query included.
    let gets: Vec<RecordedRequest> = gate
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 7);
    assert_eq!(
        gets[0].query.as_deref(),
        Some(format!("triggerTypes=webhook&eventId={event}").as_str())
    );
}

#[tokio::test]
async fn reads_need_the_header_too() {
    let gate = GateSim::start().await.unwrap();
    let event = trigger(&gate, SOURCE).await;
    let id = search(&gate, "*", &event).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    gate.require_header("Authorization", "Bearer gate");
    let (status, error) = get(&gate, "/applications/*/executions/search").await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(get(&gate, &format!("/pipelines/{id}")).await.0, 401);
    let response = reqwest::Client::new()
        .get(format!("{}/pipelines/{id}", gate.url()))
        .header("Authorization", "Bearer gate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn the_next_searches_can_be_cut_off() {
    let gate = GateSim::start().await.unwrap();
    let event = trigger(&gate, SOURCE).await;
    gate.malformed_searches(2);
    for _ in 0..2 {
        let (status, cut) = get(&gate, &search_path("payments-api", &event)).await;
        assert_eq!(status, 200);
        assert!(cut.starts_with("[{\"id\": \"01"), "{cut}");
        assert!(serde_json::from_str::<Value>(&cut).is_err());
    }
    let found = search(&gate, "payments-api", &event).await;
    assert_eq!(found.len(), 1);
    // Reads of one execution are not cut.
    gate.malformed_searches(1);
    execution(&gate, found[0]["id"].as_str().unwrap()).await;
    assert!(
        get(&gate, &search_path("*", &event))
            .await
            .1
            .starts_with("[{\"id\"")
    );
    assert_eq!(search(&gate, "*", &event).await.len(), 1);
}
