//! CircleCI API v2, the part Hoist reads for builds whose webhook never came (SPEC 16):
//! `GET /api/v2/project/{project-slug}/pipeline` (newest first, 20 a page, `next_page_token`),
//! `GET /api/v2/pipeline/{id}/workflow` and `GET /api/v2/workflow/{id}/job`, behind the
//! `Circle-Token` header. The shapes are the API's (fixtures/circleci-api-*.json); the builds
//! are the ones [`super::CircleCiSim`] made, delivered or not.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Recorded, Shared, lock};
use crate::{Faults, RecordedRequest, SimServer};

/// Pipelines a page holds.
const PAGE: usize = 20;

/// The API's server; clones share it, and it stops with the last one.
#[derive(Clone)]
pub struct CircleCiApi {
    server: SimServer,
}

struct Api {
    sim: Arc<Shared>,
    token: String,
}

type St = State<Arc<Api>>;

fn message(status: u16, text: &str) -> Response {
    (crate::status_code(status), Json(json!({"message": text}))).into_response()
}

impl CircleCiApi {
    pub(super) async fn start(sim: Arc<Shared>, token: String) -> std::io::Result<Self> {
        let api = Arc::new(Api { sim, token });
        let router = Router::new()
            .route("/api/v2/project/{*rest}", get(pipelines))
            .route("/api/v2/pipeline/{id}/workflow", get(workflows))
            .route("/api/v2/workflow/{id}/job", get(jobs))
            .fallback(|| async { message(404, "Not found.") })
            .layer(axum::middleware::from_fn_with_state(
                api.clone(),
                authenticate,
            ))
            .with_state(api);
        let server = SimServer::start(
            router,
            Arc::new(|status, reason: &str| message(status, reason)),
        )
        .await?;
        Ok(Self { server })
    }

    /// What Hoist's `[circleci] base_url` is: `http://127.0.0.1:PORT/api/v2`.
    pub fn base_url(&self) -> String {
        format!("{}/api/v2", self.server.root())
    }

    pub fn faults(&self) -> &Faults {
        &self.server.faults
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.recorder.requests()
    }
}

/// CircleCI answers a missing or wrong token `401 {"message": "You must log in first."}`.
async fn authenticate(State(api): St, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("circle-token")
        .and_then(|v| v.to_str().ok());
    if given == Some(api.token.as_str()) {
        next.run(request).await
    } else {
        message(401, "You must log in first.")
    }
}

fn pipeline_json(slug: &str, p: &Recorded) -> Value {
    json!({
        "id": p.id,
        "errors": [],
        "project_slug": slug,
        "updated_at": p.updated_at,
        "number": p.number,
        "trigger_parameters": {},
        "state": "created",
        "created_at": p.created_at,
        "trigger": {
            "type": "webhook",
            "received_at": p.created_at,
            "actor": {"login": "hoist-sim", "avatar_url": "https://avatars.example/hoist-sim"}
        },
        "vcs": {
            "provider_name": "Bitbucket",
            "target_repository_url": p.repo_url,
            "revision": p.commit,
            "tag": p.tag,
            "commit": {"subject": "a change", "body": ""},
            "origin_repository_url": p.repo_url
        }
    })
}

/// `GET /project/{slug}/pipeline`: the project's pipelines, newest first.
async fn pipelines(
    State(api): St,
    Path(rest): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(slug) = rest.strip_suffix("/pipeline") else {
        return message(404, "Not found.");
    };
    let sim = &api.sim;
    if slug != sim.config.project_slug {
        return message(404, "Project not found");
    }
    let start = match q.get("page-token") {
        None => 0,
        Some(t) => match t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return message(400, "Invalid page-token."),
        },
    };
    let all = lock(&sim.pipelines);
    let items: Vec<Value> = all
        .iter()
        .rev()
        .skip(start)
        .take(PAGE)
        .map(|p| pipeline_json(slug, p))
        .collect();
    let next = (start + PAGE < all.len()).then(|| format!("page-{}", start + PAGE));
    Json(json!({"items": items, "next_page_token": next})).into_response()
}

/// `GET /pipeline/{id}/workflow`: its one workflow.
async fn workflows(State(api): St, Path(id): Path<String>) -> Response {
    let sim = &api.sim;
    let all = lock(&sim.pipelines);
    let Some(p) = all.iter().find(|p| p.id == id) else {
        return message(404, "Pipeline not found");
    };
    let item = json!({
        "pipeline_id": p.id,
        "id": p.workflow_id,
        "name": sim.config.workflow_name,
        "project_slug": sim.config.project_slug,
        "status": p.status,
        "started_by": "03987f6a-4c27-4dc1-b6ab-c7e83bb3e713",
        "pipeline_number": p.number,
        "created_at": p.created_at,
        "stopped_at": p.stopped_at
    });
    Json(json!({"items": [item], "next_page_token": null})).into_response()
}

/// `GET /workflow/{id}/job`: the workflow's one build job.
async fn jobs(State(api): St, Path(id): Path<String>) -> Response {
    let sim = &api.sim;
    let all = lock(&sim.pipelines);
    let Some(p) = all.iter().find(|p| p.workflow_id == id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Workflow not found"})),
        )
            .into_response();
    };
    let item = json!({
        "dependencies": [],
        "job_number": p.job_number,
        "id": p.job_id,
        "started_at": p.created_at,
        "name": sim.config.job_name,
        "project_slug": sim.config.project_slug,
        "status": p.status,
        "type": "build",
        "stopped_at": p.stopped_at
    });
    Json(json!({"items": [item], "next_page_token": null})).into_response()
}
