//! A Slack simulator: an incoming webhook (`200 ok`, plain-text errors with a 4xx), the Web
//! API's `chat.postMessage` and `chat.update` (`200` with `{"ok": false, "error": ...}` on
//! failure), and interactivity: a person clicking a Block Kit button ([`SlackSim::click`] sends
//! the signed `block_actions` payload Slack sends to an app's Request URL) and the click's
//! `response_url` (`POST /actions/...`), which replaces, deletes or answers the clicked message.
//!
//! Every message accepted is kept ([`SlackSim::messages`], with later updates applied), with the
//! `block_id` Slack gives each block that has none, so that a click carries one.

mod api;
mod interactivity;
mod response_url;
#[cfg(test)]
mod tests;

pub use interactivity::{Button, Click, ClickId, ClickOptions, RETRY_REASONS, USER_AGENT, sign};
pub use response_url::{ActionResponse, RESPONSE_URL_LIFETIME, RESPONSE_URL_USES};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Faults, RecordedRequest, SimServer, status_code};

/// The path of the simulator's one incoming webhook.
pub const WEBHOOK_PATH: &str = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
/// The channel the incoming webhook posts to (archive it to get `410 channel_is_archived`).
pub const WEBHOOK_CHANNEL: &str = "C0WEBHOOK1";
/// The workspace's team id (the one of `fixtures/slack-block-actions-payload.json`).
pub const TEAM_ID: &str = "T9TK3CUKW";
const BOT_ID: &str = "B0SIMBOT01";

/// How a message reached the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackVia {
    Webhook,
    Bot,
    /// An `in_channel` answer posted to a click's `response_url`.
    ResponseUrl,
    /// A person wrote it ([`SlackSim::post_user_message`]); the bot cannot update it.
    User,
}

/// A message Slack accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub via: SlackVia,
    /// The channel asked for (`None` through the webhook, whose channel is fixed).
    pub channel: Option<String>,
    pub text: Option<String>,
    /// The blocks, each with a `block_id` (generated when the poster gave none).
    pub blocks: Option<Value>,
    pub thread_ts: Option<String>,
    pub ts: String,
}

impl SlackMessage {
    /// The channel the message is in (the webhook's own for webhook messages).
    pub fn channel_id(&self) -> &str {
        self.channel.as_deref().unwrap_or(WEBHOOK_CHANNEL)
    }
}

#[derive(Default)]
struct SlackState {
    messages: Vec<SlackMessage>,
    known_channels: Option<Vec<String>>,
    archived: HashSet<String>,
    channel_names: HashMap<String, String>,
    user_names: HashMap<String, String>,
    last_ts_micros: i64,
    clicks: Vec<Click>,
    response_urls: HashMap<String, response_url::Issued>,
    responses: Vec<ActionResponse>,
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

    /// Stores a message, giving its blocks the ids Slack would; returns its `ts`.
    fn store(&mut self, mut message: SlackMessage) -> String {
        message.blocks = message.blocks.map(interactivity::with_ids);
        message.ts = self.next_ts();
        let ts = message.ts.clone();
        self.messages.push(message);
        ts
    }

    fn message_index(&self, channel: &str, ts: &str) -> Option<usize> {
        self.messages
            .iter()
            .position(|m| m.ts == ts && m.channel_id() == channel)
    }
}

/// The simulator's handle; clones share the server, which stops with the last clone.
#[derive(Clone)]
pub struct SlackSim {
    shared: Arc<Shared>,
    server: SimServer,
    client: reqwest::Client,
}

impl SlackSim {
    /// Starts Slack on `127.0.0.1:0`. With `Some(token)`, the Web API wants exactly that bot
    /// token; with `None`, any bearer token is accepted.
    pub async fn start(bot_token: Option<String>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            bot_token,
            state: Mutex::new(SlackState::default()),
        });
        let router = Router::new()
            .route("/api/chat.postMessage", post(api::post_message))
            .route("/api/chat.update", post(api::update_message))
            .route("/services/{*hook}", post(api::incoming_webhook))
            .route("/actions/{*rest}", post(response_url::respond))
            .fallback(|request: Request| async move {
                if request.uri().path().starts_with("/api/") {
                    Json(json!({"ok": false, "error": "unknown_method"})).into_response()
                } else {
                    text(404, "no_service")
                }
            })
            .with_state(shared.clone());
        let server = SimServer::start(router, Arc::new(error_body)).await?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            shared,
            server,
            client,
        })
    }

    /// The incoming webhook's URL.
    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.server.root())
    }

    /// The Web API base, what Hoist's `slack.api_url` should be.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.root())
    }

    /// Every channel message accepted so far, in order, with updates (`chat.update`,
    /// `replace_original`) applied and deleted ones gone. Ephemeral answers are not messages:
    /// see [`SlackSim::responses`].
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.shared.state().messages.clone()
    }

    /// A person posts `text` in `channel` (a message the bot may not update); returns its `ts`.
    pub fn post_user_message(&self, channel: &str, text: &str) -> String {
        self.shared.state().store(SlackMessage {
            via: SlackVia::User,
            channel: Some(channel.to_string()),
            text: Some(text.to_string()),
            blocks: None,
            thread_ts: None,
            ts: String::new(),
        })
    }

    /// Only these channels exist (by default any id starting with `C` does).
    pub fn set_channels(&self, known: Vec<String>) {
        self.shared.state().known_channels = Some(known);
    }

    /// The name click payloads give a channel (by default its id in lower case).
    pub fn set_channel_name(&self, channel: &str, name: &str) {
        let mut state = self.shared.state();
        state.channel_names.insert(channel.into(), name.into());
    }

    /// The `username` click payloads give a user (by default the id in lower case).
    pub fn set_user_name(&self, user_id: &str, username: &str) {
        let mut state = self.shared.state();
        state.user_names.insert(user_id.into(), username.into());
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

/// Injected errors: plain text on the webhook and response URLs, `{"ok": false}` JSON on the
/// Web API.
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
