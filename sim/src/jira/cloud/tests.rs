//! Tests of the Jira Cloud simulator, through reqwest.

use serde_json::{Value, json};

use super::*;
use crate::Fault;

const EMAIL: &str = "hoist@acme.example";
const TOKEN: &str = "ATATT3xFfGF0-api-token";
const ADD_REQUEST: &str = include_str!("../../../../fixtures/jira-add-comment-request-adf.json");
const ADD_201: &str = include_str!("../../../../fixtures/jira-add-comment-201.json");
const LIST_200: &str = include_str!("../../../../fixtures/jira-get-comments-200.json");
const TRANSITIONS_DOC: &str = include_str!("../../../../fixtures/jira-get-transitions-200.json");
const TRANSITIONS_LIVE: &str =
    include_str!("../../../../fixtures/jira-get-transitions-cloud-capture.json");

async fn jira() -> JiraCloudSim {
    let auth = JiraAuth::Basic {
        user: EMAIL.into(),
        token: TOKEN.into(),
    };
    let sim = JiraCloudSim::start(auth).await.unwrap();
    sim.add_issue("PAY-1", "To Do");
    sim
}

fn url(sim: &JiraCloudSim, issue: &str, what: &str) -> String {
    format!("{}/rest/api/3/issue/{issue}/{what}", sim.base_url())
}

async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    }
    .basic_auth(EMAIL, Some(TOKEN))
    .header("accept", "application/json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn call_json(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let (status, text) = call(method, url, body).await;
    (status, serde_json::from_str(&text).unwrap())
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn comments_are_added_and_listed_in_jiras_shapes() {
    let sim = jira().await;
    let request: Value = serde_json::from_str(ADD_REQUEST).unwrap();
    let (status, added) = call_json(
        "POST",
        &url(&sim, "PAY-1", "comment"),
        Some(request.clone()),
    )
    .await;
    assert_eq!(status, 201);
    let sample: Value = serde_json::from_str(ADD_201).unwrap();
    assert_eq!(keys(&added), keys(&sample));
    assert_eq!(keys(&added["author"]), keys(&sample["author"]));
    assert_eq!(added["body"], request["body"]);
    assert_eq!(added["visibility"], request["visibility"]);
    let issue_id = super::super::issue_id("PAY-1");
    let own = format!(
        "{}/rest/api/3/issue/{issue_id}/comment/{}",
        sim.base_url(),
        added["id"].as_str().unwrap()
    );
    assert_eq!(added["self"], own);
    let created = added["created"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S%.3f%z").is_ok(),
        "{created}"
    );
    assert!(created.ends_with("+0000"), "{created}");

    let second = json!({"body": {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Deployed to prod"}]}]}});
    call("POST", &url(&sim, "PAY-1", "comment"), Some(second.clone())).await;
    call("POST", &url(&sim, "pay-1", "comment"), Some(second.clone())).await;
    assert_eq!(
        sim.comments("PAY-1"),
        vec![
            request["body"].clone(),
            second["body"].clone(),
            second["body"].clone()
        ]
    );

    let (status, page) = call_json("GET", &url(&sim, "PAY-1", "comment"), None).await;
    assert_eq!(status, 200);
    let list_sample: Value = serde_json::from_str(LIST_200).unwrap();
    assert_eq!(keys(&page), keys(&list_sample));
    assert_eq!(
        (&page["startAt"], &page["maxResults"], &page["total"]),
        (&json!(0), &json!(50), &json!(3))
    );
    assert_eq!(page["comments"][0], added);
    let by_id = url(&sim, &issue_id, "comment?startAt=1&maxResults=1");
    let (_, page) = call_json("GET", &by_id, None).await;
    assert_eq!(
        (&page["startAt"], &page["maxResults"], &page["total"]),
        (&json!(1), &json!(1), &json!(3))
    );
    assert_eq!(page["comments"].as_array().unwrap().len(), 1);
    assert_ne!(page["comments"][0]["id"], added["id"]);
}

#[tokio::test]
async fn comments_refused_as_jira_v3_refuses_them() {
    let sim = jira().await;
    let comment = url(&sim, "PAY-1", "comment");
    let not_valid =
        json!({"errorMessages": [], "errors": {"comment": "Comment body is not valid!"}});
    let empty =
        json!({"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}});
    let cases = [
        (json!({"body": "plain v2 text"}), &not_valid),
        (
            json!({"body": {"type": "doc", "version": 2, "content": []}}),
            &not_valid,
        ),
        (
            json!({"body": {"type": "paragraph", "content": []}}),
            &not_valid,
        ),
        (
            json!({"body": {"type": "doc", "version": 1, "content": []}}),
            &empty,
        ),
        (
            json!({"body": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}}),
            &empty,
        ),
        (json!({"visibility": null}), &empty),
    ];
    for (body, expected) in cases {
        assert_eq!(
            call_json("POST", &comment, Some(body)).await,
            (400, expected.clone())
        );
    }
    assert!(sim.comments("PAY-1").is_empty());
    let missing = json!({
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {}
    });
    let adf = serde_json::from_str(ADD_REQUEST).unwrap();
    let unknown = url(&sim, "PAY-404", "comment");
    assert_eq!(
        call_json("POST", &unknown, Some(adf)).await,
        (404, missing.clone())
    );
    assert_eq!(call_json("GET", &unknown, None).await, (404, missing));
    assert!(sim.comments("PAY-404").is_empty());
}

#[tokio::test]
async fn transitions_are_listed_as_jira_lists_them() {
    let sim = jira().await;
    let (status, answer) = call_json("GET", &url(&sim, "PAY-1", "transitions"), None).await;
    assert_eq!(status, 200);
    assert_eq!(answer["expand"], "transitions");
    let transitions = answer["transitions"].as_array().unwrap();
    let names: Vec<&str> = transitions
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Start progress", "Send to QA", "In QA", "Ship it"]);
    let documented: Value = serde_json::from_str(TRANSITIONS_DOC).unwrap();
    let live: Value = serde_json::from_str(TRANSITIONS_LIVE).unwrap();
    let example = &documented["transitions"][0];
    for transition in transitions {
        for key in keys(example).iter().filter(|k| *k != "fields") {
            assert!(
                transition.get(key).is_some(),
                "{key} missing from {transition}"
            );
        }
        assert_eq!(transition["isLooped"], false);
        assert_eq!(keys(&transition["to"]), keys(&example["to"]));
        assert_eq!(
            keys(&transition["to"]["statusCategory"]),
            keys(&example["to"]["statusCategory"])
        );
        assert_eq!(transition["isGlobal"], true);
    }
    let progress = &transitions[0]["to"];
    assert_eq!(progress["statusCategory"], {
        let mut category = live["transitions"][1]["to"]["statusCategory"].clone();
        category["self"] = json!(format!("{}/rest/api/3/statuscategory/4", sim.base_url()));
        category
    });
    assert_eq!(
        (&progress["id"], &progress["name"]),
        (&json!("3"), &json!("In Progress"))
    );
    assert_eq!(
        progress["description"],
        live["transitions"][1]["to"]["description"]
    );
    assert_eq!(transitions[3]["to"]["name"], "Done");
    assert_eq!(transitions[3]["to"]["statusCategory"]["key"], "done");
    assert_eq!(
        transitions[1]["to"]["self"],
        format!("{}/rest/api/3/status/10001", sim.base_url())
    );

    let (_, only) = call_json(
        "GET",
        &url(&sim, "PAY-1", "transitions?transitionId=51"),
        None,
    )
    .await;
    assert_eq!(only["transitions"].as_array().unwrap().len(), 1);
    sim.add_issue("PAY-2", "Done");
    let (_, done) = call_json("GET", &url(&sim, "PAY-2", "transitions"), None).await;
    assert!(
        done["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["to"]["name"] != "Done")
    );
    assert_eq!(done["transitions"][0]["name"], "To Do");
}

#[tokio::test]
async fn a_transition_changes_the_status() {
    let sim = jira().await;
    let transitions = url(&sim, "PAY-1", "transitions");
    let ship = json!({"transition": {"id": "51"}});
    assert_eq!(
        call("POST", &transitions, Some(ship.clone())).await,
        (204, String::new())
    );
    assert_eq!(sim.issue_status("PAY-1").as_deref(), Some("Done"));
    let invalid =
        json!({"errorMessages": ["Transition id '51' is not valid for this issue."], "errors": {}});
    assert_eq!(
        call_json("POST", &transitions, Some(ship)).await,
        (400, invalid)
    );
    let start = json!({"transition": {"id": 21}});
    assert_eq!(call("POST", &transitions, Some(start)).await.0, 204);
    assert_eq!(
        sim.transitions_applied("PAY-1"),
        ["Ship it", "Start progress"]
    );
    assert_eq!(sim.issue_status("PAY-1").as_deref(), Some("In Progress"));

    let missing = call_json("POST", &transitions, Some(json!({"update": {}}))).await;
    assert_eq!(missing.0, 400);
    assert_eq!(
        missing.1["errorMessages"][0],
        "Missing 'transition' identifier"
    );
    let named = call_json(
        "POST",
        &transitions,
        Some(json!({"transition": {"id": "Done"}})),
    )
    .await;
    assert_eq!(
        named.1["errorMessages"][0],
        "'transition' identifier must be an integer"
    );
    let unknown = url(&sim, "PAY-9", "transitions");
    let to_do = json!({"transition": {"id": "11"}});
    assert_eq!(call_json("POST", &unknown, Some(to_do)).await.0, 404);
    assert_eq!(sim.issue_status("PAY-9"), None);
    assert!(sim.transitions_applied("PAY-9").is_empty());
    assert_eq!(sim.transitions_applied("PAY-1").len(), 2);
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_jira_clouds_401s() {
    let sim = jira().await;
    let target = url(&sim, "PAY-1", "transitions");
    let client = reqwest::Client::new();
    let wrong = client
        .get(&target)
        .basic_auth(EMAIL, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.text().await.unwrap(), model::BASIC_REFUSED);
    let json_401 = json!({"message": "Client must be authenticated to access this resource.", "status-code": 401});
    let anonymous = client
        .get(&target)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.json::<Value>().await.unwrap(), json_401);
    let xml = client.get(&target).send().await.unwrap();
    assert_eq!(xml.status(), 401);
    let xml = xml.text().await.unwrap();
    assert!(
        xml.contains("<status-code>401</status-code><message>Client must be authenticated"),
        "{xml}"
    );

    let bearer = JiraCloudSim::start(JiraAuth::Bearer("oauth-token".into()))
        .await
        .unwrap();
    bearer.add_issue("PAY-1", "In QA");
    let target = url(&bearer, "PAY-1", "transitions");
    let ok = client
        .get(&target)
        .bearer_auth("oauth-token")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for request in [
        client.get(&target).bearer_auth("other"),
        client.get(&target).basic_auth(EMAIL, Some(TOKEN)),
    ] {
        let refused = request
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.json::<Value>().await.unwrap(), json_401);
    }
    assert_eq!(bearer.requests().len(), 3);
    assert_eq!(
        bearer.requests()[0].header("authorization"),
        Some("Bearer oauth-token")
    );
}

#[tokio::test]
async fn injected_errors_are_in_jiras_shape() {
    let sim = jira().await;
    sim.faults().push(Fault::Status(503), 1);
    let target = url(&sim, "PAY-1", "comment");
    let expected = json!({"errorMessages": ["Service Unavailable"], "errors": {}});
    assert_eq!(call_json("GET", &target, None).await, (503, expected));
    sim.faults().push(
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        1,
    );
    let limited = reqwest::Client::new()
        .get(&target)
        .basic_auth(EMAIL, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    assert_eq!(call("GET", &target, None).await.0, 200);
    assert_eq!(sim.requests().len(), 3);
    assert_eq!(sim.requests()[0].path, "/rest/api/3/issue/PAY-1/comment");
}
