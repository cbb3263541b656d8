//! Tests of the Slack simulator: incoming webhook, `chat.postMessage` and `chat.update`, through
//! reqwest.

use super::*;
use crate::Fault;

const BLOCKS: &str = include_str!("../../../fixtures/slack-incoming-webhook-request-blocks.json");

async fn post_hook(url: &str, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_api(sim: &SlackSim, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", sim.api_url()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn webhook_accepts_text_and_blocks_and_answers_ok() {
    let sim = SlackSim::start(None).await.unwrap();
    assert_eq!(
        post_hook(&sim.webhook_url(), BLOCKS).await,
        (200, "ok".into())
    );
    assert_eq!(
        post_hook(&sim.webhook_url(), r#"{"text": "plain"}"#).await,
        (200, "ok".into())
    );
    let messages = sim.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].via, SlackVia::Webhook);
    assert_eq!(messages[0].text.as_deref(), Some("hello!"));
    assert_eq!(
        messages[0]
            .blocks
            .as_ref()
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(messages[0].ts < messages[1].ts);
}

#[tokio::test]
async fn webhook_errors_are_plain_text_4xx() {
    let sim = SlackSim::start(None).await.unwrap();
    let url = sim.webhook_url();
    assert_eq!(
        post_hook(&url, "not json").await,
        (400, "invalid_payload".into())
    );
    assert_eq!(
        post_hook(&url, r#"{"username": "x"}"#).await,
        (400, "no_text".into())
    );
    let other = url.replace("B00000000", "B99999999");
    assert_eq!(
        post_hook(&other, r#"{"text": "x"}"#).await,
        (404, "no_service".into())
    );
    sim.archive_channel(WEBHOOK_CHANNEL);
    assert_eq!(
        post_hook(&url, r#"{"text": "x"}"#).await,
        (410, "channel_is_archived".into())
    );
    assert!(sim.messages().is_empty());
    assert_eq!(sim.request_count(), 4);
}

#[tokio::test]
async fn webhook_rate_limit_has_retry_after() {
    let sim = SlackSim::start(None).await.unwrap();
    sim.faults().push(
        Fault::RateLimited {
            retry_after_secs: 3,
        },
        1,
    );
    let response = reqwest::Client::new()
        .post(sim.webhook_url())
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(
        post_hook(&sim.webhook_url(), r#"{"text": "x"}"#).await.0,
        200
    );
    sim.faults().push(Fault::Status(503), 1);
    assert_eq!(
        post_hook(&sim.webhook_url(), r#"{"text": "x"}"#).await.0,
        503
    );
}

#[tokio::test]
async fn post_message_threads_and_answers_like_slack() {
    let sim = SlackSim::start(Some("xoxb-1".into())).await.unwrap();
    let (status, root) = post_api(
        &sim,
        Some("xoxb-1"),
        json!({"channel": "C0123456", "text": "root"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(root["ok"], true);
    assert_eq!(root["channel"], "C0123456");
    assert_eq!(root["message"]["text"], "root");
    let root_ts = root["ts"].as_str().unwrap().to_string();
    assert_eq!(root_ts.split('.').nth(1).unwrap().len(), 6);
    let reply = json!({"channel": "C0123456", "text": "reply", "thread_ts": root_ts});
    let (_, reply) = post_api(&sim, Some("xoxb-1"), reply).await;
    assert!(reply["ts"].as_str().unwrap() > root_ts.as_str());
    assert_eq!(reply["message"]["thread_ts"], json!(root_ts));

    let form = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", sim.api_url()))
        .bearer_auth("xoxb-1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("channel=C0123456&text=form")
        .send()
        .await
        .unwrap();
    let form: Value = form.json().await.unwrap();
    assert_eq!(form["ok"], true);

    let messages = sim.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1].thread_ts.as_deref(), Some(root_ts.as_str()));
    assert_eq!(messages[1].via, SlackVia::Bot);
    assert_eq!(messages[2].text.as_deref(), Some("form"));
}

#[tokio::test]
async fn post_message_failures_are_ok_false() {
    let sim = SlackSim::start(Some("xoxb-1".into())).await.unwrap();
    let body = json!({"channel": "C0123456", "text": "x"});
    let cases = [
        (None, body.clone(), "not_authed"),
        (Some("xoxb-2"), body.clone(), "invalid_auth"),
        (
            Some("xoxb-1"),
            json!({"channel": "D1", "text": "x"}),
            "channel_not_found",
        ),
        (Some("xoxb-1"), json!({"text": "x"}), "channel_not_found"),
        (Some("xoxb-1"), json!({"channel": "C0123456"}), "no_text"),
    ];
    for (token, body, error) in cases {
        let (status, answer) = post_api(&sim, token, body).await;
        assert_eq!(
            (status, &answer["ok"], &answer["error"]),
            (200, &json!(false), &json!(error))
        );
    }
    sim.archive_channel("C0123456");
    let (_, answer) = post_api(&sim, Some("xoxb-1"), body.clone()).await;
    assert_eq!(answer["error"], "is_archived");
    sim.set_channels(vec!["C1".into()]);
    let (_, answer) = post_api(&sim, Some("xoxb-1"), json!({"channel": "C2", "text": "x"})).await;
    assert_eq!(answer["error"], "channel_not_found");
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn post_message_rate_limit_is_429_with_retry_after() {
    let sim = SlackSim::start(None).await.unwrap();
    sim.faults().push(
        Fault::RateLimited {
            retry_after_secs: 30,
        },
        1,
    );
    let response = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", sim.api_url()))
        .bearer_auth("any")
        .json(&json!({"channel": "C1", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"ok": false, "error": "ratelimited"}));
    let (status, answer) = post_api(&sim, Some("any"), json!({"channel": "C1", "text": "x"})).await;
    assert_eq!((status, answer["ok"].clone()), (200, json!(true)));
}

async fn update(sim: &SlackSim, token: Option<&str>, body: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{}/chat.update", sim.api_url()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn chat_update_replaces_text_and_blocks() {
    let sim = SlackSim::start(Some("xoxb-1".into())).await.unwrap();
    let blocks = json!([{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Approve prod"}, "value": "r1"}]}]);
    let posted = json!({"channel": "C0123456", "text": "waiting", "blocks": blocks});
    let (_, posted) = post_api(&sim, Some("xoxb-1"), posted).await;
    let ts = posted["ts"].as_str().unwrap().to_string();
    assert!(posted["message"]["blocks"][0]["block_id"].is_string());
    assert_eq!(sim.buttons().len(), 1);

    let sample: Value =
        serde_json::from_str(include_str!("../../../fixtures/slack-chat-update-200.json")).unwrap();
    let answer = update(
        &sim,
        Some("xoxb-1"),
        json!({"channel": "C0123456", "ts": ts, "text": "approved", "blocks": []}),
    )
    .await;
    for key in sample.as_object().unwrap().keys() {
        assert!(answer.get(key).is_some(), "{key} missing from {answer}");
    }
    assert_eq!(
        (
            &answer["ok"],
            &answer["channel"],
            &answer["ts"],
            &answer["text"]
        ),
        (
            &json!(true),
            &json!("C0123456"),
            &json!(ts),
            &json!("approved")
        )
    );
    assert_eq!(answer["message"]["text"], "approved");
    let messages = sim.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text.as_deref(), Some("approved"));
    assert_eq!(messages[0].blocks, None);
    assert!(sim.buttons().is_empty());

    let kept = update(
        &sim,
        None,
        json!({"channel": "C0123456", "ts": ts, "blocks": blocks}),
    );
    assert_eq!(kept.await["error"], "not_authed");
    let form = reqwest::Client::new()
        .post(format!("{}/chat.update", sim.api_url()))
        .bearer_auth("xoxb-1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "channel=C0123456&ts={ts}&blocks={}",
            urlencode(&blocks.to_string())
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.json::<Value>().await.unwrap()["ok"], true);
    assert_eq!(sim.messages()[0].text.as_deref(), Some("approved"));
    assert_eq!(sim.buttons().len(), 1);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn chat_update_failures_are_ok_false() {
    let sim = SlackSim::start(Some("xoxb-1".into())).await.unwrap();
    post_hook(&sim.webhook_url(), r#"{"text": "from the hook"}"#).await;
    let hook_ts = sim.messages()[0].ts.clone();
    let person = sim.post_user_message("C0123456", "hello");
    let sample: Value = serde_json::from_str(include_str!(
        "../../../fixtures/slack-chat-update-error.json"
    ))
    .unwrap();
    let cases = [
        (
            json!({"channel": "C0123456", "ts": "1.000001", "text": "x"}),
            "message_not_found",
        ),
        (
            json!({"channel": "D1", "ts": person, "text": "x"}),
            "channel_not_found",
        ),
        (
            json!({"channel": "C0123456", "ts": person, "text": "x"}),
            "cant_update_message",
        ),
        (
            json!({"channel": WEBHOOK_CHANNEL, "ts": hook_ts, "text": ""}),
            "no_text",
        ),
    ];
    for (body, error) in cases {
        let answer = update(&sim, Some("xoxb-1"), body).await;
        assert_eq!(answer, json!({"ok": false, "error": error}));
    }
    assert_eq!(sample["error"], "cant_update_message");
    let wrong = update(
        &sim,
        Some("xoxb-2"),
        json!({"channel": "C0123456", "ts": person}),
    );
    assert_eq!(wrong.await["error"], "invalid_auth");
    let hook = json!({"channel": WEBHOOK_CHANNEL, "ts": hook_ts, "text": "edited"});
    assert_eq!(update(&sim, Some("xoxb-1"), hook).await["ok"], true);
    assert_eq!(sim.messages()[0].text.as_deref(), Some("edited"));
    assert_eq!(sim.messages()[1].via, SlackVia::User);
}
