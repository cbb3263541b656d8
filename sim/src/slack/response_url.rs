//! A click's `response_url` (`POST /actions/{team}/{n}/{random}`): the app answers the person
//! who clicked. JSON with `text`, `blocks`, `response_type` (`ephemeral`, the default, or
//! `in_channel`), `replace_original`, `delete_original`, `thread_ts`. A new message without
//! `response_type` is taken as ephemeral (as for slash commands; Slack's legacy attachment
//! buttons defaulted to `in_channel`), so send `response_type` explicitly. Slack answers
//! `200 {"ok": true}`; a URL is good for [`RESPONSE_URL_USES`] uses within
//! [`RESPONSE_URL_LIFETIME`], after which (and for a URL Slack never issued) it answers
//! `404 Expired url` in plain text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, SlackMessage, SlackSim, SlackVia, WEBHOOK_CHANNEL, text};

/// How long a `response_url` stays usable after the click.
pub const RESPONSE_URL_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How many times a `response_url` can be used.
pub const RESPONSE_URL_USES: u32 = 5;

/// One answer posted to a click's `response_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionResponse {
    /// The `response_url` it was posted to.
    pub url: String,
    /// The person who clicked.
    pub user_id: String,
    /// The clicked message.
    pub message_ts: String,
    /// The JSON posted.
    pub body: Value,
    /// Shown only to the person who clicked: not a channel message (a new message with no
    /// `response_type: "in_channel"` and no `replace_original` / `delete_original`).
    pub ephemeral: bool,
}

/// A response URL Slack issued with a click.
pub(super) struct Issued {
    url: String,
    channel: String,
    message_ts: String,
    user_id: String,
    at: Instant,
    uses: u32,
    expired: bool,
}

impl Issued {
    pub(super) fn new(channel: &str, message_ts: &str, user_id: &str, url: &str) -> Self {
        Self {
            url: url.to_string(),
            channel: channel.to_string(),
            message_ts: message_ts.to_string(),
            user_id: user_id.to_string(),
            at: Instant::now(),
            uses: 0,
            expired: false,
        }
    }

    fn usable(&self) -> bool {
        !self.expired && self.uses < RESPONSE_URL_USES && self.at.elapsed() < RESPONSE_URL_LIFETIME
    }
}

impl SlackSim {
    /// Every answer posted to a response URL, in order (ephemeral ones included).
    pub fn responses(&self) -> Vec<ActionResponse> {
        self.shared.state().responses.clone()
    }

    /// Makes every response URL issued so far expire, as 30 minutes would.
    pub fn expire_response_urls(&self) {
        let mut state = self.shared.state();
        state
            .response_urls
            .values_mut()
            .for_each(|u| u.expired = true);
    }
}

pub(super) async fn respond(State(shared): State<Arc<Shared>>, uri: Uri, body: Bytes) -> Response {
    let mut state = shared.state();
    let Some(issued) = state.response_urls.get(uri.path()).filter(|u| u.usable()) else {
        return text(404, "Expired url");
    };
    let (url, channel, message_ts, user_id) = (
        issued.url.clone(),
        issued.channel.clone(),
        issued.message_ts.clone(),
        issued.user_id.clone(),
    );
    let Ok(Value::Object(reply)) = serde_json::from_slice::<Value>(&body) else {
        return text(400, "invalid_payload");
    };
    let flag = |key: &str| reply.get(key).and_then(Value::as_bool).unwrap_or(false);
    let (replace, delete) = (flag("replace_original"), flag("delete_original"));
    let new_text = reply
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_string);
    let blocks = reply.get("blocks").filter(|b| b.is_array()).cloned();
    if !delete && new_text.as_deref().is_none_or(str::is_empty) && blocks.is_none() {
        return text(400, "no_text");
    }
    if let Some(issued) = state.response_urls.get_mut(uri.path()) {
        issued.uses += 1;
    }
    let in_channel = reply.get("response_type").and_then(Value::as_str) == Some("in_channel");
    let index = state.message_index(&channel, &message_ts);
    if delete {
        if let Some(index) = index {
            state.messages.remove(index);
        }
    } else if replace {
        if let Some(index) = index {
            let message = &mut state.messages[index];
            message.text = new_text;
            message.blocks = blocks.map(super::interactivity::with_ids);
        }
    } else if in_channel {
        let thread_ts = reply.get("thread_ts").and_then(Value::as_str);
        state.store(SlackMessage {
            via: SlackVia::ResponseUrl,
            channel: (channel != WEBHOOK_CHANNEL).then(|| channel.clone()),
            text: new_text,
            blocks,
            thread_ts: thread_ts.map(str::to_string),
            ts: String::new(),
        });
    }
    state.responses.push(ActionResponse {
        url,
        user_id,
        message_ts,
        body: Value::Object(reply),
        ephemeral: !(delete || replace || in_channel),
    });
    Json(json!({"ok": true})).into_response()
}
