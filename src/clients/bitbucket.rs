//! Bitbucket Cloud 2.0: commits and tags.

use reqwest::StatusCode;
use serde::Deserialize;

use super::call::{CallError, authed, http_client, send, status_error};
use crate::config::{self, HttpAuth};
use crate::domain::{CommitSha, FoundCommit, RepoTag};
use crate::metrics::{Metrics, Service};

const SERVICE: &str = "Bitbucket";

#[derive(Clone)]
pub struct Bitbucket {
    http: reqwest::Client,
    metrics: Metrics,
    base: String,
    workspace: String,
    auth: HttpAuth,
}

/// What creating a tag did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The name exists already (made by someone else, or by an earlier attempt of ours).
    Exists,
}

#[derive(Deserialize)]
struct Page {
    values: Vec<TagJson>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct TagJson {
    name: String,
    target: TargetJson,
}

#[derive(Deserialize)]
struct TargetJson {
    hash: String,
}

/// The commit answer's fields Hoist reads: the hash, and `date` (ISO 8601 with an offset,
/// `2018-09-21T14:49:23+00:00`), the commit's own time.
#[derive(Deserialize)]
struct CommitJson {
    hash: String,
    #[serde(default)]
    date: Option<String>,
}

/// A commit date as Bitbucket writes it, in milliseconds; `None` when it is absent or unreadable
/// (the release then has no commit time; that is no reason to fail it).
fn commit_date(date: Option<&str>) -> Option<crate::domain::Millis> {
    let parsed = chrono::DateTime::parse_from_rfc3339(date?.trim()).ok()?;
    Some(parsed.timestamp_millis())
}

#[derive(Deserialize)]
struct ErrorJson {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: String,
}

impl Bitbucket {
    pub fn new(c: &config::Bitbucket, metrics: &Metrics) -> Self {
        Self {
            http: http_client(c.timeout),
            metrics: metrics.clone(),
            base: c.base_url.trim_end_matches('/').to_string(),
            workspace: c.workspace.clone(),
            auth: c.auth.clone(),
        }
    }

    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    fn repo_url(&self, repo: &str) -> String {
        format!(
            "{}/repositories/{}/{}",
            self.base,
            enc(&self.workspace),
            enc(repo)
        )
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        send(
            &self.metrics,
            Service::Bitbucket,
            SERVICE,
            authed(rb, &self.auth),
        )
        .await
    }

    async fn fail(&self, resp: reqwest::Response, repo: &str) -> CallError {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<ErrorJson>(&text)
            .map(|e| e.error.message)
            .unwrap_or(text);
        let full = format!("{}/{}", self.workspace, repo);
        status_error(SERVICE, status, &headers, &detail, &|s| match s {
            StatusCode::UNAUTHORIZED => Some(
                "check [bitbucket] auth: the token or app password is missing, wrong or expired"
                    .into(),
            ),
            StatusCode::FORBIDDEN => Some(format!(
                "the credentials lack permission on {full}: grant repository write (tags) and read"
            )),
            StatusCode::NOT_FOUND => Some(format!(
                "repository {full} not found: check the project's `repo` and bitbucket.workspace"
            )),
            _ => None,
        })
    }

    /// A commit's full hash and date, `None` when the repository has no such commit.
    pub async fn commit(
        &self,
        repo: &str,
        sha: &CommitSha,
    ) -> Result<Option<FoundCommit>, CallError> {
        let url = format!("{}/commit/{}", self.repo_url(repo), enc(sha.as_str()));
        let resp = self.send(self.http.get(url)).await?;
        match resp.status() {
            StatusCode::OK => {
                let c: CommitJson = resp
                    .json()
                    .await
                    .map_err(|e| CallError::transport(SERVICE, &e))?;
                let committed_at = commit_date(c.date.as_deref());
                CommitSha::parse(&c.hash)
                    .map(|full| Some(FoundCommit { full, committed_at }))
                    .map_err(|e| CallError::Permanent {
                        service: SERVICE,
                        status: Some(200),
                        message: format!("answered a commit hash Hoist cannot read: {e}"),
                    })
            }
            StatusCode::NOT_FOUND => {
                // A 404 means either the commit or the repository is missing; only the first is a
                // normal outcome. Bitbucket's message tells them apart.
                let text = resp.text().await.unwrap_or_default();
                let msg = serde_json::from_str::<ErrorJson>(&text)
                    .map(|e| e.error.message.to_lowercase())
                    .unwrap_or_default();
                if msg.contains("repository") {
                    Err(CallError::Permanent {
                        service: SERVICE,
                        status: Some(404),
                        message: format!(
                            "repository {}/{repo} not found: check the project's `repo` and bitbucket.workspace",
                            self.workspace
                        ),
                    })
                } else {
                    Ok(None)
                }
            }
            _ => Err(self.fail(resp, repo).await),
        }
    }

    /// Every tag whose name contains `filter` (BBQL `name ~`), following `next` over all pages.
    pub async fn tags(&self, repo: &str, filter: &str) -> Result<Vec<RepoTag>, CallError> {
        let mut out = Vec::new();
        let mut next = Some(self.tags_url(repo, filter, None));
        while let Some(url) = next.take() {
            let page = self.page(&url, repo).await?;
            out.extend(page.values.into_iter().map(|t| RepoTag {
                name: t.name,
                commit: t.target.hash,
            }));
            next = page.next;
        }
        Ok(out)
    }

    /// The first page of tags in Bitbucket's natural name order, highest first (`sort=-name`).
    pub async fn newest_tags(
        &self,
        repo: &str,
        filter: &str,
    ) -> Result<(Vec<RepoTag>, bool), CallError> {
        let url = self.tags_url(repo, filter, Some("-name"));
        let page = self.page(&url, repo).await?;
        let more = page.next.is_some();
        Ok((
            page.values
                .into_iter()
                .map(|t| RepoTag {
                    name: t.name,
                    commit: t.target.hash,
                })
                .collect(),
            more,
        ))
    }

    fn tags_url(&self, repo: &str, filter: &str, sort: Option<&str>) -> String {
        let mut url = url::Url::parse(&format!("{}/refs/tags", self.repo_url(repo)))
            .expect("base URL was validated by check-config");
        {
            let mut q = url.query_pairs_mut();
            if !filter.is_empty() {
                q.append_pair(
                    "q",
                    &format!(
                        "name ~ \"{}\"",
                        filter.replace('\\', "\\\\").replace('"', "\\\"")
                    ),
                );
            }
            if let Some(sort) = sort {
                q.append_pair("sort", sort);
            }
            q.append_pair("pagelen", "100");
        }
        url.to_string()
    }

    async fn page(&self, url: &str, repo: &str) -> Result<Page, CallError> {
        let resp = self.send(self.http.get(url)).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.fail(resp, repo).await);
        }
        resp.json()
            .await
            .map_err(|e| CallError::transport(SERVICE, &e))
    }

    /// One tag by name, `None` if it does not exist.
    pub async fn tag(&self, repo: &str, name: &str) -> Result<Option<RepoTag>, CallError> {
        let url = format!("{}/refs/tags/{}", self.repo_url(repo), enc(name));
        let resp = self.send(self.http.get(url)).await?;
        match resp.status() {
            StatusCode::OK => {
                let t: TagJson = resp
                    .json()
                    .await
                    .map_err(|e| CallError::transport(SERVICE, &e))?;
                Ok(Some(RepoTag {
                    name: t.name,
                    commit: t.target.hash,
                }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.fail(resp, repo).await),
        }
    }

    /// Creates a lightweight tag on a full commit hash. A 400 is ambiguous (the name exists, or
    /// the hash is bad), so it is settled by reading the tag back: if it exists, [`Created::Exists`].
    pub async fn create_tag(
        &self,
        repo: &str,
        name: &str,
        full_hash: &CommitSha,
    ) -> Result<Created, CallError> {
        let url = format!("{}/refs/tags", self.repo_url(repo));
        let body = serde_json::json!({"name": name, "target": {"hash": full_hash.as_str()}});
        let resp = self.send(self.http.post(url).json(&body)).await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::OK => Ok(Created::Created),
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT => {
                let text = resp.text().await.unwrap_or_default();
                if self.tag(repo, name).await?.is_some() {
                    return Ok(Created::Exists);
                }
                let detail = serde_json::from_str::<ErrorJson>(&text)
                    .map(|e| e.error.message)
                    .unwrap_or(text);
                Err(CallError::Permanent {
                    service: SERVICE,
                    status: Some(400),
                    message: format!(
                        "refused tag {name} on {full_hash}: {}",
                        super::call::truncate(&detail, 300)
                    ),
                })
            }
            _ => Err(self.fail(resp, repo).await),
        }
    }
}

/// Escapes one path segment.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_answer_gives_the_commit_date() {
        let sample = include_str!("../../fixtures/bitbucket-commit-200.json");
        let c: CommitJson = serde_json::from_str(sample).unwrap();
        assert_eq!(
            commit_date(c.date.as_deref()),
            Some(1_537_541_363_000),
            "2018-09-21T14:49:23+00:00"
        );
        assert_eq!(
            commit_date(Some("2018-09-21T16:49:23+02:00")),
            Some(1_537_541_363_000)
        );
        assert_eq!(commit_date(None), None);
        assert_eq!(commit_date(Some("yesterday")), None);
    }
}
