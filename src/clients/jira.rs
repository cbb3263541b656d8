//! Jira Cloud REST API v3, for what Hoist writes back (SPEC 14): comments in the Atlassian
//! Document Format, an issue's status, its transitions. The only code that knows these shapes.

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::call::{CallError, authed, http_client, send, status_error};
use crate::config::{HttpAuth, JiraWrite};
use crate::core::notify::{Message, Span};
use crate::metrics::{Metrics, Service};

const SERVICE: &str = "Jira";

#[derive(Clone)]
pub struct Jira {
    http: reqwest::Client,
    metrics: Metrics,
    base: String,
    auth: HttpAuth,
}

/// A transition the issue can take now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub id: String,
    pub name: String,
    /// The status it leads to.
    pub to: String,
}

#[derive(Deserialize)]
struct TransitionsJson {
    transitions: Vec<TransitionJson>,
}

#[derive(Deserialize)]
struct TransitionJson {
    id: String,
    name: String,
    to: StatusJson,
}

#[derive(Deserialize)]
struct StatusJson {
    name: String,
}

#[derive(Deserialize)]
struct IssueJson {
    fields: IssueFields,
}

#[derive(Deserialize)]
struct IssueFields {
    status: StatusJson,
}

#[derive(Deserialize)]
struct ErrorsJson {
    #[serde(default, rename = "errorMessages")]
    error_messages: Vec<String>,
    #[serde(default)]
    errors: serde_json::Map<String, Value>,
}

impl Jira {
    pub fn new(c: &JiraWrite, metrics: &Metrics) -> Self {
        Self {
            http: http_client(c.timeout),
            metrics: metrics.clone(),
            base: c.base_url.clone(),
            auth: c.auth.clone(),
        }
    }

    fn issue_url(&self, key: &str) -> String {
        format!("{}/rest/api/3/issue/{}", self.base, enc(key))
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        let rb = authed(
            rb.header(reqwest::header::ACCEPT, "application/json"),
            &self.auth,
        );
        send(&self.metrics, Service::Jira, SERVICE, rb).await
    }

    async fn fail(resp: reqwest::Response, key: &str) -> CallError {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let detail = match serde_json::from_str::<ErrorsJson>(&text) {
            Ok(e) => e
                .error_messages
                .into_iter()
                .chain(e.errors.into_iter().map(|(k, v)| match v {
                    Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                }))
                .collect::<Vec<_>>()
                .join("; "),
            Err(_) => text,
        };
        status_error(SERVICE, status, &headers, &detail, &|s| {
            match s {
            StatusCode::UNAUTHORIZED => Some(
                "check [jira] auth: the API token (with the account's email) or bearer token is missing, wrong or expired"
                    .into(),
            ),
            StatusCode::FORBIDDEN => Some(format!(
                "the credentials may not change issue {key}: grant them browse, comment and transition"
            )),
            StatusCode::NOT_FOUND => Some(format!(
                "issue {key} does not exist or the credentials cannot see it"
            )),
            _ => None,
        }
        })
    }

    /// Adds `message` as a comment on issue `key`.
    pub async fn comment(&self, key: &str, message: &Message) -> Result<(), CallError> {
        let url = format!("{}/comment", self.issue_url(key));
        let resp = self
            .send(
                self.http
                    .post(url)
                    .json(&json!({"body": document(message)})),
            )
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(Self::fail(resp, key).await)
    }

    /// The name of issue `key`'s status.
    pub async fn status(&self, key: &str) -> Result<String, CallError> {
        let url = format!("{}?fields=status", self.issue_url(key));
        let resp = self.send(self.http.get(url)).await?;
        if !resp.status().is_success() {
            return Err(Self::fail(resp, key).await);
        }
        let issue: IssueJson = resp
            .json()
            .await
            .map_err(|e| CallError::transport(SERVICE, &e))?;
        Ok(issue.fields.status.name)
    }

    /// The transitions issue `key` can take now.
    pub async fn transitions(&self, key: &str) -> Result<Vec<Transition>, CallError> {
        let url = format!("{}/transitions", self.issue_url(key));
        let resp = self.send(self.http.get(url)).await?;
        if !resp.status().is_success() {
            return Err(Self::fail(resp, key).await);
        }
        let list: TransitionsJson = resp
            .json()
            .await
            .map_err(|e| CallError::transport(SERVICE, &e))?;
        Ok(list
            .transitions
            .into_iter()
            .map(|t| Transition {
                id: t.id,
                name: t.name,
                to: t.to.name,
            })
            .collect())
    }

    /// Moves issue `key` by transition `id`.
    pub async fn transition(&self, key: &str, id: &str) -> Result<(), CallError> {
        let url = format!("{}/transitions", self.issue_url(key));
        let body = json!({"transition": {"id": id}});
        let resp = self.send(self.http.post(url).json(&body)).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(Self::fail(resp, key).await)
    }
}

/// The transition that `wanted` names, by its name or its target status, ignoring case.
pub fn find<'a>(transitions: &'a [Transition], wanted: &str) -> Option<&'a Transition> {
    transitions
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(wanted))
        .or_else(|| {
            transitions
                .iter()
                .find(|t| t.to.eq_ignore_ascii_case(wanted))
        })
}

/// A message as an Atlassian Document: the headline, then the release's facts, each a paragraph.
pub fn document(m: &Message) -> Value {
    let paragraphs: Vec<Value> = [&m.headline, &m.context]
        .into_iter()
        .map(|spans| spans.iter().filter_map(node).collect::<Vec<_>>())
        .filter(|nodes| !nodes.is_empty())
        .map(|content| json!({"type": "paragraph", "content": content}))
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// A span as an ADF text node (`None` for an empty one: ADF refuses empty text).
fn node(span: &Span) -> Option<Value> {
    let (text, mark) = match span {
        Span::Text(t) => (t, None),
        Span::Strong(t) => (t, Some(json!({"type": "strong"}))),
        Span::Code(t) => (t, Some(json!({"type": "code"}))),
        Span::Link { url, label } => (label, Some(json!({"type": "link", "attrs": {"href": url}}))),
    };
    if text.is_empty() {
        return None;
    }
    Some(match mark {
        Some(mark) => json!({"type": "text", "text": text, "marks": [mark]}),
        None => json!({"type": "text", "text": text}),
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::notify::Mark;

    #[test]
    fn a_message_is_a_document_of_paragraphs_with_marks() {
        let m = Message {
            mark: Mark::Deployed,
            subject: "PAY-1".into(),
            headline: vec![
                Span::Strong("Deployed".into()),
                Span::Text(" ".into()),
                Span::Code("v1.4.0".into()),
                Span::Text(String::new()),
            ],
            context: vec![Span::Link {
                url: "https://bitbucket.org/acme/api/commits/abc".into(),
                label: "abc".into(),
            }],
            actions: vec![],
        };
        let doc = document(&m);
        assert_eq!(doc["type"], "doc");
        assert_eq!(doc["version"], 1);
        let first = &doc["content"][0]["content"];
        assert_eq!(
            first.as_array().unwrap().len(),
            3,
            "the empty span is left out"
        );
        assert_eq!(first[0]["marks"][0]["type"], "strong");
        assert_eq!(first[2]["marks"][0]["type"], "code");
        assert!(first[1].get("marks").is_none());
        let link = &doc["content"][1]["content"][0];
        assert_eq!(
            link["marks"][0]["attrs"]["href"],
            "https://bitbucket.org/acme/api/commits/abc"
        );
    }

    #[test]
    fn a_transition_is_found_by_name_then_by_target_status() {
        let t = |id: &str, name: &str, to: &str| Transition {
            id: id.into(),
            name: name.into(),
            to: to.into(),
        };
        let all = [
            t("11", "Start progress", "In Progress"),
            t("31", "Ship it", "Done"),
        ];
        assert_eq!(find(&all, "ship IT").unwrap().id, "31");
        assert_eq!(find(&all, "done").unwrap().id, "31");
        assert_eq!(find(&all, "in progress").unwrap().id, "11");
        assert!(find(&all, "Ready for QA").is_none());
    }
}
