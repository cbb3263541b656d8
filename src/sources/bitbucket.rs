//! Bitbucket Cloud `repo:push` webhooks: the tags a push created, so that Hoist learns of tags
//! people push by hand.
//!
//! A push lists `push.changes[]`, each with the ref before (`old`) and after (`new`); a created or
//! moved tag has `new.type == "tag"`, `new.name` and `new.target.hash`. Branch changes and deleted
//! refs are counted but carry no tag. Unknown fields are ignored.

use serde::Deserialize;

use super::{InputError, parse_json};
use crate::domain::CommitSha;

/// The event key of a push (`X-Event-Key`).
pub const PUSH_EVENT: &str = "repo:push";
/// Longest tag name accepted (git allows more; no release tag comes near this).
const MAX_TAG_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `workspace/slug`.
    pub repository: String,
    /// Tags the push created or moved, in the payload's order.
    pub tags: Vec<PushedTag>,
    /// Changes that were not a tag arriving (branches, deletions).
    pub other_changes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedTag {
    pub name: String,
    /// The full 40-hex commit hash.
    pub commit: CommitSha,
}

#[derive(Deserialize)]
struct Payload {
    push: Option<PushBody>,
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct PushBody {
    changes: Option<Vec<Change>>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct Change {
    new: Option<Ref>,
}

#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    target: Option<Target>,
}

#[derive(Deserialize)]
struct Target {
    hash: Option<String>,
}

/// Parses a `repo:push` body.
pub fn parse_push(body: &[u8]) -> Result<Push, InputError> {
    let v = parse_json(body)?;
    if !v.is_object() {
        return Err(InputError::invalid("(body)", "must be a JSON object"));
    }
    let p: Payload = serde_json::from_value(v).map_err(|e| {
        InputError::invalid(
            "(body)",
            &format!(
                "not a Bitbucket repo:push payload: {}",
                super::quote(&e.to_string())
            ),
        )
    })?;
    let repository = p
        .repository
        .and_then(|r| r.full_name)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| InputError::missing("repository.full_name", ""))?;
    if repository.len() > 200 {
        return Err(InputError::invalid(
            "repository.full_name",
            "longer than 200 characters",
        ));
    }
    let changes = p
        .push
        .and_then(|p| p.changes)
        .ok_or_else(|| InputError::missing("push.changes", " (is this a repo:push event?)"))?;
    let mut tags = Vec::new();
    let mut other_changes = 0;
    for (i, change) in changes.into_iter().enumerate() {
        match change.new {
            Some(r) if r.kind.as_deref() == Some("tag") => tags.push(tag(i, r)?),
            _ => other_changes += 1,
        }
    }
    Ok(Push {
        repository,
        tags,
        other_changes,
    })
}

fn tag(i: usize, r: Ref) -> Result<PushedTag, InputError> {
    let at = |field: &str| format!("push.changes[{i}].new.{field}");
    let name = r
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| InputError::missing(&at("name"), ""))?;
    if name.len() > MAX_TAG_LEN || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(InputError::invalid(
            &at("name"),
            "is not a tag name (too long, or holds spaces or control characters)",
        ));
    }
    let hash = r
        .target
        .and_then(|t| t.hash)
        .ok_or_else(|| InputError::missing(&at("target.hash"), ""))?;
    let commit = CommitSha::parse(&hash)
        .ok()
        .filter(CommitSha::is_full)
        .ok_or_else(|| {
            InputError::invalid(&at("target.hash"), "is not a full 40-hex commit hash")
        })?;
    Ok(PushedTag { name, commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_created_fixture() {
        let push = parse_push(include_bytes!(
            "../../fixtures/bitbucket-webhook-repo-push-tag-created.json"
        ))
        .unwrap();
        assert_eq!(push.repository, "amuniz/test-repos");
        assert_eq!(
            push.tags,
            [PushedTag {
                name: "simple-tag".into(),
                commit: CommitSha::parse("7ef5981d59145c3ed300b1ab77b93907d33abe59").unwrap()
            }]
        );
        assert_eq!(push.other_changes, 0);
    }

    #[test]
    fn branch_push_fixture_has_no_tag() {
        let push = parse_push(include_bytes!(
            "../../fixtures/bitbucket-webhook-repo-push-signed.json"
        ))
        .unwrap();
        assert_eq!(push.repository, "nfalco79/test-repos");
        assert!(push.tags.is_empty());
        assert_eq!(push.other_changes, 1);
    }

    #[test]
    fn bad_pushes_name_the_field() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"[]", "invalid_field", "JSON object"),
            (br#"{"push": {"changes": []}}"#, "missing_field", "repository.full_name"),
            (br#"{"repository": {"full_name": "a/b"}}"#, "missing_field", "push.changes"),
            (
                br#"{"repository": {"full_name": "a/b"}, "push": {"changes": [{"new": {"type": "tag", "name": "v1", "target": {"hash": "abc1234"}}}]}}"#,
                "invalid_field",
                "push.changes[0].new.target.hash",
            ),
            (
                br#"{"repository": {"full_name": "a/b"}, "push": {"changes": [{"new": {"type": "tag", "target": {"hash": "abc1234"}}}]}}"#,
                "missing_field",
                "push.changes[0].new.name",
            ),
            (
                br#"{"repository": {"full_name": 5}, "push": {"changes": []}}"#,
                "invalid_field",
                "not a Bitbucket repo:push payload",
            ),
        ];
        for (body, code, text) in cases {
            let e = parse_push(body).unwrap_err();
            assert_eq!(e.code, *code, "{}", String::from_utf8_lossy(body));
            assert!(e.message.contains(text), "{}", e.message);
        }
    }

    #[test]
    fn deleted_tags_and_branches_are_other_changes() {
        let body = br#"{"repository": {"full_name": "acme/api"}, "push": {"changes": [
            {"old": {"type": "tag", "name": "stg1.0.0"}, "new": null},
            {"new": {"type": "branch", "name": "main", "target": {"hash": "x"}}}]}}"#;
        let push = parse_push(body).unwrap();
        assert_eq!((push.tags.len(), push.other_changes), (0, 2));
    }
}
