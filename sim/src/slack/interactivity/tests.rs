//! Tests of buttons, clicks and response URLs.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use super::super::{RESPONSE_URL_USES, SlackSim, SlackVia, TEAM_ID, WEBHOOK_CHANNEL};
use super::*;

const VECTOR: &str = include_str!("../../../../fixtures/slack-signature-vector.json");
const MESSAGE_SAMPLE: &str =
    include_str!("../../../../fixtures/slack-block-actions-message-container.json");
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// An app's Request URL that records what it gets and answers `200 ack`.
async fn app() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let router = Router::new()
        .route(
            "/hooks/slack",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, body: String| async move {
                    seen.lock().unwrap().push((headers, body));
                    "ack"
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/slack", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, seen)
}

fn approval_blocks() -> Value {
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "Deploy payments-api 1.4.2 to prod?"}},
        {"type": "actions", "block_id": "approval", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Approve prod"},
             "action_id": "approve", "value": "rel-42", "style": "primary"},
            {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "value": "rel-42"}
        ]}
    ])
}

/// Posts the approval message with `chat.postMessage`; returns its `ts`.
async fn post_approval(sim: &SlackSim, thread_ts: Option<&str>) -> String {
    let mut body =
        json!({"channel": "C0RELEASES", "text": "Approve?", "blocks": approval_blocks()});
    if let Some(thread_ts) = thread_ts {
        body["thread_ts"] = json!(thread_ts);
    }
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", sim.api_url()))
        .bearer_auth("xoxb-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["ts"].as_str().unwrap().to_string()
}

fn payload_of(body: &str) -> Value {
    let (_, json) = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "payload")
        .expect("a payload field");
    serde_json::from_str(&json).unwrap()
}

async fn respond(url: &str, body: Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[test]
fn signature_matches_slacks_published_vector() {
    let vector: Value = serde_json::from_str(VECTOR).unwrap();
    let secret = vector["signing_secret"].as_str().unwrap();
    assert_eq!(secret, SECRET);
    let timestamp = vector["headers"]["X-Slack-Request-Timestamp"]
        .as_str()
        .unwrap();
    let body = vector["body"].as_str().unwrap();
    assert_eq!(
        sign(secret, timestamp, body),
        vector["expected_signature"].as_str().unwrap()
    );
}

#[tokio::test]
async fn buttons_carry_the_ids_slack_generates() {
    let sim = SlackSim::start(None).await.unwrap();
    let ts = post_approval(&sim, None).await;
    let hook = json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Ship?"},
        "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Ship it"}}}]});
    reqwest::Client::new()
        .post(sim.webhook_url())
        .json(&hook)
        .send()
        .await
        .unwrap();
    let buttons = sim.buttons();
    assert_eq!(buttons.len(), 3);
    let (approve, reject, ship) = (&buttons[0], &buttons[1], &buttons[2]);
    assert_eq!(approve.message_ts, ts);
    assert_eq!(approve.channel.as_deref(), Some("C0RELEASES"));
    assert_eq!(
        (approve.block_id.as_str(), approve.action_id.as_str()),
        ("approval", "approve")
    );
    assert_eq!(
        (approve.text.as_str(), approve.value.as_str()),
        ("Approve prod", "rel-42")
    );
    assert!((3..=5).contains(&reject.action_id.len()), "{reject:?}");
    assert_eq!(reject.text, "Reject");
    assert_eq!(ship.channel, None);
    assert!(!ship.block_id.is_empty() && !ship.action_id.is_empty());
    assert_eq!(ship.value, "");
    let blocks = sim.messages()[0].blocks.clone().unwrap();
    let first_id = blocks[0]["block_id"].as_str().unwrap();
    assert!((3..=5).contains(&first_id.len()) && first_id != "approval");
    assert!(blocks[0].get("elements").is_none());
}

#[tokio::test]
async fn a_click_is_a_signed_block_actions_form() {
    let sim = SlackSim::start(Some("xoxb-1".into())).await.unwrap();
    sim.set_channel_name("C0RELEASES", "releases");
    sim.set_user_name("U0APPROVER", "jtorrance");
    let root = post_approval(&sim, None).await;
    let reply = post_approval(&sim, Some(&root)).await;
    let (url, seen) = app().await;
    let button = sim
        .buttons()
        .into_iter()
        .find(|b| b.message_ts == reply)
        .unwrap();
    let answer = sim
        .click(&url, SECRET, &button, "U0APPROVER", ClickOptions::default())
        .await
        .unwrap();
    assert_eq!(answer, (200, "ack".into()));

    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(headers["user-agent"], USER_AGENT);
    let timestamp = headers["x-slack-request-timestamp"].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now - timestamp.parse::<i64>().unwrap()).abs() < 5);
    assert_eq!(
        headers["x-slack-signature"],
        sign(SECRET, timestamp, &body).as_str()
    );
    assert!(headers.get("x-slack-retry-num").is_none());
    assert!(body.starts_with("payload=%7B%22"), "{body}");

    let payload = payload_of(&body);
    let message_sample: Value = serde_json::from_str(MESSAGE_SAMPLE).unwrap();
    for sample in [&*SAMPLE, &message_sample] {
        for key in sample.as_object().unwrap().keys() {
            assert!(payload.get(key).is_some(), "{key} missing");
        }
    }
    assert_eq!(payload["type"], "block_actions");
    assert_eq!(payload["team"], json!({"id": TEAM_ID, "domain": "example"}));
    assert_eq!(
        payload["user"],
        json!({"id": "U0APPROVER", "username": "jtorrance", "name": "jtorrance", "team_id": TEAM_ID})
    );
    assert_eq!(
        payload["container"],
        json!({"type": "message", "message_ts": reply, "channel_id": "C0RELEASES", "is_ephemeral": false})
    );
    assert_eq!(
        payload["channel"],
        json!({"id": "C0RELEASES", "name": "releases"})
    );
    let trigger = payload["trigger_id"].as_str().unwrap();
    assert_eq!(trigger.split('.').count(), 3, "{trigger}");
    let message = &payload["message"];
    assert_eq!(
        (&message["type"], &message["ts"]),
        (&json!("message"), &json!(reply))
    );
    assert_eq!(
        (&message["text"], &message["thread_ts"]),
        (&json!("Approve?"), &json!(root))
    );
    assert_eq!(message["bot_id"], BOT_ID);
    assert_eq!(message["blocks"], sim.messages()[1].blocks.clone().unwrap());
    let response_url = payload["response_url"].as_str().unwrap();
    let prefix = format!(
        "{}/actions/{TEAM_ID}/",
        sim.webhook_url().split("/services").next().unwrap()
    );
    assert!(response_url.starts_with(&prefix), "{response_url}");
    let action = &payload["actions"][0];
    assert_eq!(payload["actions"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&action["action_id"], &action["block_id"]),
        (&json!("approve"), &json!("approval"))
    );
    assert_eq!(
        (&action["value"], &action["style"]),
        (&json!("rel-42"), &json!("primary"))
    );
    assert_eq!(
        action["text"],
        json!({"type": "plain_text", "text": "Approve prod", "emoji": true})
    );
    assert_eq!(
        (&action["type"], action["action_ts"].is_string()),
        (&json!("button"), true)
    );
    let clicks = sim.clicks();
    assert_eq!(clicks.len(), 1);
    assert_eq!(
        (clicks[0].payload.clone(), clicks[0].user_id.as_str()),
        (payload, "U0APPROVER")
    );
}

#[tokio::test]
async fn a_retry_resends_the_same_delivery() {
    let sim = SlackSim::start(None).await.unwrap();
    post_approval(&sim, None).await;
    let (url, seen) = app().await;
    let button = sim.buttons()[0].clone();
    let click = |options| sim.click(&url, SECRET, &button, "U1", options);
    click(ClickOptions::default()).await.unwrap();
    click(ClickOptions::default()).await.unwrap();
    let first = sim.clicks()[0].id;
    let retry = ClickOptions {
        retry: Some((1, RETRY_REASONS[0])),
        same_as: Some(first),
        ..ClickOptions::default()
    };
    assert_eq!(click(retry).await.unwrap().0, 200);
    let stale = ClickOptions {
        timestamp: Some(1_531_420_618),
        ..ClickOptions::default()
    };
    click(stale).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let payloads: Vec<Value> = seen.iter().map(|(_, body)| payload_of(body)).collect();
    assert_ne!(payloads[0]["trigger_id"], payloads[1]["trigger_id"]);
    assert_ne!(payloads[0]["response_url"], payloads[1]["response_url"]);
    assert_eq!(payloads[2], payloads[0]);
    assert_eq!(seen[2].0["x-slack-retry-num"], "1");
    assert_eq!(seen[2].0["x-slack-retry-reason"], "http_timeout");
    assert_eq!(seen[3].0["x-slack-request-timestamp"], "1531420618");
    let signature = sign(SECRET, "1531420618", &seen[3].1);
    assert_eq!(seen[3].0["x-slack-signature"], signature.as_str());
    assert_eq!(sim.clicks().len(), 3);
}

#[tokio::test]
async fn replace_original_updates_messages_and_buttons() {
    let sim = SlackSim::start(None).await.unwrap();
    post_approval(&sim, None).await;
    let (url, _) = app().await;
    let button = sim.buttons()[0].clone();
    sim.click(&url, SECRET, &button, "U1", ClickOptions::default())
        .await
        .unwrap();
    let response_url = sim.clicks()[0].response_url.clone();
    let replaced = json!({"replace_original": true, "text": "Approved by <@U1>",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U1>"}}]});
    assert_eq!(
        respond(&response_url, replaced.clone()).await,
        (200, r#"{"ok":true}"#.into())
    );
    let messages = sim.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text.as_deref(), Some("Approved by <@U1>"));
    assert!(messages[0].blocks.as_ref().unwrap()[0]["block_id"].is_string());
    assert!(sim.buttons().is_empty());
    let responses = sim.responses();
    assert_eq!(responses.len(), 1);
    assert_eq!(
        (responses[0].url.as_str(), responses[0].user_id.as_str()),
        (response_url.as_str(), "U1")
    );
    assert_eq!(
        (responses[0].body.clone(), responses[0].ephemeral),
        (replaced, false)
    );
    let gone = sim
        .click(&url, SECRET, &button, "U1", ClickOptions::default())
        .await;
    assert!(gone.is_err());
}

#[tokio::test]
async fn a_response_url_is_good_for_five_uses() {
    let sim = SlackSim::start(None).await.unwrap();
    post_approval(&sim, None).await;
    let (url, _) = app().await;
    let button = sim.buttons()[0].clone();
    sim.click(&url, SECRET, &button, "U1", ClickOptions::default())
        .await
        .unwrap();
    let response_url = sim.clicks()[0].response_url.clone();
    for n in 0..RESPONSE_URL_USES {
        let answer = respond(&response_url, json!({"text": format!("working {n}")})).await;
        assert_eq!(answer.0, 200);
    }
    let sixth = respond(&response_url, json!({"text": "once more"})).await;
    assert_eq!(sixth, (404, "Expired url".into()));
    let responses = sim.responses();
    assert_eq!(responses.len(), 5);
    assert!(responses.iter().all(|r| r.ephemeral));
    assert_eq!(sim.messages().len(), 1);
}

#[tokio::test]
async fn in_channel_delete_and_refusals() {
    let sim = SlackSim::start(None).await.unwrap();
    reqwest::Client::new()
        .post(sim.webhook_url())
        .json(&json!({"text": "Approve?", "blocks": approval_blocks()}))
        .send()
        .await
        .unwrap();
    let (url, _) = app().await;
    let button = sim.buttons()[0].clone();
    assert_eq!(button.channel, None);
    sim.click(&url, SECRET, &button, "U1", ClickOptions::default())
        .await
        .unwrap();
    let click = sim.clicks()[0].clone();
    assert_eq!(click.payload["channel"]["id"], WEBHOOK_CHANNEL);
    let root = button.message_ts.clone();
    let public = json!({"response_type": "in_channel", "text": "Deploying", "thread_ts": root});
    assert_eq!(respond(&click.response_url, public).await.0, 200);
    let messages = sim.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].via, SlackVia::ResponseUrl);
    assert_eq!(messages[1].thread_ts.as_deref(), Some(root.as_str()));
    assert_eq!(messages[1].channel_id(), WEBHOOK_CHANNEL);

    let refused = respond(&click.response_url, json!({"replace_original": true})).await;
    assert_eq!(refused, (400, "no_text".into()));
    let invalid = reqwest::Client::new()
        .post(&click.response_url)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let unknown = click.response_url.replace("/actions/", "/actions/x");
    assert_eq!(respond(&unknown, json!({"text": "x"})).await.0, 404);

    assert_eq!(
        respond(&click.response_url, json!({"delete_original": true}))
            .await
            .0,
        200
    );
    assert_eq!(sim.messages().len(), 1);
    assert_eq!(sim.messages()[0].text.as_deref(), Some("Deploying"));
    sim.expire_response_urls();
    let expired = respond(&click.response_url, json!({"text": "late"})).await;
    assert_eq!(expired, (404, "Expired url".into()));
    assert_eq!(sim.responses().len(), 2);
}
