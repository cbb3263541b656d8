//! `POST /hooks/slack`: clicks on the buttons in a release's thread (SPEC 13). The request is
//! checked (address, form body, Slack's v0 signature within five minutes) before anything is
//! read; each click becomes a promotion or an approval ([`crate::requests`]) and Slack gets its
//! answer at the click's `response_url` (the message updated, or the user alone told why
//! nothing changed), as jobs, so that Slack has its `200` within its three seconds.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::context::Context;
use super::error::ApiError;
use super::hooks::header_str;
use super::request::{client_ip, peer_ip, read_body};
use crate::clients::slack::{answered, told};
use crate::core::job::Job;
use crate::core::notify::{Action, ActionKind};
use crate::core::plan::Changes;
use crate::domain::{Via, now_ms};
use crate::requests::{self, Promoted, Refused};
use crate::sources::auth::check_ip;
use crate::sources::signature::verify_slack;
use crate::sources::slack::{Click, parse};

pub async fn hook(State(ctx): State<Context>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let src = &ctx.config.sources.slack;
    let client = client_ip(
        &parts.headers,
        peer_ip(&parts.extensions),
        &ctx.config.server.trusted_proxies,
    );
    check_ip(client, &src.allow)?;
    require_form(&parts.headers)?;
    let body = read_body(&parts.headers, body, &ctx.config.server.limits).await?;
    let Some(secret) = &src.signing_secret else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint refuses every request: set sources.slack.signing_secret (the Slack app's Signing Secret)",
        ));
    };
    verify_slack(
        header_str(&parts.headers, "x-slack-request-timestamp").as_deref(),
        header_str(&parts.headers, "x-slack-signature").as_deref(),
        &body,
        secret,
        now_ms() / 1000,
    )?;
    let clicks = parse(&body)?;
    let retry = parts.headers.contains_key("x-slack-retry-num");
    let mut answers = Changes::default();
    for click in &clicks {
        if let Some((body, url)) = act(&ctx, click, retry).await? {
            answers = answers.job(Job::respond(
                &url,
                body,
                uuid::Uuid::new_v4().simple().to_string(),
            ));
        }
    }
    if !answers.jobs.is_empty() {
        ctx.store.apply(answers).await?;
    }
    ctx.wake.notify_one();
    Ok(StatusCode::OK.into_response())
}

/// Refuses anything but Slack's form body (415).
fn require_form(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Slack interactions are application/x-www-form-urlencoded with a payload field",
        ))
    }
}

/// Carries one click out; answers what to post at its `response_url` (nothing for a click Slack
/// retried that changed nothing the first time round).
async fn act(
    ctx: &Context,
    click: &Click,
    retry: bool,
) -> Result<Option<(serde_json::Value, String)>, ApiError> {
    let Some(url) = click.response_url.clone() else {
        return Ok(None);
    };
    let Some((kind, release, env)) = Action::parse(&click.action_id, &click.value) else {
        return Ok(Some((told("This button is not one of Hoist's."), url)));
    };
    let user = &click.user;
    let (store, config) = (&ctx.store, &*ctx.config);
    let answer = match kind {
        ActionKind::Promote => {
            match requests::promote(store, config, release, &env, user, Via::Slack).await {
                Ok(Promoted::Started) => answered(
                    click.message.as_ref(),
                    &format!(":arrow_up: Promotion to {env} started by <@{user}>"),
                ),
                Ok(Promoted::Already(_)) if retry => return Ok(None),
                Ok(Promoted::Already(_)) => told(&format!(
                    "Release {release} is already going to {env} (or there)."
                )),
                Err(e) => refusal(e)?,
            }
        }
        ActionKind::Approve => {
            match requests::approve(store, config, release, &env, user, Via::Slack).await {
                Ok(a) if !a.counted && retry => return Ok(None),
                Ok(a) if !a.counted => told(&format!(
                    "You approved release {release} for {env} already: an approval counts once."
                )),
                Ok(a) => {
                    let then = match a.promoted {
                        Some(_) => "; promotion started",
                        None => "",
                    };
                    answered(
                        click.message.as_ref(),
                        &format!(":heavy_check_mark: Approved for {env} by <@{user}>{then}"),
                    )
                }
                Err(e) => refusal(e)?,
            }
        }
    };
    Ok(Some((answer, url)))
}

/// A refusal told to the user alone; a store failure answers 503, so that Slack retries.
fn refusal(e: Refused) -> Result<serde_json::Value, ApiError> {
    match e {
        Refused::NotFound(m) | Refused::NotPromotable(m) | Refused::NotApprover(m) => {
            Ok(told(&format!("Nothing changed: {m}.")))
        }
        Refused::Store(e) => Err(e.into()),
    }
}
