//! What Jira sends to Hoist: the body of a Jira Automation "Send web request" rule (unsigned,
//! with a secret header) and native `jira:issue_updated` admin webhooks (optionally signed with
//! `X-Hub-Signature: sha256=<hex>`), plus a small sender for both; and what Hoist writes back to
//! Jira Cloud, served by [`JiraCloudSim`] (comments and transitions, REST API v3).

mod cloud;

pub use cloud::{JiraAuth, JiraCloudSim};

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

/// The simulated Jira site.
pub const SITE: &str = "https://acme.atlassian.net";

static ASSIGNEE_SAMPLE: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../fixtures/jira-webhook-issue-updated-assignee-trimmed.json"
    ))
    .expect("fixtures/jira-webhook-issue-updated-assignee-trimmed.json is JSON")
});

static STATUS_SAMPLE: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../fixtures/jira-webhook-issue-updated-status-trimmed.json"
    ))
    .expect("fixtures/jira-webhook-issue-updated-status-trimmed.json is JSON")
});

/// The default body of Hoist's Jira Automation rule: `{"repo", "commit", "issue", "env"?}`.
pub fn automation_body(repo: &str, commit: &str, issue: &str, env: Option<&str>) -> Value {
    let mut body = json!({"repo": repo, "commit": commit, "issue": issue});
    if let Some(env) = env {
        body["env"] = json!(env);
    }
    body
}

/// A stable Jira Cloud account id for a display name (24 hex digits, like real ones).
fn account_id(name: &str) -> String {
    hex::encode(&sha256(name.as_bytes())[..12])
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// A Jira Cloud user object as webhooks carry it.
fn user(name: &str) -> Value {
    let id = account_id(name);
    let avatar = format!("https://avatar-management.services.atlassian.com/{id}");
    json!({
        "self": format!("{SITE}/rest/api/2/user?accountId={id}"),
        "accountId": id,
        "avatarUrls": {
            "48x48": format!("{avatar}/48"),
            "24x24": format!("{avatar}/24"),
            "16x16": format!("{avatar}/16"),
            "32x32": format!("{avatar}/32")
        },
        "displayName": name,
        "active": true,
        "timeZone": "Etc/UTC",
        "accountType": "atlassian"
    })
}

fn issue_id(issue_key: &str) -> String {
    let digest = sha256(issue_key.as_bytes());
    (10_000 + u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 90_000).to_string()
}

/// The parts every `jira:issue_updated` shares.
fn issue_updated(issue_key: &str, event_type_name: &str, changelog_items: Value) -> Value {
    let id = issue_id(issue_key);
    let mut event = ASSIGNEE_SAMPLE.clone();
    event["timestamp"] = json!(chrono::Utc::now().timestamp_millis());
    event["webhookEvent"] = json!("jira:issue_updated");
    event["issue_event_type_name"] = json!(event_type_name);
    event["user"] = user("Release Manager");
    event["issue"] = json!({
        "id": id,
        "self": format!("{SITE}/rest/api/2/{id}"),
        "key": issue_key,
        "fields": {"summary": format!("Release {issue_key}")}
    });
    event["changelog"] =
        json!({"id": (id.parse::<u64>().unwrap_or(0) * 7).to_string(), "items": changelog_items});
    event
}

/// A native `jira:issue_updated` for an assignment (shaped like
/// `fixtures/jira-webhook-issue-updated-assignee-trimmed.json`, with Jira Cloud's `timestamp`,
/// `webhookEvent`, `issue_event_type_name` and `user`). `fields` is merged into `issue.fields`;
/// `assignee` is a display name (`None`: the issue was unassigned).
pub fn issue_updated_assignee(issue_key: &str, fields: Value, assignee: Option<&str>) -> Value {
    let mut item = ASSIGNEE_SAMPLE["changelog"]["items"][0].clone();
    item["from"] = Value::Null;
    item["fromString"] = Value::Null;
    item["to"] = assignee
        .map(|a| json!(account_id(a)))
        .unwrap_or(Value::Null);
    item["toString"] = assignee.map(|a| json!(a)).unwrap_or(Value::Null);
    let mut event = issue_updated(issue_key, "issue_assigned", json!([item]));
    let issue_fields = &mut event["issue"]["fields"];
    issue_fields["assignee"] = assignee.map(user).unwrap_or(Value::Null);
    if let Value::Object(extra) = fields {
        for (key, value) in extra {
            issue_fields[key] = value;
        }
    }
    event
}

/// A native `jira:issue_updated` that is not an assignment (the summary changed).
pub fn issue_updated_other(issue_key: &str) -> Value {
    let item = json!({
        "field": "summary",
        "fieldtype": "jira",
        "fieldId": "summary",
        "from": null,
        "fromString": format!("Release {issue_key}"),
        "to": null,
        "toString": format!("Release {issue_key} (renamed)")
    });
    let mut event = issue_updated(issue_key, "issue_updated", json!([item]));
    event["issue"]["fields"]["summary"] = json!(format!("Release {issue_key} (renamed)"));
    event
}

/// A native `jira:issue_updated` for a status change (a transition), shaped like
/// `fixtures/jira-webhook-issue-updated-status-trimmed.json`: `issue_event_type_name`
/// `issue_generic`, one `changelog.items` entry for the `status` field with the statuses' ids
/// (`from`, `to`) and names (`fromString`, `toString`), and `issue.fields.status` the new status.
/// Statuses of [`JiraCloudSim`]'s workflow keep their ids there; others get stable ones.
pub fn issue_updated_status(issue_key: &str, from: &str, to: &str) -> Value {
    let mut item = STATUS_SAMPLE["changelog"]["items"][0].clone();
    item["from"] = json!(cloud::status_id(from));
    item["fromString"] = json!(from);
    item["to"] = json!(cloud::status_id(to));
    item["toString"] = json!(to);
    let mut event = issue_updated(issue_key, "issue_generic", json!([item]));
    event["issue"]["fields"]["status"] = cloud::status_json(SITE, 2, to);
    event
}

/// `X-Hub-Signature` for a Jira admin webhook with a secret: `sha256=<hex HMAC-SHA256>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", crate::sign::hmac_sha256_hex(secret, body))
}

/// Sends what Jira would send.
#[derive(Clone)]
pub struct JiraSim {
    client: reqwest::Client,
}

impl Default for JiraSim {
    fn default() -> Self {
        Self::new()
    }
}

impl JiraSim {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        Self { client }
    }

    /// Posts an Automation body with the rule's secret header; returns the status and the
    /// answer (JSON, or the raw text as a `Value::String`).
    pub async fn send_automation(
        &self,
        url: &str,
        token_header: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(token_header, token)
            .body(serde_json::to_vec(body)?);
        send(request, url).await
    }

    /// Posts a native webhook with `X-Atlassian-Webhook-Identifier: webhook_id` and, with a
    /// secret, `X-Hub-Signature`.
    pub async fn send_native(
        &self,
        url: &str,
        secret: Option<&str>,
        body: &Value,
        webhook_id: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let bytes = serde_json::to_vec(body)?;
        let mut request = self
            .client
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header("user-agent", "Atlassian Webhook HTTP Client")
            .header("X-Atlassian-Webhook-Identifier", webhook_id);
        if let Some(secret) = secret {
            request = request.header("X-Hub-Signature", sign(secret, &bytes));
        }
        send(request.body(bytes), url).await
    }
}

async fn send(request: reqwest::RequestBuilder, url: &str) -> anyhow::Result<(u16, Value)> {
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::post;

    use super::*;

    #[test]
    fn automation_body_is_hoists_default() {
        assert_eq!(
            automation_body("payments-api", "abc", "PAY-1", Some("stg")),
            json!({"repo": "payments-api", "commit": "abc", "issue": "PAY-1", "env": "stg"})
        );
        assert!(automation_body("r", "c", "I-1", None).get("env").is_none());
    }

    #[test]
    fn assignment_is_a_native_issue_updated() {
        let fields = json!({"customfield_10050": "payments-api", "customfield_10051": "abc123"});
        let event = issue_updated_assignee("PAY-7", fields, Some("Jess MacQueen"));
        assert_eq!(event["webhookEvent"], "jira:issue_updated");
        assert_eq!(event["issue_event_type_name"], "issue_assigned");
        assert!(event["timestamp"].is_i64());
        assert_eq!(event["issue"]["key"], "PAY-7");
        assert_eq!(
            event["issue"]["fields"]["customfield_10050"],
            "payments-api"
        );
        assert_eq!(
            event["issue"]["fields"]["assignee"]["displayName"],
            "Jess MacQueen"
        );
        let item = &event["changelog"]["items"][0];
        assert_eq!(item["field"], "assignee");
        assert_eq!(item["toString"], "Jess MacQueen");
        assert_eq!(
            item["to"],
            event["issue"]["fields"]["assignee"]["accountId"]
        );
        assert!(event["user"]["accountId"].is_string());

        let unassigned = issue_updated_assignee("PAY-7", json!({}), None);
        assert!(unassigned["changelog"]["items"][0]["to"].is_null());
        assert!(unassigned["issue"]["fields"]["assignee"].is_null());
        let other = issue_updated_other("PAY-7");
        assert_eq!(other["changelog"]["items"][0]["field"], "summary");
        assert_eq!(other["issue_event_type_name"], "issue_updated");
    }

    #[test]
    fn status_change_is_a_generic_issue_updated() {
        let event = issue_updated_status("PAY-7", "In QA", "Done");
        assert_eq!(event["webhookEvent"], "jira:issue_updated");
        assert_eq!(event["issue_event_type_name"], "issue_generic");
        assert_eq!(event["issue"]["key"], "PAY-7");
        let sample = &STATUS_SAMPLE["changelog"]["items"][0];
        let item = &event["changelog"]["items"][0];
        let mut keys: Vec<_> = item.as_object().unwrap().keys().collect();
        keys.sort();
        let mut sample_keys: Vec<_> = sample.as_object().unwrap().keys().collect();
        sample_keys.sort();
        assert_eq!(keys, sample_keys);
        assert_eq!(
            (&item["field"], &item["fieldId"]),
            (&json!("status"), &json!("status"))
        );
        assert_eq!(item["fieldtype"], "jira");
        assert_eq!(
            (&item["fromString"], &item["toString"]),
            (&json!("In QA"), &json!("Done"))
        );
        assert_eq!(
            (&item["from"], &item["to"]),
            (&json!("10002"), &json!("10003"))
        );
        let status = &event["issue"]["fields"]["status"];
        assert_eq!(
            (&status["name"], &status["id"]),
            (&json!("Done"), &json!("10003"))
        );
        assert_eq!(status["statusCategory"]["key"], "done");
        assert_eq!(status["self"], format!("{SITE}/rest/api/2/status/10003"));
        let custom = issue_updated_status("PAY-7", "Backlog", "Blocked");
        let item = &custom["changelog"]["items"][0];
        assert_ne!(item["from"], item["to"]);
        assert_eq!(
            item["to"],
            issue_updated_status("X-1", "To Do", "Blocked")["changelog"]["items"][0]["to"]
        );
    }

    type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    #[tokio::test]
    async fn senders_set_jiras_headers() {
        let received: Received = Arc::default();
        let app = Router::new()
            .route(
                "/hooks/jira",
                post(
                    |State(r): State<Received>, headers: HeaderMap, body: Bytes| async move {
                        r.lock().unwrap().push((headers, body));
                        (axum::http::StatusCode::ACCEPTED, "{\"release\": 1}")
                    },
                ),
            )
            .route("/text", post(|| async { "plain" }))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let root = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let jira = JiraSim::new();
        let url = format!("{root}/hooks/jira");

        let body = automation_body("payments-api", "abc", "PAY-1", None);
        let answer = jira
            .send_automation(&url, "X-Hoist-Token", "t0k", &body)
            .await
            .unwrap();
        assert_eq!(answer, (202, json!({"release": 1})));
        let event = issue_updated_assignee("PAY-1", json!({}), Some("Jess"));
        jira.send_native(&url, Some("jira-secret"), &event, "wh-1")
            .await
            .unwrap();
        jira.send_native(&url, None, &event, "wh-2").await.unwrap();
        let text = jira
            .send_native(&format!("{root}/text"), None, &event, "wh-3")
            .await
            .unwrap();
        assert_eq!(text, (200, Value::String("plain".into())));

        let received = received.lock().unwrap();
        assert_eq!(received[0].0["x-hoist-token"], "t0k");
        assert_eq!(
            serde_json::from_slice::<Value>(&received[0].1).unwrap(),
            body
        );
        assert_eq!(received[1].0["x-atlassian-webhook-identifier"], "wh-1");
        let signature = received[1].0["x-hub-signature"].to_str().unwrap();
        assert_eq!(signature, sign("jira-secret", &received[1].1));
        assert!(received[2].0.get("x-hub-signature").is_none());
    }
}
