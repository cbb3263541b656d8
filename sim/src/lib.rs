//! Faithful simulators of the services Hoist talks to (Bitbucket Cloud, Slack, Spinnaker Gate,
//! Jira Cloud) and of the services that call Hoist (CircleCI, Jira, Slack's interactivity).
//!
//! The integration tests and `hoist demo` run against them, so their answers copy the vendors'
//! real formats (see `fixtures/`). Every HTTP simulator shares the pieces in this module: fault
//! injection ([`Faults`]), a record of every request it got ([`RecordedRequest`]) and a server
//! bound to `127.0.0.1:0` that stops when the simulator's last handle is dropped.
//!
//! The crate does not depend on Hoist: it signs webhooks with its own HMAC (`sign.rs`), so what
//! it sends checks Hoist's verification rather than sharing its code.

pub mod bitbucket;
pub mod circleci;
pub mod jira;
pub mod lambda;
pub mod slack;
pub mod spinnaker;

mod server;
mod sign;

use server::{ConnKill, ServerGuard, serve};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// One fault to inject into the next request a simulator handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with the vendor's error body.
    Status(u16),
    /// Answer `429` with a `Retry-After` header of this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
}

#[derive(Default)]
struct FaultState {
    pending: VecDeque<Fault>,
    outage: Option<u16>,
}

/// Faults waiting to be applied to a simulator's next requests. Cheap to clone: clones share
/// the same queue.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
}

/// What the fault layer decided for one request.
enum Verdict {
    Proceed,
    Delay(Duration),
    Status(u16),
    RateLimited(u64),
    Drop,
}

impl Faults {
    /// Applies `fault` to each of the next `times` requests (after the faults already queued).
    pub fn push(&self, fault: Fault, times: usize) {
        let mut state = self.lock();
        state.pending.extend(std::iter::repeat_n(fault, times));
    }

    /// Forgets every pending fault and ends an outage.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.pending.clear();
        state.outage = None;
    }

    /// While `Some(status)`, every request is answered with `status` (a long outage). Queued
    /// faults wait until the outage ends.
    pub fn set_outage(&self, status: Option<u16>) {
        self.lock().outage = status;
    }

    /// How many queued faults have not been applied yet.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    fn next_verdict(&self) -> Verdict {
        let mut state = self.lock();
        if let Some(status) = state.outage {
            return Verdict::Status(status);
        }
        match state.pending.pop_front() {
            None => Verdict::Proceed,
            Some(Fault::Status(status)) => Verdict::Status(status),
            Some(Fault::RateLimited { retry_after_secs }) => Verdict::RateLimited(retry_after_secs),
            Some(Fault::Delay(duration)) => Verdict::Delay(duration),
            Some(Fault::Drop) => Verdict::Drop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One request as a simulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names are lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every request a simulator got, shared between the server task and the simulator's handle.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Vec<RecordedRequest>>>,
    /// Nanoseconds spent handling `GET` requests (reading, recording, building the answer), so
    /// that a benchmark can tell the simulator's time from the caller's.
    get_handling_ns: Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    /// Time spent so far handling `GET` requests, injected delays excluded.
    pub fn get_handling_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(
            self.get_handling_ns
                .load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    pub fn reset(&self) {
        self.lock().clear();
    }

    fn push(&self, request: RecordedRequest) {
        self.lock().push(request);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Builds a vendor-shaped error answer for a status, given the request path (some vendors
/// answer differently on different paths).
pub(crate) type ErrorBody = Arc<dyn Fn(u16, &str) -> Response + Send + Sync>;

/// State of the layer every simulator puts in front of its routes.
#[derive(Clone)]
pub(crate) struct Interceptor {
    pub faults: Faults,
    pub recorder: Recorder,
    pub error_body: ErrorBody,
}

/// Records the request, then applies the next pending fault, then (unless the fault answered)
/// runs the simulator's handler.
pub(crate) async fn intercept(
    State(layer): State<Interceptor>,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let is_get = request.method() == axum::http::Method::GET;
    let recorder = layer.recorder.clone();
    let mut delayed = std::time::Duration::ZERO;
    let response = handle(layer, conn, request, next, &mut delayed).await;
    if is_get {
        let spent = started.elapsed().saturating_sub(delayed);
        recorder
            .get_handling_ns
            .fetch_add(spent.as_nanos() as u64, std::sync::atomic::Ordering::SeqCst);
    }
    response
}

async fn handle(
    layer: Interceptor,
    conn: ConnKill,
    request: Request,
    next: Next,
    delayed: &mut std::time::Duration,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_else(|_| Bytes::new());
    layer.recorder.push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        at: std::time::Instant::now(),
    });
    let path = parts.uri.path().to_string();
    match layer.faults.next_verdict() {
        Verdict::Proceed => {}
        Verdict::Delay(duration) => {
            tokio::time::sleep(duration).await;
            *delayed = duration;
        }
        Verdict::Status(status) => return (layer.error_body)(status, &path),
        Verdict::RateLimited(secs) => {
            let mut response = (layer.error_body)(429, &path);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return response;
        }
        Verdict::Drop => {
            // The connection refuses every later read and write, so hyper closes it without
            // sending a byte of this response.
            conn.kill();
            return ().into_response();
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The running server of one simulator: its address, its faults and its record of requests.
/// Clones share everything; the server stops when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct SimServer {
    pub addr: std::net::SocketAddr,
    pub faults: Faults,
    pub recorder: Recorder,
    _guard: Arc<ServerGuard>,
}

impl SimServer {
    /// Serves `router` behind the recording and fault layer; `error_body` shapes injected errors.
    pub(crate) async fn start(
        router: axum::Router,
        error_body: ErrorBody,
    ) -> std::io::Result<Self> {
        let faults = Faults::default();
        let recorder = Recorder::default();
        let layer = Interceptor {
            faults: faults.clone(),
            recorder: recorder.clone(),
            error_body,
        };
        let router = router.layer(axum::middleware::from_fn_with_state(layer, intercept));
        let (addr, guard) = serve(router).await?;
        Ok(Self {
            addr,
            faults,
            recorder,
            _guard: Arc::new(guard),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn root(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The canonical reason phrase of a status (`"Service Unavailable"` for 503).
pub(crate) fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// A status code from a number, falling back to 500 for a number that is not one.
pub(crate) fn status_code(status: u16) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// An RFC 3339 timestamp in UTC with milliseconds and a `Z`, as CircleCI writes them.
pub(crate) fn iso_millis(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
