//! The one mapping from failures to HTTP answers: `{"error": {"code", "message"}}`.
//! User mistakes get a 4xx that says what to fix; anything internal an opaque 500, logged once.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::sources::InputError;
use crate::sources::auth::AuthError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
    /// The query parameter at fault, for a `bad_parameter`.
    pub parameter: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            parameter: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A query parameter out of range, malformed or naming nothing configured: `400`, the
    /// parameter named in the body (`"parameter"`) and in the message.
    pub fn bad_parameter(parameter: &'static str, message: impl Into<String>) -> Self {
        Self {
            parameter: Some(parameter),
            ..Self::new(StatusCode::BAD_REQUEST, "bad_parameter", message)
        }
    }
}

/// An error answer's code, kept on the response (never sent) for the hooks' count
/// ([`super::metrics::count_hooks`]).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(p) = self.parameter {
            error["parameter"] = p.into();
        }
        let body = Json(serde_json::json!({ "error": error }));
        let mut resp = (self.status, body).into_response();
        resp.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

impl From<crate::core::dora::BadParameter> for ApiError {
    fn from(e: crate::core::dora::BadParameter) -> Self {
        Self::bad_parameter(e.parameter, e.message)
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.code, e.message)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            AuthError::Unauthorized(m) => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure while answering a request");
        // Every store failure answers 503 so that the sender retries: nothing was committed.
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "Hoist cannot record the request right now; nothing was stored. Retry later.",
        );
        err.retry_after = Some(5);
        err
    }
}
