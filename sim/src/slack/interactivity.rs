//! A person clicking a button: the `block_actions` payload Slack posts to an app's Request URL,
//! signed with the app's signing secret, and the ids Slack gives blocks and buttons that have
//! none.

#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use anyhow::Context;
use axum::http::header;
use rand::Rng;
use serde_json::{Value, json};

use super::{BOT_ID, SlackMessage, SlackSim, SlackState, TEAM_ID};

/// Slack's documented example of a click (fixtures/slack-block-actions-payload.json); every
/// click is built from it.
static SAMPLE: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../../fixtures/slack-block-actions-payload.json"
    ))
    .expect("fixtures/slack-block-actions-payload.json is JSON")
});

/// The `User-Agent` of Slack's requests to an app.
pub const USER_AGENT: &str = "Slackbot 1.0 (+https://api.slack.com/robots)";

/// The `X-Slack-Retry-Reason` values Slack documents for the deliveries it retries (Events API):
/// no answer within 3 seconds, too many redirects, no connection, a TLS error, a non-2xx answer,
/// anything else.
pub const RETRY_REASONS: [&str; 6] = [
    "http_timeout",
    "too_many_redirects",
    "connection_failed",
    "ssl_error",
    "http_error",
    "unknown_error",
];

/// `X-Slack-Signature` for a request: `v0=` and the hex HMAC-SHA256, under the app's signing
/// secret, of `v0:{X-Slack-Request-Timestamp}:{raw body}`.
pub fn sign(signing_secret: &str, timestamp: &str, body: &str) -> String {
    let base = format!("v0:{timestamp}:{body}");
    format!(
        "v0={}",
        crate::sign::hmac_sha256_hex(signing_secret, base.as_bytes())
    )
}

/// A button in a message the simulator holds, as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub message_ts: String,
    /// The message's channel (`None` for a message of the incoming webhook).
    pub channel: Option<String>,
    pub thread_ts: Option<String>,
    pub block_id: String,
    pub action_id: String,
    /// The button's `value` (empty when it has none).
    pub value: String,
    /// The button's label.
    pub text: String,
}

/// One click Slack delivered, to resend it as Slack's retry would ([`ClickOptions::same_as`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClickId(usize);

/// A click as delivered the first time.
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    pub id: ClickId,
    pub user_id: String,
    /// The `block_actions` payload (the JSON inside the form's `payload` field).
    pub payload: Value,
    /// The click's `response_url`.
    pub response_url: String,
}

/// How to deliver a click.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClickOptions {
    /// `X-Slack-Request-Timestamp` to send (and sign) instead of now, e.g. a stale one.
    pub timestamp: Option<i64>,
    /// Adds `X-Slack-Retry-Num` and `X-Slack-Retry-Reason` (one of [`RETRY_REASONS`]).
    pub retry: Option<(u32, &'static str)>,
    /// Resends this earlier delivery's payload unchanged (same `trigger_id`, `action_ts`,
    /// `response_url`) instead of building a new click; the button is then ignored. With
    /// `retry`, this is what a redelivery by Slack looks like (Slack documents its retry headers
    /// for the Events API; they let a test check that Hoist handles a click only once).
    pub same_as: Option<ClickId>,
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/// A short random id like the ones Slack generates (`=qXel`, `WaXA`, `VlQco`).
fn random_id(rng: &mut impl Rng) -> String {
    let len = rng.random_range(3..=5);
    (0..len)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect()
}

fn alphanumeric(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| ID_ALPHABET[rng.random_range(0..62)] as char)
        .collect()
}

/// Gives every block without a `block_id`, and every interactive element without an
/// `action_id`, a generated one, as Slack does when it stores a message.
pub(super) fn with_ids(mut blocks: Value) -> Value {
    let mut rng = rand::rng();
    let Some(list) = blocks.as_array_mut() else {
        return blocks;
    };
    let mut taken: Vec<String> = list
        .iter()
        .filter_map(|b| b["block_id"].as_str().map(str::to_string))
        .collect();
    for block in list.iter_mut().filter(|b| b.is_object()) {
        if !block["block_id"].is_string() {
            let id = std::iter::repeat_with(|| random_id(&mut rng))
                .find(|id| !taken.contains(id))
                .expect("an unused id");
            taken.push(id.clone());
            block["block_id"] = json!(id);
        }
        if let Some(elements) = block.get_mut("elements").and_then(Value::as_array_mut) {
            elements
                .iter_mut()
                .for_each(|e| give_action_id(e, &mut rng));
        }
        if let Some(accessory) = block.get_mut("accessory") {
            give_action_id(accessory, &mut rng);
        }
    }
    blocks
}

/// An interactive element (not an image, not text) without an `action_id` gets one.
fn give_action_id(element: &mut Value, rng: &mut impl Rng) {
    let kind = element["type"].as_str().unwrap_or("image");
    let interactive = !matches!(kind, "image" | "plain_text" | "mrkdwn");
    if interactive && element.is_object() && !element["action_id"].is_string() {
        element["action_id"] = json!(random_id(rng));
    }
}

/// The buttons of a block: an `actions` block's button elements, or a button accessory.
fn block_buttons(block: &Value) -> impl Iterator<Item = &Value> {
    let elements = match block["type"].as_str() {
        Some("actions") => block["elements"].as_array().map(|e| e.iter()),
        _ => None,
    };
    elements
        .into_iter()
        .flatten()
        .chain(block.get("accessory"))
        .filter(|e| e["type"] == "button")
}

fn message_buttons(message: &SlackMessage) -> impl Iterator<Item = Button> + '_ {
    let blocks = message.blocks.as_ref().and_then(Value::as_array);
    blocks.into_iter().flatten().flat_map(move |block| {
        block_buttons(block).map(move |element| Button {
            message_ts: message.ts.clone(),
            channel: message.channel.clone(),
            thread_ts: message.thread_ts.clone(),
            block_id: block["block_id"].as_str().unwrap_or_default().to_string(),
            action_id: element["action_id"].as_str().unwrap_or_default().into(),
            value: element["value"].as_str().unwrap_or_default().to_string(),
            text: element["text"]["text"].as_str().unwrap_or_default().into(),
        })
    })
}

/// `{secs}.{micros}` of now, as `action_ts` is written.
fn now_ts() -> String {
    let micros = chrono::Utc::now().timestamp_micros();
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// The clicked button as the payload's `actions[0]` gives it: its `text` (with `emoji` as Slack
/// adds it), `value` and `style` if it has them.
fn action_json(button: &Button, element: &Value) -> Value {
    let mut action = json!({
        "action_id": button.action_id,
        "block_id": button.block_id,
        "text": element["text"],
        "type": "button",
        "action_ts": now_ts()
    });
    if element["text"]["type"] == "plain_text" && element["text"].get("emoji").is_none() {
        action["text"]["emoji"] = json!(true);
    }
    for key in ["value", "style"] {
        if let Some(v) = element.get(key) {
            action[key] = v.clone();
        }
    }
    action
}

/// The clicked message as the payload's `message` gives it.
fn message_json(message: &SlackMessage) -> Value {
    let mut echo = json!({
        "type": "message",
        "ts": message.ts,
        "text": message.text.clone().unwrap_or_default(),
        "bot_id": BOT_ID
    });
    if let Some(blocks) = &message.blocks {
        echo["blocks"] = blocks.clone();
    }
    if let Some(thread_ts) = &message.thread_ts {
        echo["thread_ts"] = json!(thread_ts);
    }
    echo
}

impl SlackState {
    /// Builds the payload of a new click on `button` by `user_id`, and issues its response URL.
    fn new_click(&mut self, root: &str, button: &Button, user_id: &str) -> anyhow::Result<Click> {
        let channel = button
            .channel
            .clone()
            .unwrap_or_else(|| super::WEBHOOK_CHANNEL.to_string());
        let index = self
            .message_index(&channel, &button.message_ts)
            .with_context(|| format!("no message {} in {channel}", button.message_ts))?;
        let message = &self.messages[index];
        let blocks = message.blocks.as_ref().and_then(Value::as_array);
        let element = blocks
            .into_iter()
            .flatten()
            .filter(|b| b["block_id"] == button.block_id.as_str())
            .flat_map(block_buttons)
            .find(|e| e["action_id"] == button.action_id.as_str())
            .with_context(|| format!("message {} has no such button", message.ts))?;
        let mut rng = rand::rng();
        let action = action_json(button, element);
        let echo = message_json(message);
        let response_url = format!(
            "{root}/actions/{TEAM_ID}/{}/{}",
            rng.random_range(1_000_000_000_000u64..10_000_000_000_000),
            alphanumeric(&mut rng, 24)
        );
        let trigger_id = format!(
            "{}.{}.{}",
            rng.random_range(1_000_000_000_000u64..10_000_000_000_000),
            rng.random_range(100_000_000_000u64..1_000_000_000_000),
            hex::encode(rng.random::<[u8; 16]>())
        );
        let username = self
            .user_names
            .get(user_id)
            .cloned()
            .unwrap_or_else(|| user_id.to_lowercase());
        let channel_name = self
            .channel_names
            .get(&channel)
            .cloned()
            .unwrap_or_else(|| channel.to_lowercase());
        let mut payload = SAMPLE.clone();
        payload["user"] =
            json!({"id": user_id, "username": username, "name": username, "team_id": TEAM_ID});
        payload["container"] = json!({
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel,
            "is_ephemeral": false
        });
        payload["trigger_id"] = json!(trigger_id);
        payload["channel"] = json!({"id": channel, "name": channel_name});
        payload["message"] = echo;
        payload["response_url"] = json!(response_url);
        payload["actions"] = json!([action]);
        let path = url::Url::parse(&response_url)?.path().to_string();
        let issued =
            super::response_url::Issued::new(&channel, &message.ts, user_id, &response_url);
        self.response_urls.insert(path, issued);
        let click = Click {
            id: ClickId(self.clicks.len()),
            user_id: user_id.to_string(),
            payload,
            response_url,
        };
        self.clicks.push(click.clone());
        Ok(click)
    }
}

impl SlackSim {
    /// Every button of every message held now (updates applied), in message order.
    pub fn buttons(&self) -> Vec<Button> {
        let state = self.shared.state();
        state.messages.iter().flat_map(message_buttons).collect()
    }

    /// Every click delivered by [`SlackSim::click`], first deliveries only, in order.
    pub fn clicks(&self) -> Vec<Click> {
        self.shared.state().clicks.clone()
    }

    /// `user_id` clicks `button`: sends what Slack sends to the app's Request URL
    /// (`request_url`): a `POST` with `Content-Type: application/x-www-form-urlencoded`, the body
    /// `payload=<block_actions JSON>`, `X-Slack-Request-Timestamp`, `X-Slack-Signature` (see
    /// [`sign`]) and Slack's `User-Agent`. Returns the app's status and body. Each new click
    /// gets its own `trigger_id`, `action_ts` and `response_url` (valid for
    /// [`RESPONSE_URL_USES`](super::RESPONSE_URL_USES) uses within
    /// [`RESPONSE_URL_LIFETIME`](super::RESPONSE_URL_LIFETIME)); errs if the button is no longer
    /// in its message.
    pub async fn click(
        &self,
        request_url: &str,
        signing_secret: &str,
        button: &Button,
        user_id: &str,
        options: ClickOptions,
    ) -> anyhow::Result<(u16, String)> {
        let payload = {
            let mut state = self.shared.state();
            match options.same_as {
                Some(ClickId(n)) => state
                    .clicks
                    .get(n)
                    .context("no such click")?
                    .payload
                    .clone(),
                None => {
                    state
                        .new_click(&self.server.root(), button, user_id)?
                        .payload
                }
            }
        };
        let json = serde_json::to_string(&payload)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &json)
            .finish();
        let timestamp = options
            .timestamp
            .unwrap_or_else(|| chrono::Utc::now().timestamp())
            .to_string();
        let mut request = self
            .client
            .post(request_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::USER_AGENT, USER_AGENT)
            .header("X-Slack-Request-Timestamp", &timestamp)
            .header("X-Slack-Signature", sign(signing_secret, &timestamp, &body));
        if let Some((number, reason)) = options.retry {
            request = request
                .header("X-Slack-Retry-Num", number.to_string())
                .header("X-Slack-Retry-Reason", reason);
        }
        let response = request
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {request_url}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer of {request_url}"))?;
        Ok((status, text))
    }
}
