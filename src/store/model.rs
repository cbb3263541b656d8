//! Records as the store holds them.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, StoreError};
use crate::domain::ReleaseStatus;

/// An inbound webhook request about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub source: &'static str,
    /// The sender's delivery id, when it has one (de-duplication key).
    pub key: Option<String>,
    /// When the sender says the event happened, from the signed body, as sent (CircleCI's
    /// `happened_at`); empty when it gives none. Part of the de-duplication key, ahead of `key`:
    /// a redelivery repeats the event's time, and a key index in time order takes each new key
    /// at its end instead of in a random leaf (which every commit would write whole).
    pub event_at: String,
    pub event: String,
    pub client_ip: Option<String>,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub source: String,
    pub delivery_key: Option<String>,
    /// See [`NewDelivery::event_at`].
    pub event_at: String,
    pub event: String,
    pub client_ip: Option<String>,
    pub received_at: i64,
    pub body: String,
    pub outcome: String,
    pub release_id: Option<i64>,
}

impl Delivery {
    pub(crate) const COLUMNS: &'static str = "id, source, delivery_key, event_at, event, client_ip, received_at, body, outcome, release_id";

    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            source: r.try_get("source")?,
            delivery_key: r.try_get("delivery_key")?,
            event_at: r.try_get("event_at")?,
            event: r.try_get("event")?,
            client_ip: r.try_get("client_ip")?,
            received_at: r.try_get("received_at")?,
            body: r.try_get("body")?,
            outcome: r.try_get("outcome")?,
            release_id: r.try_get("release_id")?,
        })
    }
}

/// A release a ticket starts.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub project: String,
    pub env: String,
    pub repo: String,
    pub commit: String,
    pub issue: Option<String>,
}

/// What recording a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// A new release was started. `claimed_job`: its first job, when born claimed by the
    /// ingest's [`super::BornClaim`].
    Created {
        release_id: i64,
        delivery_id: i64,
        claimed_job: Option<i64>,
    },
    /// An open release for the same project, environment and commit already existed.
    Existing { release_id: i64, delivery_id: i64 },
    /// The same delivery was received before; nothing changed.
    Duplicate {
        release_id: Option<i64>,
        delivery_id: i64,
    },
    /// Recorded with a job to run (a build event); `claimed_job` as for `Created`.
    Queued {
        delivery_id: i64,
        claimed_job: Option<i64>,
    },
    /// Recorded only: nothing to do.
    Ignored { delivery_id: i64 },
}

#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub id: i64,
    pub project: String,
    pub env: String,
    pub repo: String,
    pub commit: String,
    pub full_commit: Option<String>,
    pub issue: Option<String>,
    pub status: ReleaseStatus,
    pub tag: Option<String>,
    pub version: Option<String>,
    pub tag_reused: bool,
    pub build_url: Option<String>,
    pub build_status: Option<String>,
    pub deploy_event_id: Option<String>,
    #[serde(skip)]
    pub slack_ts: Option<String>,
    pub error: Option<String>,
    pub received_at: i64,
    pub commit_verified_at: Option<i64>,
    pub tagged_at: Option<i64>,
    pub built_at: Option<i64>,
    pub deploy_triggered_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

impl Release {
    pub(crate) const COLUMNS: &'static str = "id, project, env, repo, commit_sha, full_commit, issue, status, tag, version, tag_reused, build_url, build_status, deploy_event_id, slack_ts, error, received_at, commit_verified_at, tagged_at, built_at, deploy_triggered_at, finished_at, updated_at";

    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        let status: String = r.try_get("status")?;
        Ok(Self {
            id: r.try_get("id")?,
            project: r.try_get("project")?,
            env: r.try_get("env")?,
            repo: r.try_get("repo")?,
            commit: r.try_get("commit_sha")?,
            full_commit: r.try_get("full_commit")?,
            issue: r.try_get("issue")?,
            status: ReleaseStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("release status `{status}`")))?,
            tag: r.try_get("tag")?,
            version: r.try_get("version")?,
            tag_reused: r.try_get::<i64, _>("tag_reused")? != 0,
            build_url: r.try_get("build_url")?,
            build_status: r.try_get("build_status")?,
            deploy_event_id: r.try_get("deploy_event_id")?,
            slack_ts: r.try_get("slack_ts")?,
            error: r.try_get("error")?,
            received_at: r.try_get("received_at")?,
            commit_verified_at: r.try_get("commit_verified_at")?,
            tagged_at: r.try_get("tagged_at")?,
            built_at: r.try_get("built_at")?,
            deploy_triggered_at: r.try_get("deploy_triggered_at")?,
            finished_at: r.try_get("finished_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// The commit as precisely as known: the full hash once verified.
    pub fn best_commit(&self) -> &str {
        self.full_commit.as_deref().unwrap_or(&self.commit)
    }

    /// Ticket received to deploy triggered, once both happened.
    pub fn lead_time_ms(&self) -> Option<i64> {
        self.deploy_triggered_at.map(|t| t - self.received_at)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleaseEvent {
    pub at: i64,
    pub step: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagRow {
    pub project: String,
    pub env: String,
    pub name: String,
    pub commit: String,
    pub release_id: Option<i64>,
    pub origin: String,
}
