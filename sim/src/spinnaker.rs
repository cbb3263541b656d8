//! A Spinnaker Gate simulator: webhook triggers (`POST /webhooks/webhook/{source}`, answered as
//! Echo does: `{"eventProcessed": true, "eventId": "<uuid>"}`), the executions they start played
//! out in real time (`GET /applications/{app}/executions/search`, `GET /pipelines/{id}`, in
//! Orca's shape), errors in Spring Boot's shape, and an optional header requirement for Gates
//! that sit behind authentication.
//!
//! What a trigger starts is scripted per source with an [`Outcome`] ([`GateSim::set_outcome`],
//! [`GateSim::set_default_outcome`]); each execution's status is computed on every read from the
//! time it was started, so nothing runs in the background. Every route goes through the shared
//! fault layer ([`GateSim::faults`]) and is recorded ([`GateSim::requests`]).
//!
//! Applications: a source's executions belong to the application set for it
//! ([`GateSim::set_source_application`]), else to the one set for all
//! ([`GateSim::set_application`]), else to the source's name up to its last `-`
//! (`payments-api-stg` → `payments-api`). Gate knows an application once one was set or added
//! ([`GateSim::add_application`]) or an execution ran in it; what a search in any other
//! application answers is [`UnknownApplications`].

mod executions;
#[cfg(test)]
mod tests;

pub use executions::{BAKE, DEPLOY, Fired, Outcome, SMOKE_TEST};

use std::collections::{HashMap, HashSet};
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

/// What `GET /applications/{app}/executions/search` answers for an application Gate does not
/// know (not `*`, never set or added, no execution in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownApplications {
    /// `200 []`, what Gate answers without authorization: it passes the search to Orca, which
    /// asks Front50 for the application's pipelines, gets none, so finds no execution
    /// (Orca's `TaskController.searchForPipelinesByTrigger`, Front50's
    /// `PipelineController.listByApplication`).
    #[default]
    Empty,
    /// `403 Access is denied`, what Gate answers with Fiat on: Orca's search is
    /// `@PreAuthorize("hasPermission(#application, 'APPLICATION', 'READ')")`, and Fiat refuses
    /// an application it does not know unless `allowAccessToUnknownApplications` (off by
    /// default).
    Forbidden,
    /// `404 Application not found: <app>`: not an answer found in Gate's or Orca's code; it
    /// stands for a gateway or authorization front that refuses names it does not know.
    NotFound,
}

#[derive(Default)]
struct Shared {
    triggers: Mutex<Vec<Trigger>>,
    required_header: Mutex<Option<(String, String)>>,
    pipelines: Mutex<Pipelines>,
}

/// The pipelines behind the webhooks, and what they ran.
#[derive(Default)]
struct Pipelines {
    /// The application of the sources that have none of their own.
    application: Option<String>,
    /// Each source's own application.
    source_applications: HashMap<String, String>,
    /// Applications that exist without an execution.
    added_applications: HashSet<String>,
    outcomes: HashMap<String, Outcome>,
    default_outcome: Outcome,
    played: Vec<Played>,
    /// The last execution id given, as a number, so that ids only grow.
    last_id: u128,
    /// How many of the next searches answer a cut-off body.
    malformed_searches: usize,
    /// Each execution's first answer with a final status: (execution id, epoch microseconds).
    final_answers: Vec<(String, i64)>,
    unknown_applications: UnknownApplications,
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

/// Orca's statuses of an execution that has not ended.
fn in_progress(status: &str) -> bool {
    matches!(
        status,
        "NOT_STARTED" | "BUFFERED" | "RUNNING" | "PAUSED" | "SUSPENDED" | "REDIRECT"
    )
}

/// The application a source's pipelines belong to when none was set: its name up to its last
/// `-` (`payments-api-stg` → `payments-api`), or all of it.
pub fn application_of_source(source: &str) -> &str {
    match source.rsplit_once('-') {
        Some((app, _)) if !app.is_empty() => app,
        _ => source,
    }
}

impl Pipelines {
    /// Notes the first answer that gave `execution` a final status.
    fn answered(&mut self, execution: &Value) {
        let status = execution["status"].as_str().unwrap_or_default();
        if in_progress(status) {
            return;
        }
        let id = execution["id"].as_str().unwrap_or_default();
        if !self.final_answers.iter().any(|(e, _)| e == id) {
            let micros = chrono::Utc::now().timestamp_micros();
            self.final_answers.push((id.to_string(), micros));
        }
    }

    fn application_of(&self, source: &str) -> String {
        self.source_applications
            .get(source)
            .or(self.application.as_ref())
            .cloned()
            .unwrap_or_else(|| application_of_source(source).to_string())
    }

    /// Whether Gate knows `application` (`*` stands for all of them).
    fn knows(&self, application: &str) -> bool {
        application == "*"
            || self.application.as_deref() == Some(application)
            || self.source_applications.values().any(|a| a == application)
            || self.added_applications.contains(application)
            || self.played.iter().any(|p| p.application == application)
    }

    /// A new execution id, a ULID greater than every one given before.
    fn next_id(&mut self, now: i64) -> String {
        let value = executions::ulid_value(now).max(self.last_id.wrapping_add(1));
        self.last_id = value;
        executions::encode_ulid(value)
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

    /// From now on a request without header `name: value` is answered `401`, on every route.
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

    /// The application of the pipelines of every source that has none of its own
    /// ([`GateSim::set_source_application`]), from the next trigger on. Until set, a source's
    /// application is its name up to its last `-`.
    pub fn set_application(&self, name: &str) {
        self.shared.pipelines().application = Some(name.to_string());
    }

    /// The application the pipelines behind webhook `source` belong to, from the next trigger
    /// on.
    pub fn set_source_application(&self, source: &str, application: &str) {
        self.shared
            .pipelines()
            .source_applications
            .insert(source.to_string(), application.to_string());
    }

    /// Declares an application Gate knows even though no execution ran in it.
    pub fn add_application(&self, name: &str) {
        self.shared
            .pipelines()
            .added_applications
            .insert(name.to_string());
    }

    /// What the pipelines behind webhook `source` do from the next trigger on (until set: the
    /// default outcome).
    pub fn set_outcome(&self, source: &str, outcome: Outcome) {
        self.shared
            .pipelines()
            .outcomes
            .insert(source.to_string(), outcome);
    }

    /// What the pipelines behind the sources without an outcome of their own do, from the next
    /// trigger on (until set: [`Outcome::default`], one pipeline, `deploy`, that succeeds 100 ms
    /// after the trigger).
    pub fn set_default_outcome(&self, outcome: Outcome) {
        self.shared.pipelines().default_outcome = outcome;
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

    /// What a search in an application Gate does not know answers (until set:
    /// [`UnknownApplications::Empty`], `200 []`).
    pub fn set_unknown_applications(&self, answer: UnknownApplications) {
        self.shared.pipelines().unknown_applications = answer;
    }

    /// Answers `404` to a search in an application Gate does not know:
    /// [`UnknownApplications::NotFound`].
    pub fn refuse_unknown_applications(&self) {
        self.set_unknown_applications(UnknownApplications::NotFound);
    }

    /// The next `n` searches (that would answer `200`) answer `200` with a body cut off mid-way,
    /// `[{"id": "01…`, as a proxy that gave up would.
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
            application: pipelines.application_of(&source),
            source: source.clone(),
            event_id: event_id.clone(),
            parameters: parameters.clone(),
            payload: body.clone(),
            at: now_ms(),
        };
        let outcome = pipelines
            .outcomes
            .get(&source)
            .unwrap_or(&pipelines.default_outcome)
            .clone();
        let played = outcome.play(&fired, &mut || pipelines.next_id(fired.at));
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

/// A comma-separated filter; absent or `*` lets everything through.
fn filter_of<'q>(query: &'q HashMap<String, String>, key: &str) -> Option<Vec<&'q str>> {
    query
        .get(key)
        .filter(|t| !t.is_empty() && t.as_str() != "*")
        .map(|t| t.split(',').collect())
}

/// Orca's search by trigger (Gate passes it through): the application's executions (`*`: every
/// application's) whose trigger type (`triggerTypes`), event (`eventId`), pipeline name
/// (`pipelineName`) and status (`statuses`) match, newest build first (`reverse`: oldest),
/// `size` of them (default 10) from `startIndex`, not expanded.
async fn search(
    State(shared): State<Arc<Shared>>,
    Path(application): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/applications/{application}/executions/search");
    let number = |key: &str, default: i64| match query.get(key) {
        None => Ok(default),
        Some(n) => n.parse::<i64>().map_err(|_| {
            format!(
                "Failed to convert value of type 'java.lang.String' to required type 'int'; \
                 nested exception is java.lang.NumberFormatException: For input string: \"{n}\""
            )
        }),
    };
    let (size, start_index) = match (number("size", 10), number("startIndex", 0)) {
        (Ok(size), Ok(start)) => (size, start),
        (Err(message), _) | (_, Err(message)) => return spring_error(400, &message, &path),
    };
    // Orca's own checks, answered 400 (IllegalArgumentException).
    if start_index < 0 {
        let message = format!("startIndex must be >= 0: startIndex={start_index}");
        return spring_error(400, &message, &path);
    }
    if size <= 0 {
        return spring_error(400, &format!("size must be > 0: size={size}"), &path);
    }
    let types = filter_of(&query, "triggerTypes");
    let statuses = filter_of(&query, "statuses");
    let event_id = query.get("eventId").filter(|e| !e.is_empty());
    let name = query.get("pipelineName").filter(|e| !e.is_empty());
    let reverse = query.get("reverse").is_some_and(|r| r == "true");
    let now = now_ms();
    let mut pipelines = shared.pipelines();
    if !pipelines.knows(&application) {
        match pipelines.unknown_applications {
            UnknownApplications::Empty => {}
            UnknownApplications::Forbidden => {
                return spring_error(403, "Access is denied", &path);
            }
            UnknownApplications::NotFound => {
                let message = format!("Application not found: {application}");
                return spring_error(404, &message, &path);
            }
        }
    }
    if pipelines.malformed_searches > 0 {
        pipelines.malformed_searches -= 1;
        let cut = format!("[{{\"id\": \"{}", &executions::ulid(now)[..12]);
        return ([("content-type", "application/json")], cut).into_response();
    }
    let mut found: Vec<&Played> = pipelines
        .played
        .iter()
        .filter(|p| application == "*" || p.application == application)
        .filter(|p| types.as_ref().is_none_or(|t| t.contains(&p.trigger_type())))
        .filter(|p| event_id.is_none_or(|e| *e == p.event_id))
        .filter(|p| name.is_none_or(|n| *n == p.name))
        .filter(|p| statuses.as_ref().is_none_or(|s| s.contains(&p.status(now))))
        .collect();
    // Orca's order: newest build first, then the greater id.
    found.sort_by(|a, b| (b.build_time, &b.id).cmp(&(a.build_time, &a.id)));
    if reverse {
        found.reverse();
    }
    let found: Vec<Value> = found
        .into_iter()
        .skip(start_index as usize)
        .take(size as usize)
        .map(|p| p.json(now, false))
        .collect();
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
