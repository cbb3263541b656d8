//! A Slack simulator: an incoming webhook (`200 ok`, plain-text errors with a 4xx) and the Web
//! API's `chat.postMessage` (`200` with `{"ok": false, "error": ...}` on failure), keeping every
//! message posted so tests can read them back.

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Faults, RecordedRequest, SimServer, status_code};

/// The path of the simulator's one incoming webhook.
pub const WEBHOOK_PATH: &str = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
/// The channel the incoming webhook posts to (archive it to get `410 channel_is_archived`).
pub const WEBHOOK_CHANNEL: &str = "C0WEBHOOK1";
const BOT_ID: &str = "B0SIMBOT01";

/// How a message reached the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackVia {
    Webhook,
    Bot,
}

/// A message Slack accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub via: SlackVia,
    /// The channel asked for (`None` through the webhook, whose channel is fixed).
    pub channel: Option<String>,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub thread_ts: Option<String>,
    pub ts: String,
}

#[derive(Default)]
struct SlackState {
    messages: Vec<SlackMessage>,
    known_channels: Option<Vec<String>>,
    archived: HashSet<String>,
    last_ts_micros: i64,
}

struct Shared {
    bot_token: Option<String>,
    state: Mutex<SlackState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, SlackState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SlackState {
    /// A unique, increasing `ts` like `1503435956.000247`.
    fn next_ts(&mut self) -> String {
        let now = chrono::Utc::now().timestamp_micros();
        self.last_ts_micros = now.max(self.last_ts_micros + 1);
        let micros = self.last_ts_micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }

    fn channel_exists(&self, channel: &str) -> bool {
        match &self.known_channels {
            Some(known) => known.iter().any(|c| c == channel),
            None => channel.starts_with('C'),
        }
    }
}

/// The simulator's handle; clones share the server, which stops with the last clone.
#[derive(Clone)]
pub struct SlackSim {
    shared: Arc<Shared>,
    server: SimServer,
}

impl SlackSim {
    /// Starts Slack on `127.0.0.1:0`. With `Some(token)`, `chat.postMessage` wants exactly that
    /// bot token; with `None`, any bearer token is accepted.
    pub async fn start(bot_token: Option<String>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            bot_token,
            state: Mutex::new(SlackState::default()),
        });
        let router = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/services/{*hook}", post(incoming_webhook))
            .fallback(|request: Request| async move {
                if request.uri().path().starts_with("/api/") {
                    Json(json!({"ok": false, "error": "unknown_method"})).into_response()
                } else {
                    text(404, "no_service")
                }
            })
            .with_state(shared.clone());
        let server = SimServer::start(router, Arc::new(error_body)).await?;
        Ok(Self { shared, server })
    }

    /// The incoming webhook's URL.
    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.server.root())
    }

    /// The Web API base, what Hoist's `slack.api_url` should be.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.root())
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.shared.state().messages.clone()
    }

    /// Only these channels exist (by default any id starting with `C` does).
    pub fn set_channels(&self, known: Vec<String>) {
        self.shared.state().known_channels = Some(known);
    }

    /// Archives a channel: posts to it fail with `is_archived` (Web API) or
    /// `410 channel_is_archived` (webhook, whose channel is [`WEBHOOK_CHANNEL`]).
    pub fn archive_channel(&self, name: &str) {
        self.shared.state().archived.insert(name.to_string());
    }

    pub fn faults(&self) -> &Faults {
        &self.server.faults
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.recorder.requests()
    }

    pub fn request_count(&self) -> usize {
        self.server.recorder.count()
    }

    pub fn reset_requests(&self) {
        self.server.recorder.reset()
    }
}

fn text(status: u16, body: &'static str) -> Response {
    (
        status_code(status),
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Injected errors: plain text on the webhook, `{"ok": false}` JSON on the Web API.
fn error_body(status: u16, path: &str) -> Response {
    if path.starts_with("/api/") {
        let error = if status == 429 {
            "ratelimited"
        } else {
            "service_unavailable"
        };
        (
            status_code(status),
            Json(json!({"ok": false, "error": error})),
        )
            .into_response()
    } else if status == 429 {
        text(429, "rate_limited")
    } else if status >= 500 {
        text(status, "internal_error")
    } else {
        text(status, "invalid_payload")
    }
}

async fn incoming_webhook(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.uri().path() != WEBHOOK_PATH {
        return text(404, "no_service");
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
        return text(400, "invalid_payload");
    };
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(&body) else {
        return text(400, "invalid_payload");
    };
    let text_field = payload
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_string);
    let blocks = payload.get("blocks").filter(|b| b.is_array()).cloned();
    if text_field.as_deref().is_none_or(str::is_empty) && blocks.is_none() {
        return text(400, "no_text");
    }
    let mut state = shared.state();
    if state.archived.contains(WEBHOOK_CHANNEL) {
        return text(410, "channel_is_archived");
    }
    let ts = state.next_ts();
    state.messages.push(SlackMessage {
        via: SlackVia::Webhook,
        channel: None,
        text: text_field,
        blocks,
        thread_ts: None,
        ts,
    });
    text(200, "ok")
}

/// `chat.postMessage` arguments, from a JSON or a form-encoded body.
fn arguments(headers: &HeaderMap, body: &Bytes) -> Option<serde_json::Map<String, Value>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut args = serde_json::Map::new();
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = if key == "blocks" {
                serde_json::from_str(&value).unwrap_or(Value::String(value.into_owned()))
            } else {
                Value::String(value.into_owned())
            };
            args.insert(key.into_owned(), value);
        }
        Some(args)
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(args)) => Some(args),
            _ => None,
        }
    }
}

fn api_error(error: &str) -> Response {
    Json(json!({"ok": false, "error": error})).into_response()
}

async fn post_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(args) = arguments(&headers, &body) else {
        return api_error("invalid_json");
    };
    let str_arg = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_string);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| str_arg("token"));
    match (&bearer, &shared.bot_token) {
        (None, _) => return api_error("not_authed"),
        (Some(given), Some(expected)) if given != expected => return api_error("invalid_auth"),
        _ => {}
    }
    let mut state = shared.state();
    let channel = match str_arg("channel") {
        Some(channel) if state.channel_exists(&channel) => channel,
        _ => return api_error("channel_not_found"),
    };
    if state.archived.contains(&channel) {
        return api_error("is_archived");
    }
    let text_arg = str_arg("text");
    let blocks = args.get("blocks").filter(|b| b.is_array()).cloned();
    let has_attachments = args.get("attachments").is_some_and(|a| a.is_array());
    if text_arg.as_deref().is_none_or(str::is_empty) && blocks.is_none() && !has_attachments {
        return api_error("no_text");
    }
    let thread_ts = str_arg("thread_ts");
    let ts = state.next_ts();
    state.messages.push(SlackMessage {
        via: SlackVia::Bot,
        channel: Some(channel.clone()),
        text: text_arg.clone(),
        blocks: blocks.clone(),
        thread_ts: thread_ts.clone(),
        ts: ts.clone(),
    });
    // Shaped like fixtures/slack-chat-postmessage-200.json.
    let mut message = json!({
        "bot_id": BOT_ID,
        "subtype": "bot_message",
        "text": text_arg.unwrap_or_default(),
        "ts": ts,
        "type": "message",
        "username": "Hoist"
    });
    if let Some(blocks) = blocks {
        message["blocks"] = blocks;
    }
    if let Some(thread_ts) = thread_ts {
        message["thread_ts"] = json!(thread_ts);
    }
    (
        StatusCode::OK,
        Json(json!({"ok": true, "channel": channel, "ts": ts, "message": message})),
    )
        .into_response()
}
