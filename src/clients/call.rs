//! What every client shares: the HTTP client they are built on, and how a failed call is
//! classified (worth a retry or not, with the service's `Retry-After`).

use std::time::Duration;

use reqwest::StatusCode;

use crate::metrics::{Metrics, Service};

/// A failed outbound call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// 429, 5xx, timeouts and connection errors: worth another attempt.
    #[error("{service} is unavailable: {message}")]
    Transient {
        service: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },
    /// An answer that another attempt will not change (401, 403, 404, a refused request).
    #[error("{service}: {message}")]
    Permanent {
        service: &'static str,
        status: Option<u16>,
        message: String,
    },
}

impl CallError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            Self::Permanent { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Permanent { status, .. } => *status,
            Self::Transient { .. } => None,
        }
    }

    pub(crate) fn transport(service: &'static str, e: &reqwest::Error) -> Self {
        let what = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            // reqwest errors name the URL, which may hold a secret (a Slack webhook URL): say only
            // what kind of failure it was.
            "request failed (connection dropped or unreadable answer)".to_string()
        };
        Self::Transient {
            service,
            message: what,
            retry_after: None,
        }
    }
}

/// Sends a request to `service` (named `name` in errors), counting the call in
/// `hoist_outbound_requests_total` with the answer's status, or `error` when none came.
pub(crate) async fn send(
    metrics: &Metrics,
    service: Service,
    name: &'static str,
    rb: reqwest::RequestBuilder,
) -> Result<reqwest::Response, CallError> {
    let sent = rb.send().await;
    metrics.outbound(service, sent.as_ref().ok().map(|r| r.status().as_u16()));
    sent.map_err(|e| CallError::transport(name, &e))
}

/// Builds the shared HTTP client: rustls, a per-request timeout, no redirects to other hosts.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
}

/// Adds the credentials to a request.
pub fn authed(
    rb: reqwest::RequestBuilder,
    auth: &crate::config::HttpAuth,
) -> reqwest::RequestBuilder {
    match auth {
        crate::config::HttpAuth::Bearer(t) => rb.bearer_auth(t.expose()),
        crate::config::HttpAuth::Basic { user, password } => {
            rb.basic_auth(user, Some(password.expose()))
        }
    }
}

/// Reads `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Classifies a non-success status. `fix` says what a person should do for 401/403/404.
pub fn status_error(
    service: &'static str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    detail: &str,
    fix: &dyn Fn(StatusCode) -> Option<String>,
) -> CallError {
    let detail = truncate(detail, 300);
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        CallError::Transient {
            service,
            message: format!("HTTP {}{}", status.as_u16(), sep(&detail)),
            retry_after: retry_after(headers),
        }
    } else {
        let hint = fix(status).map(|h| format!(" ({h})")).unwrap_or_default();
        CallError::Permanent {
            service,
            status: Some(status.as_u16()),
            message: format!("HTTP {}{}{hint}", status.as_u16(), sep(&detail)),
        }
    }
}

fn sep(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
