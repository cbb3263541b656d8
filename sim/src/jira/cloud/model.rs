//! The simulated workflow and the JSON shapes of Jira Cloud's answers: statuses and transitions
//! as `GET .../transitions` gives them (fixtures/jira-get-transitions-200.json, the documented
//! example, and fixtures/jira-get-transitions-cloud-capture.json, a capture of a real site),
//! comments (fixtures/jira-add-comment-201.json), and errors (`{"errorMessages", "errors"}`).

use axum::Json;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::status_code;

/// A status of the simulated workflow.
pub(crate) struct Status {
    pub id: &'static str,
    pub name: &'static str,
    description: &'static str,
    /// Under the site's root; empty for the site root itself, which is what custom statuses
    /// carry.
    icon: &'static str,
    /// The status category's id: 2 (`new`), 4 (`indeterminate`) or 3 (`done`).
    category: u8,
}

/// The workflow's statuses. "In Progress" is Jira's built-in status 3 (its description and icon
/// are the ones real sites answer); the others are custom statuses.
pub(crate) const STATUSES: [Status; 5] = [
    Status {
        id: "10000",
        name: "To Do",
        description: "",
        icon: "",
        category: 2,
    },
    Status {
        id: "3",
        name: "In Progress",
        description: "This issue is being actively worked on at the moment by the assignee.",
        icon: "images/icons/statuses/inprogress.png",
        category: 4,
    },
    Status {
        id: "10001",
        name: "Ready for QA",
        description: "",
        icon: "",
        category: 4,
    },
    Status {
        id: "10002",
        name: "In QA",
        description: "",
        icon: "",
        category: 4,
    },
    Status {
        id: "10003",
        name: "Done",
        description: "",
        icon: "",
        category: 3,
    },
];

/// The workflow's transitions: `(id, name, target status)`. All are global (available from
/// every other status); some are named after their target, some not.
pub(crate) const TRANSITIONS: [(&str, &str, &str); 5] = [
    ("11", "To Do", "To Do"),
    ("21", "Start progress", "In Progress"),
    ("31", "Send to QA", "Ready for QA"),
    ("41", "In QA", "In QA"),
    ("51", "Ship it", "Done"),
];

pub(crate) fn status(name: &str) -> Option<&'static Status> {
    STATUSES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// A status's id: the workflow's, or for a status outside it a stable one derived from its
/// name (custom statuses get ids from 10000 up).
pub(crate) fn status_id(name: &str) -> String {
    match status(name) {
        Some(status) => status.id.to_string(),
        None => {
            let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
            let n = u16::from_be_bytes([digest.as_ref()[0], digest.as_ref()[1]]) % 900;
            (10_100 + u32::from(n)).to_string()
        }
    }
}

fn category(base: &str, api: u8, id: u8) -> Value {
    let (key, color, name) = match id {
        2 => ("new", "blue-gray", "To Do"),
        3 => ("done", "green", "Done"),
        _ => ("indeterminate", "yellow", "In Progress"),
    };
    json!({
        "self": format!("{base}/rest/api/{api}/statuscategory/{id}"),
        "id": id,
        "key": key,
        "colorName": color,
        "name": name
    })
}

/// A status object as Jira writes it (`self`, `description`, `iconUrl`, `name`, `id`,
/// `statusCategory`), with links to `base` and REST API version `api` (3 for REST answers,
/// 2 in webhooks). A status outside the workflow is `In Progress`-like.
pub(crate) fn status_json(base: &str, api: u8, name: &str) -> Value {
    let (description, icon, category_id) = match status(name) {
        Some(s) => (s.description, s.icon, s.category),
        None => ("", "", 4),
    };
    let id = status_id(name);
    json!({
        "self": format!("{base}/rest/api/{api}/status/{id}"),
        "description": description,
        "iconUrl": format!("{base}/{icon}"),
        "name": status(name).map_or(name, |s| s.name),
        "id": id,
        "statusCategory": category(base, api, category_id)
    })
}

/// A transition as `GET .../transitions` lists it.
pub(crate) fn transition_json(base: &str, (id, name, to): (&str, &str, &str)) -> Value {
    json!({
        "id": id,
        "name": name,
        "to": status_json(base, 3, to),
        "hasScreen": false,
        "isGlobal": true,
        "isInitial": false,
        "isAvailable": true,
        "isConditional": false,
        "isLooped": false
    })
}

/// The user behind the simulator's credentials, as comments carry it.
pub(crate) fn author(base: &str) -> Value {
    let id = super::super::account_id("Hoist");
    json!({
        "self": format!("{base}/rest/api/3/user?accountId={id}"),
        "accountId": id,
        "displayName": "Hoist",
        "active": true
    })
}

/// Jira's time format: `2021-01-17T12:34:00.000+0000`.
pub(crate) fn jira_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// `{"errorMessages": [...], "errors": {...}}` with `status`.
pub(crate) fn error(status: u16, messages: &[&str], errors: Value) -> Response {
    let body = json!({"errorMessages": messages, "errors": errors});
    (status_code(status), Json(body)).into_response()
}

pub(crate) fn issue_not_found() -> Response {
    let message = "Issue does not exist or you do not have permission to see it.";
    error(404, &[message], json!({}))
}

const NOT_AUTHENTICATED: &str = "Client must be authenticated to access this resource.";
/// What Jira Cloud answers a Basic credential that is not a valid email and API token.
pub(crate) const BASIC_REFUSED: &str = "Basic authentication with passwords is deprecated.  For more information, see: https://developer.atlassian.com/cloud/confluence/deprecation-notice-basic-auth/";

/// Jira Cloud's `401`s: plain text for a bad Basic credential; for a missing credential or a
/// bad bearer token, `{"message", "status-code"}` to a client that accepts JSON, else the same
/// in XML.
pub(crate) fn unauthorized(basic_given: bool, headers: &HeaderMap) -> Response {
    if basic_given {
        let content_type = [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")];
        return (status_code(401), content_type, BASIC_REFUSED).into_response();
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("json") {
        let body = json!({"message": NOT_AUTHENTICATED, "status-code": 401});
        return (status_code(401), Json(body)).into_response();
    }
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><status><status-code>401</status-code><message>{NOT_AUTHENTICATED}</message></status>"
    );
    let content_type = [(header::CONTENT_TYPE, "application/xml;charset=UTF-8")];
    (status_code(401), content_type, xml).into_response()
}

/// Whether an ADF node holds anything to show (a non-empty text, or a node that is not just a
/// container like a paragraph).
fn shows_something(node: &Value) -> bool {
    let own = match node["type"].as_str() {
        Some("text") => node["text"].as_str().is_some_and(|t| !t.trim().is_empty()),
        Some("doc" | "paragraph") => false,
        _ => true,
    };
    own || node["content"]
        .as_array()
        .is_some_and(|c| c.iter().any(shows_something))
}

/// Why Jira REST API v3 refuses a comment `body`, as its `errors.comment`: v3 wants an Atlassian
/// Document (`{"type": "doc", "version": 1, "content": [...]}`), a v2-style string is "not
/// valid", and a document with nothing in it is "empty".
pub(crate) fn comment_body_error(body: Option<&Value>) -> Option<&'static str> {
    const EMPTY: &str = "Comment body can not be empty!";
    let Some(body) = body.filter(|b| !b.is_null()) else {
        return Some(EMPTY);
    };
    let is_doc = body["type"] == "doc" && body["version"] == 1 && body["content"].is_array();
    if !is_doc {
        Some("Comment body is not valid!")
    } else if !shows_something(body) {
        Some(EMPTY)
    } else {
        None
    }
}
