//! A Spinnaker Gate simulator for webhook triggers: `POST /webhooks/webhook/{source}` answered
//! as Echo does (`{"eventProcessed": true, "eventId": "<uuid>"}`), errors in Spring Boot's shape,
//! and an optional header requirement for Gates that sit behind authentication.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Faults, RecordedRequest, SimServer, reason, status_code};

/// One webhook trigger Gate accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub source: String,
    /// The body's `parameters` object (`{}` when absent).
    pub parameters: Value,
    pub body: Value,
    pub event_id: String,
}

#[derive(Default)]
struct Shared {
    triggers: Mutex<Vec<Trigger>>,
    required_header: Mutex<Option<(String, String)>>,
}

impl Shared {
    fn triggers(&self) -> MutexGuard<'_, Vec<Trigger>> {
        self.triggers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The simulator's handle; clones share the server, which stops with the last clone.
#[derive(Clone)]
pub struct GateSim {
    shared: Arc<Shared>,
    server: SimServer,
}

impl GateSim {
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/webhooks/webhook/{source}", post(webhook))
            .fallback(|uri: axum::http::Uri| async move {
                spring_error(404, "No message available", uri.path())
            })
            .with_state(shared.clone());
        let server = SimServer::start(
            router,
            Arc::new(|status, path| spring_error(status, reason(status), path)),
        )
        .await?;
        Ok(Self { shared, server })
    }

    /// Gate's base URL, what Hoist's `spinnaker.gate_url` should be.
    pub fn url(&self) -> String {
        self.server.root()
    }

    /// From now on a request without header `name: value` is answered `401`.
    pub fn require_header(&self, name: &str, value: &str) {
        *self
            .shared
            .required_header
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((name.to_string(), value.to_string()));
    }

    /// Every trigger accepted so far, in order.
    pub fn triggers(&self) -> Vec<Trigger> {
        self.shared.triggers().clone()
    }

    pub fn faults(&self) -> &Faults {
        &self.server.faults
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.recorder.requests()
    }

    pub fn request_count(&self) -> usize {
        self.server.recorder.count()
    }

    pub fn reset_requests(&self) {
        self.server.recorder.reset()
    }
}

/// Spring Boot's error body, as Gate answers it.
fn spring_error(status: u16, message: &str, path: &str) -> Response {
    let body = json!({
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "status": status,
        "error": reason(status),
        "message": message,
        "path": path
    });
    (status_code(status), Json(body)).into_response()
}

async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/webhooks/webhook/{source}");
    let required = shared
        .required_header
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some((name, value)) = required {
        let given = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if given != Some(value.as_str()) {
            let message = "Full authentication is required to access this resource";
            return spring_error(401, message, &path);
        }
    }
    if body.is_empty() {
        return spring_error(400, "Required request body is missing", &path);
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return spring_error(400, "JSON parse error: expected a JSON object", &path),
        Err(error) => return spring_error(400, &format!("JSON parse error: {error}"), &path),
    };
    let event_id = uuid::Uuid::new_v4().to_string();
    shared.triggers().push(Trigger {
        source,
        parameters: body.get("parameters").cloned().unwrap_or_else(|| json!({})),
        body,
        event_id: event_id.clone(),
    });
    Json(json!({"eventProcessed": true, "eventId": event_id})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fault;

    const BODY: &str = include_str!("../../fixtures/spinnaker-webhook-trigger-parameters.json");

    async fn send(gate: &GateSim, source: &str, body: &str, auth: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/webhooks/webhook/{source}", gate.url()))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    #[tokio::test]
    async fn accepts_a_trigger_like_echo() {
        let gate = GateSim::start().await.unwrap();
        let (status, answer) = send(&gate, "payments-api-stg", BODY, None).await;
        assert_eq!(status, 200);
        assert_eq!(answer["eventProcessed"], true);
        let event_id = answer["eventId"].as_str().unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(event_id).unwrap().get_version_num(),
            4
        );
        let triggers = gate.triggers();
        assert_eq!(triggers.len(), 1);
        assert_eq!(triggers[0].source, "payments-api-stg");
        assert_eq!(triggers[0].parameters, json!({"stack": "prod"}));
        assert_eq!(triggers[0].event_id, event_id);
        let (_, second) = send(&gate, "payments-api-stg", BODY, None).await;
        assert_ne!(second["eventId"], answer["eventId"]);
    }

    #[tokio::test]
    async fn bad_json_is_a_spring_400() {
        let gate = GateSim::start().await.unwrap();
        let (status, error) = send(&gate, "x", "{not json", None).await;
        assert_eq!(status, 400);
        assert_eq!(error["status"], 400);
        assert_eq!(error["error"], "Bad Request");
        assert_eq!(error["path"], "/webhooks/webhook/x");
        assert!(error["timestamp"].is_i64());
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error")
        );
        assert!(gate.triggers().is_empty());
    }

    #[tokio::test]
    async fn a_required_header_is_enforced() {
        let gate = GateSim::start().await.unwrap();
        gate.require_header("Authorization", "Bearer gate");
        let (status, error) = send(&gate, "x", BODY, None).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (401, Some("Unauthorized"))
        );
        assert_eq!(send(&gate, "x", BODY, Some("Bearer nope")).await.0, 401);
        assert_eq!(send(&gate, "x", BODY, Some("Bearer gate")).await.0, 200);
    }

    #[tokio::test]
    async fn faults_apply_then_triggers_resume() {
        let gate = GateSim::start().await.unwrap();
        gate.faults().push(Fault::Status(502), 2);
        assert_eq!(send(&gate, "x", BODY, None).await.0, 502);
        assert_eq!(send(&gate, "x", BODY, None).await.0, 502);
        assert_eq!(send(&gate, "x", BODY, None).await.0, 200);
        assert_eq!(gate.triggers().len(), 1);
        assert_eq!(gate.request_count(), 3);
        assert_eq!(gate.requests()[2].body, BODY);
        gate.faults().push(Fault::Drop, 1);
        let dropped = reqwest::Client::new()
            .post(format!("{}/webhooks/webhook/x", gate.url()))
            .body(BODY)
            .send()
            .await;
        assert!(dropped.is_err());
        assert_eq!(gate.triggers().len(), 1);
    }
}
