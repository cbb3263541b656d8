//! Reading a webhook request: who sent it, its content type, its body within the limits, and the
//! source's checks, in the order that spends the least on a caller that fails them.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use crate::config::LimitsConfig;
use crate::config::{Config, SourceAuth};
use crate::sources::auth::{self, Credentials, Presented};
use crate::sources::{InputError, JsonLimits};

/// The socket peer's address, set by the server (connect info) or by the Lambda adapter.
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub IpAddr);

pub fn peer_ip(extensions: &axum::http::Extensions) -> IpAddr {
    if let Some(PeerIp(ip)) = extensions.get::<PeerIp>() {
        return *ip;
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The client address, honouring `X-Forwarded-For` only from trusted proxies.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[ipnet::IpNet]) -> IpAddr {
    let xff = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    auth::client_ip(peer, xff, trusted)
}

/// Whether a request came through a proxy (it carries a forwarding header of any kind).
pub fn is_forwarded(headers: &HeaderMap) -> bool {
    ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h))
}

/// A request that passed its source's checks: the raw body and the client's address.
pub struct Admitted {
    pub body: bytes::Bytes,
    pub client: IpAddr,
}

/// Runs a hook's checks in order: the address (403), the content type (415), the body within its
/// size and time (413, 408), the source's credentials over the raw bytes (401), then the JSON's
/// depth and size (400). Nothing is parsed before the credentials pass.
pub async fn admit(
    config: &Config,
    checks: &SourceAuth,
    parts: &Parts,
    body: Body,
) -> Result<Admitted, ApiError> {
    let limits = &config.server.limits;
    let client = client_ip(
        &parts.headers,
        peer_ip(&parts.extensions),
        &config.server.trusted_proxies,
    );
    auth::check_ip(client, &checks.allow)?;
    require_json(&parts.headers)?;
    let body = read_body(&parts.headers, body, limits).await?;
    auth::check(checks, client, credentials(&parts.headers, checks), &body)?;
    JsonLimits {
        max_depth: limits.json_max_depth,
        max_items: limits.json_max_items,
    }
    .check(&body)
    .map_err(|e: InputError| ApiError::from(e))?;
    Ok(Admitted { body, client })
}

/// The credential headers a source looks at, as presented.
fn credentials<'a>(headers: &'a HeaderMap, checks: &SourceAuth) -> Credentials<'a> {
    let one = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Presented::Absent,
            (Some(v), None) => Presented::One(v.as_bytes()),
            (Some(_), Some(_)) => Presented::Many,
        }
    };
    Credentials {
        signature: one(checks.signature.header()),
        token: checks
            .token_header
            .as_deref()
            .map_or(Presented::Absent, one),
    }
}

/// Refuses anything but a JSON body (415).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type must be application/json (got `{}`)",
                ct.chars().take(80).collect::<String>()
            ),
        ))
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("body is larger than {limit} bytes (server.limits.max_body_bytes)"),
    )
}

/// Reads the body within `limits.max_body_bytes` (413, without buffering beyond it) and
/// `limits.body_timeout_secs` (408), so a slow sender cannot hold a request open.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: &LimitsConfig,
) -> Result<bytes::Bytes, ApiError> {
    let max = limits.max_body_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max as u64
    {
        return Err(too_large(max));
    }
    let read = tokio::time::timeout(limits.body_timeout(), axum::body::to_bytes(body, max));
    let Ok(result) = read.await else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {} s (server.limits.body_timeout_secs)",
                limits.body_timeout_secs
            ),
        ));
    };
    result.map_err(|e| {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large(max);
            }
            src = s.source();
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            "the request body could not be read (truncated?)",
        )
    })
}
