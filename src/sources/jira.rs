//! Jira: Automation "Send web request" bodies and native `jira:issue_updated` webhooks.

use serde_json::Value;

use super::{InputError, parse_json, string_at};
use crate::config::{AutomationFields, IssueFields};
use crate::domain::CommitSha;

/// A ticket assignment that asks for a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub repo: String,
    pub commit: CommitSha,
    pub issue: Option<String>,
    pub env: Option<String>,
    /// `automation` or `jira:issue_updated`.
    pub event: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JiraEvent {
    Assignment(Assignment),
    /// An issue moved to another status (a native `jira:issue_updated` whose changelog changes
    /// `status`): it may promote the issue's release (SPEC 13).
    StatusChanged(StatusChange),
    /// Understood, but not a release request: acknowledged with the reason.
    Ignored {
        event: String,
        reason: String,
    },
}

/// An issue's new status, and who moved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub issue: String,
    /// The new status's name (`changelog.items[].toString`).
    pub status: String,
    /// The user's display name (or account id) as the webhook names them, else `jira`.
    pub by: String,
}

impl JiraEvent {
    /// The event's name, as recorded with its delivery.
    pub fn name(&self) -> &str {
        match self {
            Self::Assignment(a) => a.event,
            Self::StatusChanged(_) => "jira:issue_updated",
            Self::Ignored { event, .. } => event,
        }
    }
}

/// Parses either body shape. A body with `webhookEvent` is a native webhook; anything else is an
/// Automation body read through the configured JSON pointers.
pub fn parse(
    body: &[u8],
    fields: &AutomationFields,
    issue_fields: &IssueFields,
) -> Result<JiraEvent, InputError> {
    let v = parse_json(body)?;
    if !v.is_object() {
        return Err(InputError::invalid("(body)", "must be a JSON object"));
    }
    match v.get("webhookEvent").and_then(Value::as_str) {
        Some(event) => parse_native(&v, event, issue_fields),
        None => parse_automation(&v, fields).map(JiraEvent::Assignment),
    }
}

fn parse_automation(v: &Value, f: &AutomationFields) -> Result<Assignment, InputError> {
    let hint = |ptr: &str| {
        format!(
            " (read from JSON pointer {ptr}; set sources.jira.fields if your Automation body uses other names)"
        )
    };
    let repo = string_at(v, &f.repo)
        .ok_or_else(|| InputError::missing(field_name(&f.repo), &hint(&f.repo)))?;
    let commit_raw = string_at(v, &f.commit)
        .ok_or_else(|| InputError::missing(field_name(&f.commit), &hint(&f.commit)))?;
    let commit =
        CommitSha::parse(commit_raw).map_err(|e| InputError::invalid(field_name(&f.commit), &e))?;
    let issue = string_at(v, &f.issue).map(str::to_string);
    if let Some(i) = &issue {
        check_issue_key(i, field_name(&f.issue))?;
    }
    let env = if f.env.is_empty() {
        None
    } else {
        string_at(v, &f.env).map(str::to_string)
    };
    Ok(Assignment {
        repo: repo.to_string(),
        commit,
        issue,
        env,
        event: "automation",
    })
}

fn parse_native(v: &Value, event: &str, f: &IssueFields) -> Result<JiraEvent, InputError> {
    let ignored = |reason: String| {
        Ok(JiraEvent::Ignored {
            event: event.to_string(),
            reason,
        })
    };
    if event != "jira:issue_updated" {
        return ignored(format!(
            "event {} is not an assignment",
            super::quote(event)
        ));
    }
    let items = v
        .pointer("/changelog/items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let assigned = items.iter().any(|i| {
        let field = i
            .get("fieldId")
            .or_else(|| i.get("field"))
            .and_then(Value::as_str);
        field == Some("assignee") && i.get("to").is_some_and(|t| !t.is_null())
    });
    let status = items.iter().find_map(|i| {
        let field = i
            .get("fieldId")
            .or_else(|| i.get("field"))
            .and_then(Value::as_str);
        (field == Some("status"))
            .then(|| i.get("toString").and_then(Value::as_str))
            .flatten()
    });
    if let (false, Some(status)) = (assigned, status) {
        let issue = v
            .pointer("/issue/key")
            .and_then(Value::as_str)
            .ok_or_else(|| InputError::missing("issue.key", ""))?;
        check_issue_key(issue, "issue.key")?;
        let by = ["/user/displayName", "/user/accountId", "/user/name"]
            .iter()
            .find_map(|p| v.pointer(p).and_then(Value::as_str))
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("jira");
        return Ok(JiraEvent::StatusChanged(StatusChange {
            issue: issue.to_string(),
            status: status.to_string(),
            by: by.chars().take(200).collect(),
        }));
    }
    if !assigned {
        let unassigned = items
            .iter()
            .any(|i| i.get("field").and_then(Value::as_str) == Some("assignee"));
        return ignored(if unassigned {
            "the assignee was removed, not set".into()
        } else {
            "the update does not change the assignee".into()
        });
    }
    let issue = v
        .pointer("/issue/key")
        .and_then(Value::as_str)
        .ok_or_else(|| InputError::missing("issue.key", ""))?;
    check_issue_key(issue, "issue.key")?;
    let issue_obj = v.get("issue").cloned().unwrap_or(Value::Null);
    let (Some(repo_ptr), Some(commit_ptr)) = (&f.repo, &f.commit) else {
        return ignored(
            "native webhooks need sources.jira.issue_fields.repo and .commit (JSON pointers into the issue, e.g. \"/fields/customfield_10050\")".into(),
        );
    };
    let repo = string_at(&issue_obj, repo_ptr).ok_or_else(|| {
        InputError::missing(&format!("issue{repo_ptr}"), &format!(" (issue {issue} has no repository in the field sources.jira.issue_fields.repo names)"))
    })?;
    let commit_raw = string_at(&issue_obj, commit_ptr).ok_or_else(|| {
        InputError::missing(
            &format!("issue{commit_ptr}"),
            &format!(
                " (issue {issue} has no commit in the field sources.jira.issue_fields.commit names)"
            ),
        )
    })?;
    let commit = CommitSha::parse(commit_raw)
        .map_err(|e| InputError::invalid(&format!("issue{commit_ptr}"), &e))?;
    let env = f
        .env
        .as_deref()
        .and_then(|p| string_at(&issue_obj, p))
        .map(str::to_string);
    Ok(JiraEvent::Assignment(Assignment {
        repo: repo.to_string(),
        commit,
        issue: Some(issue.to_string()),
        env,
        event: "jira:issue_updated",
    }))
}

fn field_name(pointer: &str) -> &str {
    pointer.trim_start_matches('/')
}

fn check_issue_key(key: &str, field: &str) -> Result<(), InputError> {
    let ok = key.len() <= 64
        && key.split_once('-').is_some_and(|(p, n)| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(InputError::invalid(
            field,
            "must be an issue key such as PROJ-123",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> (AutomationFields, IssueFields) {
        (
            AutomationFields::default(),
            IssueFields {
                repo: Some("/fields/customfield_10050".into()),
                commit: Some("/fields/customfield_10051".into()),
                env: None,
            },
        )
    }

    #[test]
    fn automation_body() {
        let (a, i) = fields();
        let body = br#"{"repo": "payments-api", "commit": "ABCDEF1234567", "issue": "PAY-12", "env": "stg"}"#;
        let JiraEvent::Assignment(x) = parse(body, &a, &i).unwrap() else {
            panic!()
        };
        assert_eq!(x.repo, "payments-api");
        assert_eq!(x.commit.as_str(), "abcdef1234567");
        assert_eq!(x.issue.as_deref(), Some("PAY-12"));
        assert_eq!(x.env.as_deref(), Some("stg"));
    }

    #[test]
    fn custom_pointers() {
        let a = AutomationFields {
            repo: "/data/repository".into(),
            commit: "/data/sha".into(),
            issue: "/key".into(),
            env: "/data/stage".into(),
        };
        let body = br#"{"key": "OPS-1", "data": {"repository": "api", "sha": "0123456789abcdef0123456789abcdef01234567"}}"#;
        let JiraEvent::Assignment(x) = parse(body, &a, &IssueFields::default()).unwrap() else {
            panic!()
        };
        assert_eq!(x.repo, "api");
        assert!(x.commit.is_full());
        assert_eq!(x.env, None);
    }

    #[test]
    fn bad_automation_bodies_name_the_field() {
        let (a, i) = fields();
        let cases: &[(&[u8], &str, &str)] = &[
            (b"{", "invalid_json", "not valid JSON"),
            (b"[1]", "invalid_field", "JSON object"),
            (br#"{"commit": "abcdef1"}"#, "missing_field", "`repo`"),
            (br#"{"repo": "x"}"#, "missing_field", "`commit`"),
            (
                br#"{"repo": "x", "commit": "zzz"}"#,
                "invalid_field",
                "`commit`",
            ),
            (
                br#"{"repo": "x", "commit": "abcdef1", "issue": "not a key"}"#,
                "invalid_field",
                "`issue`",
            ),
        ];
        for (body, code, text) in cases {
            let e = parse(body, &a, &i).unwrap_err();
            assert_eq!(e.code, *code, "{}", String::from_utf8_lossy(body));
            assert!(
                e.message.contains(text),
                "{} -> {}",
                String::from_utf8_lossy(body),
                e.message
            );
        }
    }

    #[test]
    fn native_assignment_from_fixture() {
        let (a, i) = fields();
        let mut v: Value = serde_json::from_str(include_str!(
            "../../fixtures/jira-webhook-issue-updated-assignee-trimmed.json"
        ))
        .unwrap();
        v["webhookEvent"] = "jira:issue_updated".into();
        v["issue"]["fields"]["customfield_10050"] = "payments-api".into();
        v["issue"]["fields"]["customfield_10051"] =
            serde_json::json!("abcdef1234567890abcdef1234567890abcdef12");
        let JiraEvent::Assignment(x) = parse(v.to_string().as_bytes(), &a, &i).unwrap() else {
            panic!()
        };
        assert_eq!(x.issue.as_deref(), Some("APP-123"));
        assert_eq!(x.repo, "payments-api");
        assert_eq!(x.event, "jira:issue_updated");
    }

    #[test]
    fn native_other_updates_are_ignored_with_reason() {
        let (a, i) = fields();
        let body = br#"{"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}, "changelog": {"items": [{"field": "summary", "to": null, "toString": "x"}]}}"#;
        let JiraEvent::Ignored { reason, .. } = parse(body, &a, &i).unwrap() else {
            panic!()
        };
        assert!(reason.contains("does not change the assignee"));
        let body = br#"{"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}, "changelog": {"items": [{"field": "assignee", "fieldId": "assignee", "to": null}]}}"#;
        let JiraEvent::Ignored { reason, .. } = parse(body, &a, &i).unwrap() else {
            panic!()
        };
        assert!(reason.contains("removed"));
        let body = br#"{"webhookEvent": "jira:issue_created", "issue": {"key": "A-1"}}"#;
        assert!(matches!(
            parse(body, &a, &i).unwrap(),
            JiraEvent::Ignored { .. }
        ));
    }

    #[test]
    fn depth_bomb_is_refused() {
        let (a, i) = fields();
        let body = "[".repeat(100_000);
        assert_eq!(
            parse(body.as_bytes(), &a, &i).unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn a_status_change_names_the_issue_the_status_and_who() {
        let (a, i) = fields();
        let mut v: Value = serde_json::from_str(include_str!(
            "../../fixtures/jira-webhook-issue-updated-status-trimmed.json"
        ))
        .unwrap();
        v["webhookEvent"] = "jira:issue_updated".into();
        let JiraEvent::StatusChanged(c) = parse(v.to_string().as_bytes(), &a, &i).unwrap() else {
            panic!()
        };
        assert_eq!(
            (c.issue.as_str(), c.status.as_str(), c.by.as_str()),
            ("APP-123", "In Progress", "jira")
        );
        v["user"] = serde_json::json!({"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof"});
        let JiraEvent::StatusChanged(c) = parse(v.to_string().as_bytes(), &a, &i).unwrap() else {
            panic!()
        };
        assert_eq!(c.by, "Mia Krystof");
        v["issue"]["key"] = "not a key".into();
        assert!(parse(v.to_string().as_bytes(), &a, &i).is_err());
    }
}
