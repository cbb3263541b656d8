//! A Bitbucket Cloud 2.0 simulator: commits, tag listing (pagination with an absolute `next`,
//! the BBQL `q` name filter, natural `sort`), single tag, tag creation with Bitbucket's 201/400
//! answers, authentication, fault injection, and a hook to make a person create a tag between
//! Hoist's listing and its create (`race_next_create`).

mod handlers;
mod model;
mod query;
#[cfg(test)]
mod tests;
pub mod webhook;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::broadcast;

use super::{Faults, RecordedRequest, SimServer, reason, status_code};
use model::{Annotation, CommitRec, TagRec, error_json};

/// How the simulator wants to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimAuth {
    /// Any request is accepted.
    None,
    /// `Authorization: Bearer <token>` (repository, project or workspace access token).
    Bearer(String),
    /// `Authorization: Basic` with a user (or email) and an app password or API token.
    Basic { user: String, password: String },
}

/// A tag created through the API or by [`BitbucketSim::add_tag`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCreated {
    pub repo: String,
    pub name: String,
    pub hash: String,
}

pub(crate) struct Repo {
    uuid: String,
    commits: Vec<CommitRec>,
    by_hash: HashMap<String, usize>,
    tags: HashMap<String, TagRec>,
}

impl Default for Repo {
    /// An empty repository with a fresh `{uuid}`.
    fn default() -> Self {
        Repo {
            uuid: format!("{{{}}}", uuid::Uuid::new_v4()),
            commits: Vec::new(),
            by_hash: HashMap::new(),
            tags: HashMap::new(),
        }
    }
}

impl Repo {
    fn commit(&self, hash: &str) -> Option<&CommitRec> {
        self.by_hash.get(hash).map(|&i| &self.commits[i])
    }

    /// A full hash, an unambiguous prefix of at least 7 hex digits, or a tag name.
    fn resolve(&self, revision: &str) -> Option<&CommitRec> {
        if let Some(tag) = self.tags.get(revision) {
            return self.commit(&tag.hash);
        }
        let revision = revision.to_ascii_lowercase();
        if revision.len() < 7 || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut found = self
            .commits
            .iter()
            .filter(|c| c.hash.starts_with(&revision));
        match (found.next(), found.next()) {
            (Some(commit), None) => Some(commit),
            _ => None,
        }
    }

    fn add_commit(&mut self, hash: &str, message: &str, date: DateTime<Utc>) {
        if self.by_hash.contains_key(hash) {
            return;
        }
        let parent = self.commits.last().map(|c| c.hash.clone());
        self.by_hash.insert(hash.to_string(), self.commits.len());
        self.commits.push(CommitRec {
            hash: hash.to_string(),
            date,
            message: message.to_string(),
            parent,
        });
    }
}

pub(crate) struct Shared {
    workspace: String,
    auth: SimAuth,
    root: OnceLock<String>,
    repos: Mutex<HashMap<String, Repo>>,
    race: Mutex<Option<TagCreated>>,
    omit_size: AtomicBool,
    events: broadcast::Sender<TagCreated>,
}

impl Shared {
    fn repos(&self) -> MutexGuard<'_, HashMap<String, Repo>> {
        self.repos.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn root(&self) -> &str {
        self.root.get().map(String::as_str).unwrap_or("")
    }

    /// Inserts a tag made by a person (annotated, dated) and announces it.
    fn insert_hand_tag(&self, repo: &str, name: &str, hash: &str, date: DateTime<Utc>) {
        let hash = hash.to_ascii_lowercase();
        {
            let mut repos = self.repos();
            let entry = repos.entry(repo.to_string()).or_default();
            let message = format!("Commit {}", &hash[..hash.len().min(7)]);
            entry.add_commit(&hash, &message, date);
            entry.tags.insert(
                name.to_string(),
                TagRec {
                    name: name.to_string(),
                    hash: hash.clone(),
                    annotation: Some(Annotation {
                        date,
                        message: format!("{name}\n"),
                    }),
                },
            );
        }
        self.announce(repo, name, &hash);
    }

    fn announce(&self, repo: &str, name: &str, hash: &str) {
        // Nobody listening is fine.
        let _ = self.events.send(TagCreated {
            repo: repo.to_string(),
            name: name.to_string(),
            hash: hash.to_string(),
        });
    }
}

/// The simulator's handle. Clones share the same server and state; the server stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct BitbucketSim {
    shared: Arc<Shared>,
    server: SimServer,
}

impl BitbucketSim {
    /// Starts a Bitbucket for `workspace` on `127.0.0.1:0`.
    pub async fn start(workspace: &str, auth: SimAuth) -> std::io::Result<Self> {
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            workspace: workspace.to_string(),
            auth,
            root: OnceLock::new(),
            repos: Mutex::new(HashMap::new()),
            race: Mutex::new(None),
            omit_size: AtomicBool::new(false),
            events,
        });
        let router = handlers::router(shared.clone());
        let server =
            SimServer::start(router, Arc::new(|status, _path| error_response(status))).await?;
        let _ = shared.root.set(server.root());
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:PORT/2.0`, what Hoist's `bitbucket.base_url` should be.
    pub fn base_url(&self) -> String {
        format!("{}/2.0", self.server.root())
    }

    pub fn workspace(&self) -> &str {
        &self.shared.workspace
    }

    /// Creates an empty repository (no-op when it exists).
    pub fn add_repo(&self, repo: &str) {
        self.shared.repos().entry(repo.to_string()).or_default();
    }

    /// Adds a commit dated now (creating the repository if needed). `hash` must be 40 hex digits.
    pub fn add_commit(&self, repo: &str, hash: &str, message: &str) {
        self.add_commit_at(repo, hash, message, Utc::now());
    }

    /// Adds a commit with the given date.
    pub fn add_commit_at(&self, repo: &str, hash: &str, message: &str, date: DateTime<Utc>) {
        assert!(
            is_full_hash(hash),
            "commit hash must be 40 hex digits: {hash}"
        );
        self.shared
            .repos()
            .entry(repo.to_string())
            .or_default()
            .add_commit(&hash.to_ascii_lowercase(), message, date);
    }

    /// Adds a tag as a person would (annotated, dated now) and announces it to subscribers.
    /// An unknown commit is added to the repository first.
    pub fn add_tag(&self, repo: &str, name: &str, hash: &str) {
        self.add_tag_at(repo, name, hash, Utc::now());
    }

    /// Like [`add_tag`](Self::add_tag), with the tag's date.
    pub fn add_tag_at(&self, repo: &str, name: &str, hash: &str, date: DateTime<Utc>) {
        assert!(
            is_full_hash(hash),
            "commit hash must be 40 hex digits: {hash}"
        );
        self.shared.insert_hand_tag(repo, name, hash, date);
    }

    /// Every tag of `repo` as (name, hash), in natural name order.
    pub fn tags(&self, repo: &str) -> Vec<(String, String)> {
        let repos = self.shared.repos();
        let mut tags: Vec<(String, String)> = repos
            .get(repo)
            .map(|r| {
                r.tags
                    .values()
                    .map(|t| (t.name.clone(), t.hash.clone()))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort_by(|a, b| query::natural_cmp(&a.0, &b.0));
        tags
    }

    /// Just before the next `POST refs/tags` on `repo` is handled, this tag appears (someone
    /// created it by hand between Hoist's listing and its create).
    pub fn race_next_create(&self, repo: &str, name: &str, hash: &str) {
        assert!(
            is_full_hash(hash),
            "commit hash must be 40 hex digits: {hash}"
        );
        *self.shared.race.lock().unwrap_or_else(|e| e.into_inner()) = Some(TagCreated {
            repo: repo.to_string(),
            name: name.to_string(),
            hash: hash.to_ascii_lowercase(),
        });
    }

    /// Every tag created from now on, through the API or [`add_tag`](Self::add_tag).
    pub fn subscribe(&self) -> broadcast::Receiver<TagCreated> {
        self.shared.events.subscribe()
    }

    /// Leave `size` out of list pages (real pages sometimes do).
    pub fn omit_size(&self, omit: bool) {
        self.shared.omit_size.store(omit, Ordering::SeqCst);
    }

    pub fn faults(&self) -> &Faults {
        &self.server.faults
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.recorder.requests()
    }

    /// Time this simulator spent handling `GET` requests so far (see [`super::Recorder`]).
    pub fn get_handling_time(&self) -> std::time::Duration {
        self.server.recorder.get_handling_time()
    }

    pub fn request_count(&self) -> usize {
        self.server.recorder.count()
    }

    pub fn reset_requests(&self) {
        self.server.recorder.reset()
    }
}

/// A random 40-hex commit hash.
pub fn random_hash() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    hex::encode(bytes)
}

fn is_full_hash(hash: &str) -> bool {
    hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `status` with Bitbucket's error body.
pub(crate) fn error_with(status: u16, message: &str) -> Response {
    (status_code(status), Json(error_json(message))).into_response()
}

fn error_response(status: u16) -> Response {
    if status == 429 {
        error_with(status, "Rate limit for this resource has been exceeded")
    } else {
        error_with(status, reason(status))
    }
}
