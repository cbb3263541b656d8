//! What the Bitbucket simulator stores (commits and tags per repository) and how it renders
//! them as Bitbucket Cloud 2.0 JSON. Every object starts from a real API response in
//! `fixtures/` and only the values that differ are replaced, so the shape stays Bitbucket's.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::query::escape_ref;

static COMMIT_TEMPLATE: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../../fixtures/bitbucket-commit-200.json"))
        .expect("fixtures/bitbucket-commit-200.json is JSON")
});

static TAG_TEMPLATE: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../../fixtures/bitbucket-refs-tag-single.json"
    ))
    .expect("fixtures/bitbucket-refs-tag-single.json is JSON")
});

/// The author written on every simulated commit and annotated tag.
pub(crate) const AUTHOR_RAW: &str = "Hoist Demo <demo@acme.example>";

/// One commit of a simulated repository.
#[derive(Debug, Clone)]
pub(crate) struct CommitRec {
    pub hash: String,
    pub date: DateTime<Utc>,
    pub message: String,
    pub parent: Option<String>,
}

/// One tag. `annotation` is `None` for a lightweight tag (what `POST refs/tags` makes), whose
/// `message`, `date` and `tagger` Bitbucket reports as `null`.
#[derive(Debug, Clone)]
pub(crate) struct TagRec {
    pub name: String,
    pub hash: String,
    pub annotation: Option<Annotation>,
}

#[derive(Debug, Clone)]
pub(crate) struct Annotation {
    pub date: DateTime<Utc>,
    pub message: String,
}

/// Where a repository's links point.
pub(crate) struct RepoCtx<'a> {
    /// `http://127.0.0.1:PORT`
    pub root: &'a str,
    pub workspace: &'a str,
    pub slug: &'a str,
    pub uuid: &'a str,
}

impl RepoCtx<'_> {
    fn api(&self) -> String {
        format!(
            "{}/2.0/repositories/{}/{}",
            self.root, self.workspace, self.slug
        )
    }

    fn html(&self) -> String {
        format!("{}/{}/{}", self.root, self.workspace, self.slug)
    }

    fn repository(&self) -> Value {
        json!({
            "type": "repository",
            "full_name": format!("{}/{}", self.workspace, self.slug),
            "links": {
                "self": {"href": self.api()},
                "html": {"href": self.html()},
                "avatar": {"href": format!("{}/avatar", self.html())}
            },
            "name": self.slug,
            "uuid": self.uuid
        })
    }

    fn commit_links(&self, hash: &str) -> Value {
        let api = self.api();
        json!({
            "self": {"href": format!("{api}/commit/{hash}")},
            "html": {"href": format!("{}/commits/{hash}", self.html())},
            "diff": {"href": format!("{api}/diff/{hash}")},
            "approve": {"href": format!("{api}/commit/{hash}/approve")},
            "comments": {"href": format!("{api}/commit/{hash}/comments")},
            "statuses": {"href": format!("{api}/commit/{hash}/statuses")},
            "patch": {"href": format!("{api}/patch/{hash}")}
        })
    }

    fn parents(&self, commit: &CommitRec) -> Value {
        let parents: Vec<Value> = commit
            .parent
            .iter()
            .map(|hash| {
                json!({
                    "hash": hash,
                    "type": "commit",
                    "links": {
                        "self": {"href": format!("{}/commit/{hash}", self.api())},
                        "html": {"href": format!("{}/commits/{hash}", self.html())}
                    }
                })
            })
            .collect();
        Value::Array(parents)
    }
}

/// Bitbucket's date format: `2018-09-21T14:49:23+00:00`.
pub(crate) fn bb_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// `GET .../commit/{sha}`, shaped like `fixtures/bitbucket-commit-200.json`.
pub(crate) fn commit_json(ctx: &RepoCtx<'_>, commit: &CommitRec) -> Value {
    let mut value = COMMIT_TEMPLATE.clone();
    value["hash"] = json!(commit.hash);
    value["repository"] = ctx.repository();
    value["links"] = ctx.commit_links(&commit.hash);
    value["author"] = json!({"raw": AUTHOR_RAW});
    value["summary"] = json!({
        "raw": commit.message,
        "markup": "markdown",
        "html": format!("<p>{}</p>", html_escape(commit.message.trim_end())),
        "type": "rendered"
    });
    value["parents"] = ctx.parents(commit);
    value["date"] = json!(bb_date(commit.date));
    value["message"] = json!(commit.message);
    value
}

/// A tag as listed by `GET .../refs/tags`, shaped like `fixtures/bitbucket-refs-tag-single.json`.
pub(crate) fn tag_json(ctx: &RepoCtx<'_>, tag: &TagRec, commit: &CommitRec) -> Value {
    let mut value = TAG_TEMPLATE.clone();
    value["name"] = json!(tag.name);
    match &tag.annotation {
        Some(annotation) => {
            value["message"] = json!(annotation.message);
            value["date"] = json!(bb_date(annotation.date));
            value["tagger"]["raw"] = json!(AUTHOR_RAW);
        }
        None => {
            value["message"] = Value::Null;
            value["date"] = Value::Null;
            value["tagger"] = Value::Null;
        }
    }
    let target = &mut value["target"];
    target["hash"] = json!(commit.hash);
    target["date"] = json!(bb_date(commit.date));
    target["author"]["raw"] = json!(AUTHOR_RAW);
    target["message"] = json!(commit.message);
    target["links"] = ctx.commit_links(&commit.hash);
    target["parents"] = ctx.parents(commit);
    target["repository"] = ctx.repository();
    let escaped = escape_ref(&tag.name);
    value["links"] = json!({
        "self": {"href": format!("{}/refs/tags/{escaped}", ctx.api())},
        "commits": {"href": format!("{}/commits/{escaped}", ctx.api())},
        "html": {"href": format!("{}/commits/tag/{escaped}", ctx.html())}
    });
    value
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bitbucket's error body: `{"type": "error", "error": {"message": ...}}`.
pub(crate) fn error_json(message: &str) -> Value {
    json!({"type": "error", "error": {"message": message}})
}
