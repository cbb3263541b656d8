//! Reading a webhook request: peer address, content type, and the body within its limit.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};

use super::MAX_BODY;
use super::error::ApiError;
use crate::app::SourceChecks;
use crate::sources::auth;

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

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("body is larger than {} bytes", MAX_BODY),
    )
}

/// Reads the body, refusing more than [`MAX_BODY`] bytes (413) without buffering beyond it.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_BODY as u64
    {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
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

/// Applies a source's checks: IP allowlist (403), then the credentials it requires (401).
///
/// A source may hold a signing secret, a token, or both. A presented credential must be valid;
/// at least one configured credential must be presented.
pub fn authenticate(
    checks: &SourceChecks,
    client: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
    signature: Option<(&str, SignatureKind)>,
) -> Result<(), ApiError> {
    auth::check_ip(auth::canonical(client), &checks.allow)?;
    let mut passed = false;
    let mut first_error = None;
    if let (Some(secret), Some((name, kind))) = (&checks.secret, signature) {
        let value = headers.get(name).and_then(|v| v.to_str().ok());
        if value.is_some() || checks.token.is_none() {
            let r = match kind {
                SignatureKind::CircleCi => auth::verify_circleci(value, body, secret),
                SignatureKind::Hub => auth::verify_hub(value, name, body, secret),
            };
            match r {
                Ok(()) => passed = true,
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let (Some(token), Some(header_name)) = (&checks.token, &checks.token_header) {
        let presented = headers.get(header_name.as_str()).map(|v| v.as_bytes());
        if presented.is_some() || !passed {
            match auth::verify_token(presented, header_name, token) {
                Ok(()) => passed = true,
                Err(e) => first_error = Some(e),
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    if !passed && (checks.secret.is_some() || checks.token.is_some()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing credentials",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum SignatureKind {
    CircleCi,
    Hub,
}
