//! A Jira Cloud simulator (REST API v3), for what Hoist writes back: comments
//! (`POST`/`GET /rest/api/3/issue/{issueIdOrKey}/comment`, bodies in the Atlassian Document
//! Format), the issue's status (`GET /rest/api/3/issue/{issueIdOrKey}`) and transitions
//! (`GET`/`POST /rest/api/3/issue/{issueIdOrKey}/transitions`), behind
//! Jira Cloud's authentication (Basic with an email and an API token, or a bearer token).
//!
//! The workflow has the statuses "To Do", "In Progress", "Ready for QA", "In QA" and "Done", and
//! a global transition into each (available from every other status), some named after their
//! target ("To Do", "In QA"), some not ("Start progress", "Send to QA", "Ship it"). Errors are
//! Jira's `{"errorMessages": [...], "errors": {...}}`; see [`JiraCloudSim::start`] for the
//! `401`s.

mod model;
#[cfg(test)]
mod tests;

pub(crate) use model::{status_id, status_json};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::issue_id;
use crate::{Faults, RecordedRequest, SimServer, reason};
use model::{TRANSITIONS, error, issue_not_found, jira_time};

/// The credentials Jira Cloud wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JiraAuth {
    /// `Authorization: Basic base64(user:token)`: an Atlassian account's email and API token.
    Basic { user: String, token: String },
    /// `Authorization: Bearer <token>` (an OAuth 2.0 access token).
    Bearer(String),
}

struct Comment {
    id: String,
    body: Value,
    visibility: Option<Value>,
    created: String,
}

struct Issue {
    id: String,
    key: String,
    status: String,
    comments: Vec<Comment>,
    applied: Vec<String>,
}

#[derive(Default)]
struct CloudState {
    issues: Vec<Issue>,
    last_comment_id: u64,
}

impl CloudState {
    fn issue(&mut self, id_or_key: &str) -> Option<&mut Issue> {
        self.issues
            .iter_mut()
            .find(|i| i.key.eq_ignore_ascii_case(id_or_key) || i.id == id_or_key)
    }
}

struct Shared {
    expected: String,
    basic: bool,
    state: Mutex<CloudState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, CloudState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type St = State<Arc<Shared>>;

/// The simulator's handle; clones share the server, which stops with the last clone.
#[derive(Clone)]
pub struct JiraCloudSim {
    shared: Arc<Shared>,
    server: SimServer,
}

impl JiraCloudSim {
    /// Starts Jira Cloud on `127.0.0.1:0`, wanting `auth` on every request. A wrong Basic
    /// credential gets `401` with Jira Cloud's plain-text "Basic authentication with passwords
    /// is deprecated. ..."; a missing credential or a wrong bearer token gets `401`
    /// `{"message": "Client must be authenticated to access this resource.", "status-code": 401}`
    /// (in XML unless the client accepts JSON).
    pub async fn start(auth: JiraAuth) -> std::io::Result<Self> {
        let (expected, basic) = match auth {
            JiraAuth::Basic { user, token } => {
                let credential = crate::sign::base64(format!("{user}:{token}").as_bytes());
                (format!("Basic {credential}"), true)
            }
            JiraAuth::Bearer(token) => (format!("Bearer {token}"), false),
        };
        let shared = Arc::new(Shared {
            expected,
            basic,
            state: Mutex::new(CloudState::default()),
        });
        let router = Router::new()
            .route("/rest/api/3/issue/{issue}", get(get_issue))
            .route(
                "/rest/api/3/issue/{issue}/comment",
                get(list_comments).post(add_comment),
            )
            .route(
                "/rest/api/3/issue/{issue}/transitions",
                get(list_transitions).post(transition),
            )
            .fallback(|| async { error(404, &["Not Found"], json!({})) })
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                authenticate,
            ))
            .with_state(shared.clone());
        let server = SimServer::start(
            router,
            Arc::new(|status, _: &str| error(status, &[reason(status)], json!({}))),
        )
        .await?;
        Ok(Self { shared, server })
    }

    /// The site's base URL (`https://your-domain.atlassian.net` for the real one).
    pub fn base_url(&self) -> String {
        self.server.root()
    }

    /// Creates issue `key` in status `status` (one of the workflow's; panics otherwise).
    pub fn add_issue(&self, key: &str, status: &str) {
        let status = model::status(status)
            .unwrap_or_else(|| panic!("{status:?} is not a status of the workflow"));
        let mut state = self.shared.state();
        state.issues.retain(|i| i.key != key);
        state.issues.push(Issue {
            id: issue_id(key),
            key: key.to_string(),
            status: status.name.to_string(),
            comments: Vec::new(),
            applied: Vec::new(),
        });
    }

    /// The issue's status now, `None` for an issue that does not exist.
    pub fn issue_status(&self, key: &str) -> Option<String> {
        self.shared.state().issue(key).map(|i| i.status.clone())
    }

    /// The ADF bodies of the issue's comments, in order.
    pub fn comments(&self, key: &str) -> Vec<Value> {
        let mut state = self.shared.state();
        let comments = state.issue(key).map(|i| &i.comments);
        comments
            .into_iter()
            .flatten()
            .map(|c| c.body.clone())
            .collect()
    }

    /// The names of the transitions applied to the issue, in order.
    pub fn transitions_applied(&self, key: &str) -> Vec<String> {
        let mut state = self.shared.state();
        state
            .issue(key)
            .map(|i| i.applied.clone())
            .unwrap_or_default()
    }

    pub fn faults(&self) -> &Faults {
        &self.server.faults
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.recorder.requests()
    }
}

async fn authenticate(State(shared): St, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(shared.expected.as_str()) {
        return next.run(request).await;
    }
    let basic_given = shared.basic && given.is_some_and(|g| g.starts_with("Basic "));
    model::unauthorized(basic_given, request.headers())
}

fn comment_json(base: &str, issue_id: &str, comment: &Comment) -> Value {
    let author = model::author(base);
    let mut json = json!({
        "self": format!("{base}/rest/api/3/issue/{issue_id}/comment/{}", comment.id),
        "id": comment.id,
        "author": author,
        "body": comment.body,
        "updateAuthor": author,
        "created": comment.created,
        "updated": comment.created
    });
    if let Some(visibility) = &comment.visibility {
        json["visibility"] = visibility.clone();
    }
    json
}

fn base_of(request_headers: &axum::http::HeaderMap) -> String {
    let host = request_headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `POST .../comment`: `201` with the comment (fixtures/jira-add-comment-201.json); `400` with
/// `errors.comment` for a body that is not a non-empty Atlassian Document.
async fn add_comment(
    State(shared): St,
    Path(issue): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let base = base_of(&headers);
    let mut state = shared.state();
    if state.issue(&issue).is_none() {
        return issue_not_found();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(400, &["The request body is not valid JSON."], json!({}));
    };
    if let Some(problem) = model::comment_body_error(request.get("body")) {
        return error(400, &[], json!({"comment": problem}));
    }
    state.last_comment_id = state.last_comment_id.max(9_999) + 1;
    let comment = Comment {
        id: state.last_comment_id.to_string(),
        body: request["body"].clone(),
        visibility: request.get("visibility").cloned(),
        created: jira_time(chrono::Utc::now()),
    };
    let issue = state.issue(&issue).expect("checked above");
    let answer = comment_json(&base, &issue.id, &comment);
    issue.comments.push(comment);
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `GET .../comment`: one page, `{"startAt", "maxResults", "total", "comments"}`
/// (fixtures/jira-get-comments-200.json); `startAt` defaults to 0, `maxResults` to 50.
async fn list_comments(
    State(shared): St,
    Path(issue): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let base = base_of(&headers);
    let number = |key: &str, default: usize| {
        query
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (start_at, max_results) = (number("startAt", 0), number("maxResults", 50));
    let mut state = shared.state();
    let Some(issue) = state.issue(&issue) else {
        return issue_not_found();
    };
    let page: Vec<Value> = issue
        .comments
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|c| comment_json(&base, &issue.id, c))
        .collect();
    Json(json!({
        "startAt": start_at,
        "maxResults": max_results,
        "total": issue.comments.len(),
        "comments": page
    }))
    .into_response()
}

/// `GET /rest/api/3/issue/{issueIdOrKey}`: the issue with its `status` field (the only field
/// this site keeps), as Jira Cloud answers `?fields=status`: `{"expand", "id", "self", "key",
/// "fields": {"status": {...}}}`.
async fn get_issue(
    State(shared): St,
    Path(issue): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let base = base_of(&headers);
    let mut state = shared.state();
    let Some(issue) = state.issue(&issue) else {
        return issue_not_found();
    };
    Json(json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": issue.id,
        "self": format!("{base}/rest/api/3/issue/{}", issue.id),
        "key": issue.key,
        "fields": {"status": model::status_json(&base, 3, &issue.status)}
    }))
    .into_response()
}

/// The transitions available from `status`: every one but the transition into it.
fn available(status: &str) -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    let status = status.to_string();
    TRANSITIONS
        .into_iter()
        .filter(move |(_, _, to)| *to != status)
}

/// `GET .../transitions`: `{"expand": "transitions", "transitions": [...]}`, optionally only
/// `?transitionId=`.
async fn list_transitions(
    State(shared): St,
    Path(issue): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let base = base_of(&headers);
    let mut state = shared.state();
    let Some(issue) = state.issue(&issue) else {
        return issue_not_found();
    };
    let only = query.get("transitionId");
    let transitions: Vec<Value> = available(&issue.status)
        .filter(|(id, _, _)| only.is_none_or(|o| o == id))
        .map(|t| model::transition_json(&base, t))
        .collect();
    Json(json!({"expand": "transitions", "transitions": transitions})).into_response()
}

/// `POST .../transitions` with `{"transition": {"id": "..."}}`: `204`, or `400` for a missing,
/// non-numeric or unavailable id.
async fn transition(State(shared): St, Path(issue): Path<String>, body: Bytes) -> Response {
    let mut state = shared.state();
    let Some(issue) = state.issue(&issue) else {
        return issue_not_found();
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = match &request["transition"]["id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => return error(400, &["Missing 'transition' identifier"], json!({})),
    };
    if id.parse::<u64>().is_err() {
        return error(
            400,
            &["'transition' identifier must be an integer"],
            json!({}),
        );
    }
    let Some((_, name, to)) = available(&issue.status).find(|(t, _, _)| *t == id) else {
        let message = format!("Transition id '{id}' is not valid for this issue.");
        return error(400, &[&message], json!({}));
    };
    issue.status = to.to_string();
    issue.applied.push(name.to_string());
    StatusCode::NO_CONTENT.into_response()
}
