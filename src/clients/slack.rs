//! Slack: an incoming webhook (`text` + `blocks`) or a bot token (`chat.postMessage`, threads).
//! This is the one place that knows Slack's message format: a [`Message`] from the core becomes
//! `text` (the notification's fallback) and Block Kit `blocks` in Slack's `mrkdwn`.

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::call::{CallError, http_client, send, status_error, truncate};
use crate::config::{self, SlackTarget};
use crate::core::notify::{Mark, Message, Span};
use crate::metrics::{Metrics, Service};

const SERVICE: &str = "Slack";

/// Slack errors no retry can fix, with what to do about each.
const PERMANENT: &[(&str, &str)] = &[
    (
        "no_service",
        "the incoming webhook was removed or disabled: create a new one and update slack.webhook_url",
    ),
    (
        "invalid_token",
        "slack.bot_token is not valid: reinstall the app and update the token",
    ),
    (
        "invalid_auth",
        "slack.bot_token is not valid: reinstall the app and update the token",
    ),
    ("not_authed", "no Slack token was sent: set slack.bot_token"),
    (
        "account_inactive",
        "the Slack token belongs to a deactivated user or app",
    ),
    (
        "token_revoked",
        "the Slack token was revoked: reinstall the app and update slack.bot_token",
    ),
    (
        "channel_not_found",
        "slack.channel does not exist or the app is not in it: invite the app or fix the channel id",
    ),
    (
        "channel_is_archived",
        "the Slack channel is archived: unarchive it or pick another",
    ),
    (
        "is_archived",
        "the Slack channel is archived: unarchive it or pick another",
    ),
    (
        "not_in_channel",
        "the app is not in slack.channel: invite it",
    ),
    (
        "invalid_payload",
        "Slack refused the message format (a Hoist bug: please report it)",
    ),
    (
        "invalid_blocks",
        "Slack refused the message blocks (a Hoist bug: please report it)",
    ),
    (
        "no_text",
        "Slack refused an empty message (a Hoist bug: please report it)",
    ),
    ("missing_scope", "the Slack app lacks the chat:write scope"),
];

#[derive(Clone)]
pub struct Slack {
    http: reqwest::Client,
    metrics: Metrics,
    target: SlackTarget,
}

#[derive(Deserialize)]
struct PostMessageAnswer {
    ok: bool,
    ts: Option<String>,
    error: Option<String>,
}

impl Slack {
    pub fn new(c: &config::Slack, metrics: &Metrics) -> Self {
        Self {
            http: http_client(c.timeout),
            metrics: metrics.clone(),
            target: c.target.clone(),
        }
    }

    /// Whether messages can thread (bot token mode).
    pub fn threads(&self) -> bool {
        matches!(self.target, SlackTarget::Bot { .. })
    }

    /// Posts a message; with a bot token, in `thread_ts`'s thread when given. Answers the message's
    /// `ts` (bot mode) so the caller can keep it as the release's thread root.
    pub async fn post(
        &self,
        message: &Message,
        thread_ts: Option<&str>,
    ) -> Result<Option<String>, CallError> {
        let (text, blocks) = render(message);
        let (text, blocks) = (text.as_str(), &blocks);
        match &self.target {
            SlackTarget::Webhook(url) => {
                let body = serde_json::json!({"text": text, "blocks": blocks});
                let rb = self.http.post(url.expose()).json(&body);
                let resp = send(&self.metrics, Service::Slack, SERVICE, rb).await?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let answer = resp.text().await.unwrap_or_default();
                if status == StatusCode::OK {
                    return Ok(None);
                }
                Err(classify(status, &headers, answer.trim()))
            }
            SlackTarget::Bot {
                token,
                channel,
                api_url,
            } => {
                let mut body = serde_json::json!({"channel": channel, "text": text, "blocks": blocks, "unfurl_links": false});
                if let Some(ts) = thread_ts {
                    body["thread_ts"] = serde_json::Value::String(ts.to_string());
                }
                let rb = self
                    .http
                    .post(format!("{api_url}/chat.postMessage"))
                    .bearer_auth(token.expose())
                    .json(&body);
                let resp = send(&self.metrics, Service::Slack, SERVICE, rb).await?;
                let status = resp.status();
                let headers = resp.headers().clone();
                if status != StatusCode::OK {
                    let text = resp.text().await.unwrap_or_default();
                    return Err(classify(status, &headers, text.trim()));
                }
                let answer: PostMessageAnswer = resp
                    .json()
                    .await
                    .map_err(|e| CallError::transport(SERVICE, &e))?;
                if answer.ok {
                    Ok(answer.ts)
                } else {
                    let code = answer.error.unwrap_or_else(|| "unknown_error".into());
                    Err(classify(status, &headers, &code))
                }
            }
        }
    }
}

/// Slack's `mrkdwn` for a piece of text: `&`, `<` and `>` escaped, as Slack asks.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn mrkdwn(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => escape(t),
            Span::Strong(t) => format!("*{}*", escape(t)),
            Span::Code(t) => format!("`{}`", escape(t)),
            Span::Link { url, label } => format!("<{}|{}>", escape(url), escape(label)),
        })
        .collect()
}

fn emoji(mark: Mark) -> &'static str {
    match mark {
        Mark::Tagged => ":label:",
        Mark::Reused => ":recycle:",
        Mark::Failed => ":x:",
        Mark::BuildSucceeded => ":white_check_mark:",
        Mark::BuildFailed => ":rotating_light:",
        Mark::Deploy => ":rocket:",
        Mark::Deployed => ":white_check_mark:",
    }
}

/// A message as Slack takes it: the notification text, and Block Kit blocks (a section with the
/// headline, a context line with the release's facts).
pub fn render(m: &Message) -> (String, Value) {
    let emoji = emoji(m.mark);
    let headline = mrkdwn(&m.headline);
    let text = format!("{emoji} {}: {headline}", escape(&m.subject));
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("{emoji} {headline}")}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(&m.context)}]}),
    ];
    if !m.actions.is_empty() {
        let buttons: Vec<Value> = m
            .actions
            .iter()
            .map(|a| {
                json!({
                    "type": "button",
                    "text": {"type": "plain_text", "text": a.label},
                    "action_id": a.kind.id(),
                    "value": a.value(),
                    "style": "primary"
                })
            })
            .collect();
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    (text, Value::Array(blocks))
}

/// Slack's error codes: the permanent ones are never retried; rate limits and server errors are.
fn classify(status: StatusCode, headers: &reqwest::header::HeaderMap, code: &str) -> CallError {
    if let Some((_, fix)) = PERMANENT.iter().find(|(c, _)| *c == code) {
        return CallError::Permanent {
            service: SERVICE,
            status: Some(status.as_u16()),
            message: format!("{code}: {fix}"),
        };
    }
    if code == "ratelimited" || code == "rate_limited" {
        return CallError::Transient {
            service: SERVICE,
            message: code.to_string(),
            retry_after: super::call::retry_after(headers),
        };
    }
    if status == StatusCode::OK {
        // `ok: false` with a code we do not know: treat as transient, Slack documents
        // `internal_error`, `fatal_error`, `service_unavailable` and friends this way.
        return CallError::Transient {
            service: SERVICE,
            message: truncate(code, 100),
            retry_after: None,
        };
    }
    status_error(SERVICE, status, headers, &truncate(code, 100), &|_| None)
}

/// What a clicked message should now say (`response_url` with `replace_original`): its blocks
/// without the buttons, and a line (Slack `mrkdwn`) saying what was done and by whom.
pub fn answered(message: Option<&Value>, note: &str) -> Value {
    let mut blocks: Vec<Value> = message
        .and_then(|m| m.get("blocks"))
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .filter(|b| b.get("type").and_then(Value::as_str) != Some("actions"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}));
    let text = message
        .and_then(|m| m.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    json!({"replace_original": true, "text": text, "blocks": blocks})
}

/// An answer only the clicking user sees (`response_url`, ephemeral), leaving the message as it is.
pub fn told(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": escape(text)})
}

/// Posts an answer to a click's `response_url`.
pub async fn respond(
    http: &reqwest::Client,
    metrics: &Metrics,
    url: &str,
    body: &Value,
) -> Result<(), CallError> {
    let resp = send(metrics, Service::Slack, SERVICE, http.post(url).json(body)).await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(());
    }
    Err(status_error(
        SERVICE,
        status,
        &headers,
        &truncate(&text, 100),
        &|s| {
            (s == StatusCode::NOT_FOUND)
                .then(|| "the click's response_url expired (30 minutes, five answers)".into())
        },
    ))
}
