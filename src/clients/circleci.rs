//! CircleCI API v2, for builds whose webhook never came (SPEC 16): a project's pipelines
//! (newest first, `next_page_token` to page on), a pipeline's workflows, a workflow's jobs. The
//! `Circle-Token` header carries `[circleci] token`.

use serde::Deserialize;

use super::call::{CallError, http_client, send, status_error};
use crate::config::CircleCi as Config;
use crate::config::Secret;
use crate::metrics::{Metrics, Service};

const SERVICE: &str = "CircleCI";

#[derive(Clone)]
pub struct CircleCi {
    http: reqwest::Client,
    metrics: Metrics,
    base: String,
    token: Secret,
}

/// One page of a list: its items and the token of the next page.
#[derive(Debug, Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next_page_token: Option<String>,
}

/// A pipeline, as far as Hoist reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Pipeline {
    pub id: String,
    pub number: i64,
    #[serde(default)]
    pub vcs: Option<Vcs>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Vcs {
    pub tag: Option<String>,
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub name: String,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub name: String,
    pub status: String,
    pub job_number: Option<i64>,
}

#[derive(Deserialize)]
struct Message {
    message: String,
}

impl CircleCi {
    /// `None` without a token: the API is not asked.
    pub fn new(c: &Config, metrics: &Metrics) -> Option<Self> {
        Some(Self {
            http: http_client(c.timeout),
            metrics: metrics.clone(),
            base: c.base_url.clone(),
            token: c.token.clone()?,
        })
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        page: Option<&str>,
    ) -> Result<Page<T>, CallError> {
        let mut url = format!("{}{path}", self.base);
        if let Some(token) = page {
            let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            url.push_str(&format!("?page-token={token}"));
        }
        let rb = self
            .http
            .get(url)
            .header("Circle-Token", self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        let resp = send(&self.metrics, Service::Circleci, SERVICE, rb).await?;
        let status = resp.status();
        if !status.is_success() {
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<Message>(&text)
                .map(|m| m.message)
                .unwrap_or(text);
            return Err(status_error(SERVICE, status, &headers, &detail, &|s| {
                match s.as_u16() {
                    401 => Some("check [circleci] token: a personal API token of someone who can see the project".into()),
                    404 => Some("check the project's circleci_project slug (e.g. bitbucket/acme/payments-api) and that the token can see it".into()),
                    _ => None,
                }
            }));
        }
        resp.json()
            .await
            .map_err(|e| CallError::transport(SERVICE, &e))
    }

    /// One page of `slug`'s pipelines, newest first, and the next page's token.
    pub async fn pipelines(
        &self,
        slug: &str,
        page: Option<&str>,
    ) -> Result<(Vec<Pipeline>, Option<String>), CallError> {
        let p: Page<Pipeline> = self.get(&format!("/project/{slug}/pipeline"), page).await?;
        Ok((p.items, p.next_page_token.filter(|t| !t.is_empty())))
    }

    /// The workflows of a pipeline (every page).
    pub async fn workflows(&self, pipeline: &str) -> Result<Vec<Workflow>, CallError> {
        self.all(&format!("/pipeline/{pipeline}/workflow")).await
    }

    /// The jobs of a workflow (every page).
    pub async fn jobs(&self, workflow: &str) -> Result<Vec<Job>, CallError> {
        self.all(&format!("/workflow/{workflow}/job")).await
    }

    async fn all<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<Vec<T>, CallError> {
        let mut items = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..20 {
            let p: Page<T> = self.get(path, page.as_deref()).await?;
            items.extend(p.items);
            match p.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => page = Some(next),
                None => break,
            }
        }
        Ok(items)
    }
}
