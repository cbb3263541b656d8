//! `POST /hooks/bitbucket`: Bitbucket Cloud `repo:push` webhooks. Hoist records the tags of its
//! configured families that people push by hand, so that version allocation (which reads
//! `Store::known_tags`) never offers a version someone already took. Other events and other tags
//! are acknowledged with the reason and change nothing else.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::context::Context;
use super::error::ApiError;
use super::hooks::{answer_ignored, delivery, header_str, record};
use super::metrics::marked;
use super::request::{Admitted, admit};
use crate::core::inbound::{self, Ingest};
use crate::domain::Source;
use crate::sources::bitbucket::{self, PUSH_EVENT};
use crate::store::Ingested;

pub async fn push(State(ctx): State<Context>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let Admitted { body, client } =
        admit(&ctx.config, &ctx.config.sources.bitbucket, &parts, body).await?;
    let key = header_str(&parts.headers, "x-request-uuid");
    let event = header_str(&parts.headers, "x-event-key").unwrap_or_default();
    if event != PUSH_EVENT {
        // Bitbucket sends JSON for every event: anything else is not from it (and is not stored).
        crate::sources::parse_json(&body)?;
        let action = inbound::not_a_push(&event, PUSH_EVENT);
        let reason = action.ignored_reason().unwrap_or_default().to_string();
        let delivery = delivery(Source::Bitbucket, key, &event, client, &body);
        let recorded = record(&ctx, Ingest { delivery, action }).await?;
        return Ok(answer_ignored(recorded, &reason));
    }
    let push = bitbucket::parse_push(&body)?;
    let (action, summary) = inbound::push(&push, &ctx.config);
    let ignored = action.ignored_reason().map(str::to_string);
    let delivery = delivery(Source::Bitbucket, key, PUSH_EVENT, client, &body);
    let recorded = record(&ctx, Ingest { delivery, action }).await?;
    if let Some(reason) = ignored {
        return Ok(answer_ignored(recorded, &reason));
    }
    Ok(match recorded {
        Ingested::Duplicate { delivery, .. } => marked(
            (
                StatusCode::OK,
                Json(json!({"delivery": delivery, "duplicate": true})),
            )
                .into_response(),
            "duplicate",
        ),
        other => {
            tracing::info!(project = ?summary.project, tags = summary.recorded.len(), "pushed tags recorded");
            (
                StatusCode::ACCEPTED,
                Json(json!({
                    "delivery": other.delivery(),
                    "project": summary.project,
                    "recorded": summary.recorded,
                    "not_in_a_family": summary.not_in_a_family,
                    "other_changes": push.other_changes,
                })),
            )
                .into_response()
        }
    })
}
