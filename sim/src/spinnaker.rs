//! A Spinnaker Gate simulator: webhook triggers (`POST /webhooks/webhook/{source}`, answered as
//! Echo does: `{"eventProcessed": true, "eventId": "<uuid>"}`), the executions they start played
//! out in time (`GET /applications/{app}/executions/search`, `GET /pipelines/{id}`, in Orca's
//! shape), errors in Spring Boot's shape, and an optional header requirement for Gates that sit
//! behind authentication.

mod executions;

pub use executions::{Fired, Outcome};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Faults, RecordedRequest, SimServer, reason, status_code};
use executions::Played;

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
    pipelines: Mutex<Pipelines>,
}

/// The pipelines behind the webhooks, and what they ran.
struct Pipelines {
    application: String,
    outcomes: HashMap<String, Outcome>,
    played: Vec<Played>,
    /// How many of the next searches answer a cut-off body.
    malformed_searches: usize,
    /// Each execution's first answer with a final status: (execution id, epoch microseconds).
    final_answers: Vec<(String, i64)>,
    /// Whether an application Gate does not know is answered `404` rather than `[]`.
    unknown_applications_404: bool,
}

impl Default for Pipelines {
    fn default() -> Self {
        Self {
            application: "app".into(),
            outcomes: HashMap::new(),
            played: Vec::new(),
            malformed_searches: 0,
            final_answers: Vec::new(),
            unknown_applications_404: false,
        }
    }
}

impl Shared {
    fn triggers(&self) -> MutexGuard<'_, Vec<Trigger>> {
        self.triggers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pipelines(&self) -> MutexGuard<'_, Pipelines> {
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Pipelines {
    /// Notes the first answer that gave `execution` a final status.
    fn answered(&mut self, execution: &Value) {
        let status = execution["status"].as_str().unwrap_or_default();
        if matches!(status, "NOT_STARTED" | "RUNNING") {
            return;
        }
        let id = execution["id"].as_str().unwrap_or_default();
        if !self.final_answers.iter().any(|(e, _)| e == id) {
            let micros = chrono::Utc::now().timestamp_micros();
            self.final_answers.push((id.to_string(), micros));
        }
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
            .route("/applications/{application}/executions/search", get(search))
            .route("/pipelines/{id}", get(pipeline))
            .fallback(|uri: axum::http::Uri| async move {
                spring_error(404, "No message available", uri.path())
            })
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                authenticate,
            ))
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

    /// The application the pipelines belong to (`app` until set).
    pub fn set_application(&self, name: &str) {
        self.shared.pipelines().application = name.to_string();
    }

    /// What the pipelines behind webhook `source` do from the next trigger on (until set: each
    /// trigger runs one pipeline, `deploy`, that succeeds 100 ms later).
    pub fn set_outcome(&self, source: &str, outcome: Outcome) {
        self.shared
            .pipelines()
            .outcomes
            .insert(source.to_string(), outcome);
    }

    /// Every execution started so far, in order, as `GET /pipelines/{id}` answers it now.
    pub fn executions(&self) -> Vec<Value> {
        let now = now_ms();
        let pipelines = self.shared.pipelines();
        pipelines.played.iter().map(|p| p.json(now, true)).collect()
    }

    /// When each execution's final status was first answered (epoch microseconds, the clock
    /// of Slack's `ts`): where a benchmark starts Hoist's own time to the last message.
    pub fn final_answers(&self) -> Vec<(String, i64)> {
        self.shared.pipelines().final_answers.clone()
    }

    /// Answers `404` to a search in an application that has no pipeline here. Orca itself
    /// answers `[]` (it finds no pipelines for the name); this stands for the Gates whose front
    /// (a gateway, an authorization layer) refuses names it does not know.
    pub fn refuse_unknown_applications(&self) {
        self.shared.pipelines().unknown_applications_404 = true;
    }

    /// The next `n` searches answer `200` with a body cut off mid-way, as a proxy that gave up
    /// would.
    pub fn malformed_searches(&self, n: usize) {
        self.shared.pipelines().malformed_searches = n;
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
    body: Bytes,
) -> Response {
    let path = format!("/webhooks/webhook/{source}");
    if body.is_empty() {
        return spring_error(400, "Required request body is missing", &path);
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return spring_error(400, "JSON parse error: expected a JSON object", &path),
        Err(error) => return spring_error(400, &format!("JSON parse error: {error}"), &path),
    };
    let event_id = uuid::Uuid::new_v4().to_string();
    let parameters = body.get("parameters").cloned().unwrap_or_else(|| json!({}));
    {
        let mut pipelines = shared.pipelines();
        let fired = Fired {
            application: pipelines.application.clone(),
            source: source.clone(),
            event_id: event_id.clone(),
            parameters: parameters.clone(),
            payload: body.clone(),
            at: now_ms(),
        };
        let outcome = pipelines.outcomes.get(&source).cloned().unwrap_or_default();
        let played = outcome.play(&fired, &mut || executions::ulid(fired.at));
        pipelines.played.extend(played);
    }
    shared.triggers().push(Trigger {
        source,
        parameters,
        body,
        event_id: event_id.clone(),
    });
    Json(json!({"eventProcessed": true, "eventId": event_id})).into_response()
}

/// Answers `401` to a request without the required header, as Gate behind authentication does.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let required = shared
        .required_header
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some((name, value)) = required {
        let given = request
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if given != Some(value.as_str()) {
            let message = "Full authentication is required to access this resource";
            return spring_error(401, message, request.uri().path());
        }
    }
    next.run(request).await
}

/// Orca's search by trigger: the application's executions (`*`: every application's) whose
/// trigger matches, newest build first, `size` of them (default 10), not expanded. An
/// application Gate does not know has no pipelines, so its search answers `[]`.
async fn search(
    State(shared): State<Arc<Shared>>,
    Path(application): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/applications/{application}/executions/search");
    let size = match query.get("size").map(|s| s.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return spring_error(400, "size must be > 0", &path),
    };
    let types: Option<Vec<&str>> = query
        .get("triggerTypes")
        .filter(|t| t.as_str() != "*")
        .map(|t| t.split(',').collect());
    let event_id = query.get("eventId").filter(|e| !e.is_empty());
    let now = now_ms();
    let mut pipelines = shared.pipelines();
    if pipelines.unknown_applications_404
        && application != "*"
        && application != pipelines.application
    {
        return spring_error(404, &format!("Application not found: {application}"), &path);
    }
    let mut found: Vec<Value> = pipelines
        .played
        .iter()
        .filter(|p| application == "*" || p.application == application)
        .filter(|p| types.as_ref().is_none_or(|t| t.contains(&p.trigger_type())))
        .filter(|p| event_id.is_none_or(|e| *e == p.event_id))
        .map(|p| p.json(now, false))
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e["buildTime"].as_i64()));
    found.truncate(size);
    if pipelines.malformed_searches > 0 {
        pipelines.malformed_searches -= 1;
        let cut = format!("[{{\"id\": \"{}", &executions::ulid(now)[..12]);
        return ([("content-type", "application/json")], cut).into_response();
    }
    for e in &found {
        pipelines.answered(e);
    }
    Json(Value::Array(found)).into_response()
}

/// One execution, expanded; `404` for an id Orca does not have.
async fn pipeline(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let now = now_ms();
    let mut pipelines = shared.pipelines();
    let found = pipelines.played.iter().find(|p| p.id == id);
    match found.map(|p| p.json(now, true)) {
        Some(execution) => {
            pipelines.answered(&execution);
            Json(execution).into_response()
        }
        None => spring_error(
            404,
            &format!("No execution found for id {id}"),
            &format!("/pipelines/{id}"),
        ),
    }
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

    async fn get(gate: &GateSim, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", gate.url())).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    #[tokio::test]
    async fn a_trigger_is_found_by_its_event_and_followed_to_its_end() {
        let gate = GateSim::start().await.unwrap();
        gate.set_application("payments-api");
        gate.set_outcome(
            "payments-api-stg",
            Outcome::FailAt {
                pipeline: "deploy-staging".into(),
                stage: "Deploy (Manifest)".into(),
                after: std::time::Duration::from_millis(300),
            },
        );
        let (_, answer) = send(&gate, "payments-api-stg", BODY, None).await;
        let event = answer["eventId"].as_str().unwrap().to_string();
        send(&gate, "payments-api-stg", BODY, None).await; // another event, another execution
        let search = |app: &str, event: &str| {
            format!("/applications/{app}/executions/search?triggerTypes=webhook&eventId={event}")
        };
        let (status, body) = get(&gate, &search("payments-api", &event)).await;
        assert_eq!(status, 200);
        let found: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(found.len(), 1, "only this event's execution");
        assert_eq!(found[0]["trigger"]["eventId"], event.as_str());
        assert_eq!(found[0]["stages"][0]["tasks"], json!([]), "not expanded");
        let id = found[0]["id"].as_str().unwrap().to_string();
        let (_, every) = get(&gate, &search("*", &event)).await;
        assert_eq!(serde_json::from_str::<Vec<Value>>(&every).unwrap().len(), 1);
        let (status, other) = get(&gate, &search("billing", &event)).await;
        assert_eq!(
            (status, other.as_str()),
            (200, "[]"),
            "Orca finds no pipelines"
        );
        let (_, wrong_type) = get(
            &gate,
            &format!(
                "/applications/payments-api/executions/search?triggerTypes=pubsub&eventId={event}"
            ),
        )
        .await;
        assert_eq!(wrong_type, "[]");

        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        let (status, body) = get(&gate, &format!("/pipelines/{id}")).await;
        assert_eq!(status, 200);
        let execution: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(execution["status"], "TERMINAL");
        assert_eq!(execution["stages"][0]["status"], "TERMINAL");
        assert!(execution["endTime"].as_i64().unwrap() >= execution["startTime"].as_i64().unwrap());
        assert_eq!(gate.final_answers().len(), 1);
        assert_eq!(gate.executions().len(), 2);

        let (status, error) = get(&gate, "/pipelines/01NOPE").await;
        assert_eq!(status, 404);
        assert!(error.contains("No execution found"), "{error}");
        gate.refuse_unknown_applications();
        assert_eq!(get(&gate, &search("billing", &event)).await.0, 404);
    }

    #[tokio::test]
    async fn reads_need_the_header_too_and_searches_can_be_cut() {
        let gate = GateSim::start().await.unwrap();
        gate.require_header("Authorization", "Bearer gate");
        let (status, error) = get(&gate, "/applications/*/executions/search").await;
        assert_eq!(status, 401, "{error}");
        let gate = GateSim::start().await.unwrap();
        gate.malformed_searches(1);
        let (status, cut) = get(&gate, "/applications/*/executions/search").await;
        assert_eq!(status, 200);
        assert!(cut.starts_with("[{\"id\": \""), "{cut}");
        assert!(serde_json::from_str::<Value>(&cut).is_err());
        assert_eq!(
            get(&gate, "/applications/*/executions/search").await.1,
            "[]"
        );
    }
}
