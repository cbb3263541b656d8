//! What the bot posts: the incoming webhook, `chat.postMessage` and `chat.update`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{BOT_ID, Shared, SlackMessage, SlackVia, WEBHOOK_CHANNEL, WEBHOOK_PATH, text};

pub(super) async fn incoming_webhook(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
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
    state.store(SlackMessage {
        via: SlackVia::Webhook,
        channel: None,
        text: text_field,
        blocks,
        thread_ts: None,
        ts: String::new(),
    });
    text(200, "ok")
}

/// Web API arguments, from a JSON or a form-encoded body.
fn arguments(headers: &HeaderMap, body: &Bytes) -> Option<Map<String, Value>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut args = Map::new();
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = if key == "blocks" || key == "attachments" {
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

fn str_arg(args: &Map<String, Value>, key: &str) -> Option<String> {
    args.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Checks the bot token (an `Authorization: Bearer` header or a `token` argument):
/// `not_authed` without one, `invalid_auth` for another than the one the simulator wants.
fn authorize(shared: &Shared, headers: &HeaderMap, args: &Map<String, Value>) -> Option<Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| str_arg(args, "token"));
    match (&bearer, &shared.bot_token) {
        (None, _) => Some(api_error("not_authed")),
        (Some(given), Some(expected)) if given != expected => Some(api_error("invalid_auth")),
        _ => None,
    }
}

/// The `message` object Slack echoes back, shaped like fixtures/slack-chat-postmessage-200.json.
fn echoed(message: &SlackMessage) -> Value {
    let mut echo = json!({
        "bot_id": BOT_ID,
        "subtype": "bot_message",
        "text": message.text.clone().unwrap_or_default(),
        "ts": message.ts,
        "type": "message",
        "username": "Hoist"
    });
    if let Some(blocks) = &message.blocks {
        echo["blocks"] = blocks.clone();
    }
    if let Some(thread_ts) = &message.thread_ts {
        echo["thread_ts"] = json!(thread_ts);
    }
    echo
}

pub(super) async fn post_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(args) = arguments(&headers, &body) else {
        return api_error("invalid_json");
    };
    if let Some(refused) = authorize(&shared, &headers, &args) {
        return refused;
    }
    let mut state = shared.state();
    let channel = match str_arg(&args, "channel") {
        Some(channel) if state.channel_exists(&channel) => channel,
        _ => return api_error("channel_not_found"),
    };
    if state.archived.contains(&channel) {
        return api_error("is_archived");
    }
    let text_arg = str_arg(&args, "text");
    let blocks = args.get("blocks").filter(|b| b.is_array()).cloned();
    let has_attachments = args.get("attachments").is_some_and(|a| a.is_array());
    if text_arg.as_deref().is_none_or(str::is_empty) && blocks.is_none() && !has_attachments {
        return api_error("no_text");
    }
    let ts = state.store(SlackMessage {
        via: SlackVia::Bot,
        channel: Some(channel.clone()),
        text: text_arg,
        blocks,
        thread_ts: str_arg(&args, "thread_ts"),
        ts: String::new(),
    });
    let message = echoed(state.messages.last().expect("just stored"));
    Json(json!({"ok": true, "channel": channel, "ts": ts, "message": message})).into_response()
}

/// `chat.update`: `channel` and `ts` name the message; `text` and `blocks` replace the ones it
/// has (either may be left out to keep it; an empty `blocks` array removes them). Answers
/// `{"ok": true, "channel", "ts", "text", "message"}` (fixtures/slack-chat-update-200.json), or
/// `channel_not_found`, `message_not_found`, `cant_update_message` (a person's message, see
/// fixtures/slack-chat-update-error.json), `no_text`.
pub(super) async fn update_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(args) = arguments(&headers, &body) else {
        return api_error("invalid_json");
    };
    if let Some(refused) = authorize(&shared, &headers, &args) {
        return refused;
    }
    let mut state = shared.state();
    let channel = match str_arg(&args, "channel") {
        Some(channel) if state.channel_exists(&channel) || channel == WEBHOOK_CHANNEL => channel,
        _ => return api_error("channel_not_found"),
    };
    let ts = str_arg(&args, "ts").unwrap_or_default();
    let Some(index) = state.message_index(&channel, &ts) else {
        return api_error("message_not_found");
    };
    if state.messages[index].via == SlackVia::User {
        return api_error("cant_update_message");
    }
    let text_arg = str_arg(&args, "text");
    let blocks = args.get("blocks").filter(|b| b.is_array()).cloned();
    let has_attachments = args.get("attachments").is_some_and(|a| a.is_array());
    if text_arg.as_deref().is_none_or(str::is_empty) && blocks.is_none() && !has_attachments {
        return api_error("no_text");
    }
    let message = &mut state.messages[index];
    if let Some(text_arg) = text_arg {
        message.text = Some(text_arg);
    }
    if let Some(blocks) = blocks {
        let empty = blocks.as_array().is_some_and(Vec::is_empty);
        message.blocks = (!empty).then(|| super::interactivity::with_ids(blocks));
    }
    let echo = echoed(message);
    let text = message.text.clone().unwrap_or_default();
    Json(json!({"ok": true, "channel": channel, "ts": ts, "text": text, "message": echo}))
        .into_response()
}
