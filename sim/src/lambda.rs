//! A simulator of the AWS Lambda Runtime API (`2018-06-01`), the side of Lambda a custom runtime
//! talks to: `GET /runtime/invocation/next` (long poll, with the `Lambda-Runtime-Aws-Request-Id`,
//! `Lambda-Runtime-Deadline-Ms` and `Lambda-Runtime-Invoked-Function-Arn` headers),
//! `POST /runtime/invocation/{id}/response`, `POST /runtime/invocation/{id}/error` and
//! `POST /runtime/init/error`. Tests and the cold-start benchmark run `hoist lambda` against it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{RecordedRequest, SimServer, reason, status_code};

const PREFIX: &str = "/2018-06-01/runtime";

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST .../response`: the body (JSON when it parses, else a string).
    Response(Value),
    /// `POST .../error`.
    Error(RuntimeError),
}

/// An error a runtime reported (`/invocation/{id}/error` or `/init/error`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeError {
    /// The `Lambda-Runtime-Function-Error-Type` header.
    pub error_type: Option<String>,
    /// The body, usually `{"errorType", "errorMessage"}`.
    pub body: Value,
}

/// An answered invocation, with when the answer arrived.
#[derive(Debug, Clone)]
pub struct Answered {
    pub request_id: String,
    pub outcome: Outcome,
    pub at: Instant,
}

impl Answered {
    /// The response body, or a panic naming the error the function reported.
    pub fn response(&self) -> &Value {
        match &self.outcome {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!("invocation {} failed: {e:?}", self.request_id),
        }
    }
}

#[derive(Default)]
struct Queue {
    queue: VecDeque<(String, Value)>,
    answers: HashMap<String, Answered>,
    init_error: Option<RuntimeError>,
    first_poll: Option<Instant>,
}

struct Shared {
    state: Mutex<Queue>,
    queued: Notify,
    answered: Notify,
    function_arn: String,
    timeout: Mutex<Duration>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The simulator's handle; clones share the server, which stops with the last clone.
#[derive(Clone)]
pub struct RuntimeApiSim {
    shared: Arc<Shared>,
    server: SimServer,
}

impl RuntimeApiSim {
    /// Starts a Runtime API for a function with a 30 s timeout.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(Queue::default()),
            queued: Notify::new(),
            answered: Notify::new(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:hoist".into(),
            timeout: Mutex::new(Duration::from_secs(30)),
        });
        let router = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let server = SimServer::start(
            router,
            Arc::new(|status, _path| {
                (
                    status_code(status),
                    axum::Json(json!({"errorType": "Sim.Fault", "errorMessage": reason(status)})),
                )
                    .into_response()
            }),
        )
        .await?;
        Ok(Self { shared, server })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.server.addr.to_string()
    }

    pub fn function_arn(&self) -> &str {
        &self.shared.function_arn
    }

    /// The function's timeout: each invocation's deadline is this long after it is handed out.
    pub fn set_timeout(&self, timeout: Duration) {
        *self
            .shared
            .timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = timeout;
    }

    /// Queues an event for the runtime's next poll; answers its request id.
    pub fn queue(&self, event: Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.shared.lock().queue.push_back((id.clone(), event));
        self.shared.queued.notify_waiters();
        id
    }

    /// Waits up to `within` for the answer to invocation `id`.
    pub async fn answer(&self, id: &str, within: Duration) -> Option<Answered> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.answered.notified();
            if let Some(a) = self.shared.lock().answers.get(id) {
                return Some(a.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Queues an event and waits up to `within` for its answer.
    pub async fn invoke(&self, event: Value, within: Duration) -> anyhow::Result<Answered> {
        let id = self.queue(event);
        self.answer(&id, within)
            .await
            .ok_or_else(|| anyhow::anyhow!("invocation {id} not answered within {within:?}"))
    }

    /// Waits up to `within` for the runtime to report that it could not start.
    pub async fn init_error(&self, within: Duration) -> Option<RuntimeError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.answered.notified();
            if let Some(e) = self.shared.lock().init_error.clone() {
                return Some(e);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// When the runtime first asked for an event, i.e. finished its start.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.lock().first_poll
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.recorder.requests()
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().first_poll.get_or_insert_with(Instant::now);
    loop {
        let notified = shared.queued.notified();
        if let Some((id, event)) = shared.lock().queue.pop_front() {
            let timeout = *shared.timeout.lock().unwrap_or_else(|e| e.into_inner());
            let deadline = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
            return (
                StatusCode::OK,
                [
                    ("content-type", "application/json".to_string()),
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        shared.function_arn.clone(),
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                            .to_string(),
                    ),
                ],
                event.to_string(),
            )
                .into_response();
        }
        notified.await;
    }
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn reported(headers: &HeaderMap, body: &Bytes) -> RuntimeError {
    RuntimeError {
        error_type: headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: parse(body),
    }
}

fn record(shared: &Shared, id: String, outcome: Outcome) -> Response {
    let answered = Answered {
        request_id: id.clone(),
        outcome,
        at: Instant::now(),
    };
    shared.lock().answers.insert(id, answered);
    shared.answered.notify_waiters();
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    record(&shared, id, Outcome::Response(parse(&body)))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, id, Outcome::Error(reported(&headers, &body)))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().init_error = Some(reported(&headers, &body));
    shared.answered.notify_waiters();
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}
