//! `POST /hooks/bitbucket`: Bitbucket Cloud `repo:push` webhooks. Hoist records the tags of its
//! configured families that people push by hand, so that version allocation (which reads
//! `Store::known_tags`) never offers a version someone already took. Other events and other tags
//! are acknowledged with the reason and change nothing else.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::hooks::{delivery, header_str, ignored};
use super::request::{Admitted, admit};
use crate::app::App;
use crate::config::ProjectConfig;
use crate::pipeline::version::{TagScheme, Version};
use crate::sources::bitbucket::{self, PUSH_EVENT};
use crate::sources::quote;
use crate::store::{Ingested, PushedTag};

pub async fn push(State(app): State<App>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let Admitted { body, client } = admit(&app, &app.bitbucket_source, &parts, body).await?;
    let key = header_str(&parts.headers, "x-request-uuid");
    let event = header_str(&parts.headers, "x-event-key").unwrap_or_default();
    if event != PUSH_EVENT {
        // Bitbucket sends JSON for every event: anything else is not from it (and is not stored).
        crate::sources::parse_json(&body)?;
        let reason = format!("event `{}` is not {PUSH_EVENT}", quote(&event));
        let d = delivery("bitbucket", key, &event, client, &body);
        let r = app
            .store
            .ingest_delivery(d, &format!("ignored: {reason}"), None, 0)
            .await?;
        return Ok(ignored(r, &reason));
    }
    let push = bitbucket::parse_push(&body)?;
    let d = delivery("bitbucket", key, PUSH_EVENT, client, &body);
    let Some(project) = app.config.project_by_repo(&push.repository) else {
        let reason = format!("no project has repository `{}`", quote(&push.repository));
        let r = app
            .store
            .ingest_delivery(d, &format!("ignored: {reason}"), None, 0)
            .await?;
        return Ok(ignored(r, &reason));
    };
    let (family, others) = family_tags(project, &push.tags);
    let names: Vec<&str> = family.iter().map(|t| t.name.as_str()).collect();
    let outcome = format!(
        "push to {}: {} tag(s) of {}'s families recorded{}",
        push.repository,
        family.len(),
        project.name,
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    );
    let recorded: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let r = app.store.ingest_push(d, &outcome, family).await?;
    Ok(match r {
        Ingested::Duplicate { delivery_id, .. } => (
            StatusCode::OK,
            Json(json!({"delivery": delivery_id, "duplicate": true})),
        )
            .into_response(),
        other => {
            let delivery_id = match other {
                Ingested::Ignored { delivery_id } => Some(delivery_id),
                _ => None,
            };
            tracing::info!(project = %project.name, tags = recorded.len(), "pushed tags recorded");
            (
                StatusCode::ACCEPTED,
                Json(json!({
                    "delivery": delivery_id,
                    "project": project.name,
                    "recorded": recorded,
                    "not_in_a_family": others,
                    "other_changes": push.other_changes,
                })),
            )
                .into_response()
        }
    })
}

/// Splits pushed tags into those of one of the project's environment families (with their
/// version) and the others (by name).
fn family_tags(
    project: &ProjectConfig,
    tags: &[bitbucket::PushedTag],
) -> (Vec<PushedTag>, Vec<String>) {
    let schemes: Vec<(&String, TagScheme)> = project
        .environments
        .iter()
        .filter_map(|(name, env)| {
            TagScheme::new(&env.tag, env.bump, env.patch_rollover)
                .ok()
                .map(|s| (name, s))
        })
        .collect();
    let mut family = Vec::new();
    let mut others = Vec::new();
    for tag in tags {
        let found = schemes.iter().find_map(|(env, scheme)| {
            scheme
                .parse_tag(&tag.name)
                .filter(storable)
                .map(|v| (env, v))
        });
        match found {
            Some((env, version)) => family.push(PushedTag {
                project: project.name.clone(),
                env: env.to_string(),
                name: tag.name.clone(),
                commit: tag.commit.clone(),
                version,
            }),
            None => others.push(quote(&tag.name)),
        }
    }
    (family, others)
}

/// The store keeps version numbers as signed 64-bit integers.
fn storable(v: &Version) -> bool {
    [v.major, v.minor, v.patch]
        .iter()
        .all(|n| *n <= i64::MAX as u64)
}
