//! A CircleCI simulator for its *outbound* project webhooks: it "builds" every tag pushed to the
//! simulated Bitbucket and posts `job-completed` then `workflow-completed` to Hoist, signed with
//! `circleci-signature: v1=<hex HMAC-SHA256>` exactly as CircleCI does. Every build is also a
//! pipeline of its API v2 ([`api::CircleCiApi`]), whether its webhook was delivered or lost.

pub mod api;
mod payload;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::broadcast;

use super::bitbucket::TagCreated;
use payload::{Build, ProjectIds};

/// Which of CircleCI's two payload shapes to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadShape {
    /// GitHub OAuth and Bitbucket Cloud projects: `pipeline.vcs`.
    Vcs,
    /// GitLab, GitHub App and Bitbucket Data Center projects: `pipeline.trigger_parameters`.
    TriggerParameters,
}

/// What the simulated CircleCI project looks like and where its webhook points.
#[derive(Debug, Clone)]
pub struct CircleCiSimConfig {
    /// Full URL of Hoist's `/hooks/circleci`.
    pub hoist_url: String,
    pub secret: String,
    /// e.g. `bitbucket/acme/payments-api`
    pub project_slug: String,
    /// The repository's name (CircleCI names projects after them); `watch` builds its tags.
    pub project_name: String,
    pub org_name: String,
    /// `bitbucket`, `github` or `gitlab`.
    pub vcs_provider: String,
    pub repo_url: String,
    pub job_name: String,
    pub workflow_name: String,
    /// How long a build takes in `watch`.
    pub delay: Duration,
    pub shape: PayloadShape,
    /// Whether the payload names the tag (real tag builds often do not).
    pub include_tag: bool,
}

/// One webhook delivery and Hoist's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentWebhook {
    pub event_type: String,
    /// The payload's top-level `id`.
    pub id: String,
    pub status: u16,
    pub response: String,
    pub body: String,
}

/// A build as the API lists it.
pub(crate) struct Recorded {
    id: String,
    workflow_id: String,
    job_id: String,
    number: u64,
    job_number: u64,
    tag: Option<String>,
    commit: String,
    repo_url: String,
    created_at: String,
    updated_at: String,
    stopped_at: Option<String>,
    /// `running`, then the build's outcome.
    status: String,
}

pub(crate) struct Shared {
    config: CircleCiSimConfig,
    /// Every build, oldest first.
    pipelines: Mutex<Vec<Recorded>>,
    api_number: AtomicU64,
    /// Whether builds' webhooks are sent (off: they are lost, as when Hoist is unreachable
    /// longer than CircleCI tries, or the project's webhook is misconfigured).
    deliver: AtomicBool,
    ids: ProjectIds,
    outcome: Mutex<String>,
    pipeline_number: AtomicU64,
    job_number: AtomicU64,
    sent: Mutex<Vec<SentWebhook>>,
    events: broadcast::Sender<SentWebhook>,
    client: reqwest::Client,
}

/// The simulator's handle; clones share their state.
#[derive(Clone)]
pub struct CircleCiSim {
    shared: Arc<Shared>,
}

/// The `circleci-signature` header for `body`: `v1=<hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("v1={}", crate::sign::hmac_sha256_hex(secret, body))
}

impl CircleCiSim {
    pub fn new(config: CircleCiSimConfig) -> Self {
        let (events, _) = broadcast::channel(256);
        let new_id = || uuid::Uuid::new_v4().to_string();
        let client = reqwest::Client::builder()
            // CircleCI gives up on a delivery after 10 seconds.
            .timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client");
        Self {
            shared: Arc::new(Shared {
                config,
                ids: ProjectIds {
                    project: new_id(),
                    organization: new_id(),
                    webhook: new_id(),
                    actor: new_id(),
                },
                outcome: Mutex::new("success".to_string()),
                pipelines: Mutex::new(Vec::new()),
                api_number: AtomicU64::new(0),
                deliver: AtomicBool::new(true),
                pipeline_number: AtomicU64::new(0),
                job_number: AtomicU64::new(0),
                sent: Mutex::new(Vec::new()),
                events,
                client,
            }),
        }
    }

    pub fn config(&self) -> &CircleCiSimConfig {
        &self.shared.config
    }

    /// The status of the next builds `watch` makes: `success` (default), `failed`, `canceled`,
    /// `unauthorized`, or `error` (workflows only; the job then reports `failed`).
    pub fn set_outcome(&self, status: &str) {
        *lock(&self.shared.outcome) = status.to_string();
    }

    /// Serves this project's API v2 on loopback, wanting `token` in `Circle-Token`.
    pub async fn serve_api(&self, token: &str) -> std::io::Result<api::CircleCiApi> {
        api::CircleCiApi::start(self.shared.clone(), token.to_string()).await
    }

    /// Whether builds' webhooks are sent (`true` at first). Off, builds still happen and show
    /// in the API: their webhooks are lost.
    pub fn set_delivering(&self, on: bool) {
        self.shared.deliver.store(on, Ordering::SeqCst);
    }

    /// A pipeline for a build of `tag` on `commit`, `running` until [`Self::end_build`].
    fn start_build(&self, tag: Option<&str>, commit: &str) -> usize {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let id = || uuid::Uuid::new_v4().to_string();
        let mut all = lock(&self.shared.pipelines);
        let number = self.shared.api_number.fetch_add(1, Ordering::SeqCst) + 1;
        all.push(Recorded {
            id: id(),
            workflow_id: id(),
            job_id: id(),
            number,
            job_number: number,
            tag: tag.map(str::to_string),
            commit: commit.to_string(),
            repo_url: self.shared.config.repo_url.clone(),
            created_at: now.clone(),
            updated_at: now,
            stopped_at: None,
            status: "running".into(),
        });
        all.len() - 1
    }

    fn end_build(&self, index: usize, status: &str) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if let Some(p) = lock(&self.shared.pipelines).get_mut(index) {
            p.status = status.to_string();
            p.updated_at = now.clone();
            p.stopped_at = Some(now);
        }
    }

    /// A finished build of `tag` whose webhook was lost: it shows in the API only.
    pub fn record_build(&self, tag: Option<&str>, commit: &str, status: &str) {
        let index = self.start_build(tag, commit);
        self.end_build(index, status);
    }

    /// Builds every tag of this project's repository announced on `tags`: after `delay`, sends
    /// `job-completed` then `workflow-completed` to Hoist (unless delivering is off).
    pub fn watch(&self, mut tags: broadcast::Receiver<TagCreated>) -> tokio::task::JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            loop {
                let tag = match tags.recv().await {
                    Ok(tag) => tag,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "CircleCI simulator missed tags");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if !sim.builds_repo(&tag.repo) {
                    continue;
                }
                let sim = sim.clone();
                tokio::spawn(async move {
                    let index = sim.start_build(Some(&tag.name), &tag.hash);
                    tokio::time::sleep(sim.shared.config.delay).await;
                    let status = lock(&sim.shared.outcome).clone();
                    sim.end_build(index, &status);
                    if !sim.shared.deliver.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Err(error) = sim.send_events(Some(&tag.name), &tag.hash, &status).await {
                        tracing::warn!(error = %format!("{error:#}"), tag = %tag.name, "CircleCI simulator could not deliver");
                    }
                });
            }
        })
    }

    fn builds_repo(&self, repo: &str) -> bool {
        let config = &self.shared.config;
        config.project_name == repo || config.project_slug.ends_with(&format!("/{repo}"))
    }

    /// The payloads of one new build (pipeline number incremented), without sending them.
    pub fn build_events(
        &self,
        tag: Option<&str>,
        commit: &str,
        status: &str,
    ) -> Vec<(String, Value)> {
        let shared = &self.shared;
        Build {
            config: &shared.config,
            ids: &shared.ids,
            tag,
            commit,
            status,
            pipeline_number: shared.pipeline_number.fetch_add(1, Ordering::SeqCst) + 1,
            job_number: shared.job_number.fetch_add(1, Ordering::SeqCst) + 1,
            finished: chrono::Utc::now(),
        }
        .events()
    }

    /// Builds now and sends both events; stops at the first delivery that fails to connect.
    pub async fn send_build(
        &self,
        tag: Option<&str>,
        commit: &str,
        status: &str,
    ) -> anyhow::Result<Vec<SentWebhook>> {
        self.record_build(tag, commit, status);
        self.send_events(tag, commit, status).await
    }

    async fn send_events(
        &self,
        tag: Option<&str>,
        commit: &str,
        status: &str,
    ) -> anyhow::Result<Vec<SentWebhook>> {
        let mut sent = Vec::new();
        for (event_type, payload) in self.build_events(tag, commit, status) {
            let body = serde_json::to_vec(&payload)?;
            sent.push(self.send_raw(&event_type, body).await?);
        }
        Ok(sent)
    }

    /// Signs `body` and posts it to Hoist with CircleCI's headers.
    pub async fn send_raw(&self, event_type: &str, body: Vec<u8>) -> anyhow::Result<SentWebhook> {
        let shared = &self.shared;
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let response = shared
            .client
            .post(&shared.config.hoist_url)
            .header("content-type", "application/json")
            .header("circleci-event-type", event_type)
            .header("circleci-signature", sign(&shared.config.secret, &body))
            .header("user-agent", "CircleCI-Webhook/1.0")
            .body(body.clone())
            .send()
            .await
            .with_context(|| format!("POST {} ({event_type})", shared.config.hoist_url))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let webhook = SentWebhook {
            event_type: event_type.to_string(),
            id,
            status,
            response: text,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        lock(&shared.sent).push(webhook.clone());
        let _ = shared.events.send(webhook.clone());
        Ok(webhook)
    }

    /// Every delivery Hoist answered, in order.
    pub fn sent(&self) -> Vec<SentWebhook> {
        lock(&self.shared.sent).clone()
    }

    /// Each delivery as it is answered (for `hoist demo` to print).
    pub fn subscribe(&self) -> broadcast::Receiver<SentWebhook> {
        self.shared.events.subscribe()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
