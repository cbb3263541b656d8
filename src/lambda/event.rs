//! One Lambda invocation: an HTTP event (API Gateway REST or HTTP API, function URL) becomes the
//! axum request `hoist serve` would have received; an EventBridge event runs the jobs left over.
//!
//! lambda_http has already decoded the event: headers are a case-insensitive map that merges
//! `multiValueHeaders`, and a base64 body (`isBase64Encoded`) is decoded, so signatures are checked
//! over the bytes the sender signed. The client address is the event's `requestContext` source IP
//! (never a header), which the handlers see as the socket peer.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde_json::json;
use tower::ServiceExt;

use super::work::{Limits, work_while};
use crate::http::PeerIp;
use crate::worker::Context;

/// A failed invocation, reported to Lambda's `/invocation/{id}/error`.
#[derive(Debug)]
pub struct InvocationError {
    kind: &'static str,
    message: String,
}

impl From<InvocationError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(e: InvocationError) -> Self {
        Self {
            error_type: e.kind.to_string(),
            error_message: e.message,
        }
    }
}

/// Handles one invocation.
pub async fn handle(
    ctx: Context,
    router: Router,
    request: lambda_http::Request,
) -> Result<Response, InvocationError> {
    let started = std::time::Instant::now();
    // Logs inside an invocation carry lambda_runtime's span with the request id.
    let deadline_ms = request
        .lambda_context_ref()
        .map(|c| c.deadline)
        .unwrap_or_default();
    let http = matches!(
        request.request_context_ref(),
        Some(RequestContext::ApiGatewayV1(_) | RequestContext::ApiGatewayV2(_))
    );
    if !http {
        return other_event(&ctx, request, deadline_ms).await;
    }
    let budget = Duration::from_millis(ctx.config.lambda.job_budget_ms);
    let limits = Limits::new(&ctx, deadline_ms, budget);
    let request = to_axum(request);
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let (answer, worked) = work_while(&ctx, limits, router.oneshot(request)).await;
    let answer = answer.unwrap_or_else(|never| match never {});
    tracing::info!(
        %method,
        %path,
        status = answer.status().as_u16(),
        jobs_run = worked.jobs,
        jobs_stopped = ?worked.stopped,
        duration_ms = started.elapsed().as_millis() as u64,
        "invocation answered"
    );
    Ok(answer)
}

/// The request the router serves: the client address from the event, the stage taken off the path.
fn to_axum(request: lambda_http::Request) -> axum::extract::Request {
    let (mut parts, body) = request.into_parts();
    let (ip, path) = match parts.extensions.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => (
            ctx.identity.source_ip.as_deref().and_then(parse_ip),
            // Payload 1.0's `path` is the resource path, without the stage.
            Some(parts.extensions.raw_http_path().to_string()),
        ),
        Some(RequestContext::ApiGatewayV2(ctx)) => (
            ctx.http.source_ip.as_deref().and_then(parse_ip),
            Some(without_stage(
                parts.extensions.raw_http_path(),
                ctx.stage.as_deref(),
            )),
        ),
        _ => (None, None),
    };
    if ip.is_none() {
        tracing::warn!("the event carries no valid source IP: allowlists will refuse it");
    }
    parts
        .extensions
        .insert(PeerIp(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
    if let Some(path) = path.filter(|p| p.starts_with('/')) {
        let target = match parts.uri.query() {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path,
        };
        if let Ok(uri) = target.parse::<Uri>() {
            parts.uri = uri;
        }
    }
    let bytes = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(text) => bytes::Bytes::from(text),
        Body::Binary(data) => bytes::Bytes::from(data),
        other => bytes::Bytes::copy_from_slice(&other),
    };
    axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

/// An HTTP API's raw path starts with the stage unless the stage is `$default`.
fn without_stage(raw: &str, stage: Option<&str>) -> String {
    match stage {
        Some(stage) if !stage.is_empty() && stage != "$default" => {
            let prefix = format!("/{stage}");
            match raw.strip_prefix(&prefix) {
                Some("") => "/".to_string(),
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => raw.to_string(),
            }
        }
        _ => raw.to_string(),
    }
}

/// A non-HTTP event: an EventBridge event (the schedule) runs ready jobs until the deadline.
async fn other_event(
    ctx: &Context,
    request: lambda_http::Request,
    deadline_ms: u64,
) -> Result<Response, InvocationError> {
    let event: serde_json::Value = serde_json::from_slice(request.body()).unwrap_or_default();
    let eventbridge = event.get("detail-type").is_some() && event.get("source").is_some();
    if !eventbridge {
        return Err(InvocationError {
            kind: "Hoist.UnsupportedEvent",
            message: "Hoist handles API Gateway (REST or HTTP API) and function URL requests, and EventBridge schedule events; this event is none of them".into(),
        });
    }
    let started = std::time::Instant::now();
    // Nobody waits for a scheduled invocation: it may use all of the function's time.
    let limits = Limits::new(ctx, deadline_ms, Duration::from_secs(15 * 60));
    let ((), worked) = work_while(ctx, limits, async {}).await;
    let counts = ctx.store.job_counts().await.unwrap_or_default();
    tracing::info!(
        source = event["source"].as_str().unwrap_or(""),
        detail_type = event["detail-type"].as_str().unwrap_or(""),
        jobs_run = worked.jobs,
        jobs_stopped = ?worked.stopped,
        duration_ms = started.elapsed().as_millis() as u64,
        "scheduled invocation done"
    );
    let jobs: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(state, n)| (state.to_string(), json!(n)))
        .collect();
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"jobs_run": worked.jobs, "stopped": worked.stopped, "jobs": jobs}).to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::without_stage;

    #[test]
    fn stage_comes_off_http_api_paths_only_as_a_whole_segment() {
        assert_eq!(
            without_stage("/prod/hooks/jira", Some("prod")),
            "/hooks/jira"
        );
        assert_eq!(
            without_stage("/hooks/jira", Some("$default")),
            "/hooks/jira"
        );
        assert_eq!(
            without_stage("/production/x", Some("prod")),
            "/production/x"
        );
        assert_eq!(without_stage("/prod", Some("prod")), "/");
        assert_eq!(without_stage("/hooks/jira", None), "/hooks/jira");
    }
}
