//! The Bitbucket simulator's HTTP endpoints, at Bitbucket's own paths under `/2.0`.

use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Value, json};

use super::model::{RepoCtx, TagRec, commit_json, error_json, tag_json};
use super::query::{Condition, natural_cmp, parse_query};
use super::{Repo, Shared, SimAuth, error_with, is_full_hash};
use crate::sign::base64;

const REPO_NOT_FOUND: &str = "You may not have access to this repository or it no longer exists \
     in this workspace. If you think this repository exists and you have access, make sure you \
     are authenticated.";

type St = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2.0/repositories/{ws}/{repo}/commit/{sha}",
            get(get_commit),
        )
        .route(
            "/2.0/repositories/{ws}/{repo}/refs/tags",
            get(list_tags).post(create_tag),
        )
        .route(
            "/2.0/repositories/{ws}/{repo}/refs/tags/{*name}",
            get(get_tag),
        )
        .fallback(|| async { error_with(404, "Resource not found") })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            authenticate,
        ))
        .with_state(shared)
}

async fn authenticate(State(shared): St, request: Request, next: Next) -> Response {
    let expected = match &shared.auth {
        SimAuth::None => return next.run(request).await,
        SimAuth::Bearer(token) => format!("Bearer {token}"),
        SimAuth::Basic { user, password } => {
            format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
        }
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(expected.as_str()) {
        return next.run(request).await;
    }
    let mut response = error_with(401, "Unauthorized");
    let challenge = HeaderValue::from_static("Basic realm=\"Bitbucket.org HTTP\"");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// Runs `f` on the repository, or answers Bitbucket's 404 for an unknown one.
fn with_repo(
    shared: &Shared,
    ws: &str,
    slug: &str,
    f: impl FnOnce(&RepoCtx<'_>, &Repo) -> Response,
) -> Response {
    let repos = shared.repos();
    match repos.get(slug).filter(|_| ws == shared.workspace) {
        Some(repo) => {
            let ctx = RepoCtx {
                root: shared.root(),
                workspace: &shared.workspace,
                slug,
                uuid: &repo.uuid,
            };
            f(&ctx, repo)
        }
        None => error_with(404, REPO_NOT_FOUND),
    }
}

async fn get_commit(
    State(shared): St,
    Path((ws, slug, sha)): Path<(String, String, String)>,
) -> Response {
    with_repo(&shared, &ws, &slug, |ctx, repo| match repo.resolve(&sha) {
        Some(commit) => Json(commit_json(ctx, commit)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "type": "error",
                "error": {"message": "Commit not found", "data": {"shas": [sha]}}
            })),
        )
            .into_response(),
    })
}

async fn get_tag(
    State(shared): St,
    Path((ws, slug, name)): Path<(String, String, String)>,
) -> Response {
    with_repo(&shared, &ws, &slug, |ctx, repo| {
        match repo
            .tags
            .get(&name)
            .and_then(|t| Some((t, repo.commit(&t.hash)?)))
        {
            Some((tag, commit)) => Json(tag_json(ctx, tag, commit)).into_response(),
            None => error_with(404, &format!("Ref \"{name}\" not found")),
        }
    })
}

/// What a list request asked for.
struct ListParams {
    conditions: Vec<Condition>,
    sort: Option<String>,
    pagelen: usize,
    page: usize,
    /// Every parameter as given, to rebuild `next`.
    raw: Vec<(String, String)>,
}

fn parse_list_params(query: Option<&str>) -> Result<ListParams, String> {
    let raw: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let get = |key: &str| raw.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let conditions = match get("q") {
        Some(q) => parse_query(q).map_err(|e| format!("Invalid query: {q}: {e}"))?,
        None => Vec::new(),
    };
    let sort = get("sort").map(str::to_string);
    if let Some(sort) = &sort
        && !["name", "-name", "target.date", "-target.date"].contains(&sort.as_str())
    {
        return Err(format!("Invalid sort field: {sort}"));
    }
    let pagelen = match get("pagelen") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("Invalid pagelen: {v}"))?
            .clamp(1, 100),
        None => 10,
    };
    let page = match get("page") {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&p| p >= 1)
            .ok_or_else(|| format!("Invalid page: {v}"))?,
        None => 1,
    };
    Ok(ListParams {
        conditions,
        sort,
        pagelen,
        page,
        raw,
    })
}

async fn list_tags(
    State(shared): St,
    Path((ws, slug)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse_list_params(query.as_deref()) {
        Ok(params) => params,
        Err(message) => return error_with(400, &message),
    };
    let omit_size = shared.omit_size.load(AtomicOrdering::SeqCst);
    with_repo(&shared, &ws, &slug, |ctx, repo| {
        let mut tags: Vec<&TagRec> = repo
            .tags
            .values()
            .filter(|t| params.conditions.iter().all(|c| c.matches(&t.name)))
            .collect();
        let commit_date = |t: &TagRec| repo.commit(&t.hash).map(|c| c.date);
        match params.sort.as_deref() {
            Some("name") => tags.sort_by(|a, b| natural_cmp(&a.name, &b.name)),
            Some("-name") => tags.sort_by(|a, b| natural_cmp(&b.name, &a.name)),
            Some("target.date") => {
                tags.sort_by(|a, b| by_date(commit_date(a), commit_date(b), a, b))
            }
            Some(_) => tags.sort_by(|a, b| by_date(commit_date(b), commit_date(a), b, a)),
            // Without `sort`, the order git gives: plain lexical order of names.
            None => tags.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        let total = tags.len();
        let start = (params.page - 1).saturating_mul(params.pagelen).min(total);
        let end = (start + params.pagelen).min(total);
        let values: Vec<Value> = tags[start..end]
            .iter()
            .filter_map(|t| Some(tag_json(ctx, t, repo.commit(&t.hash)?)))
            .collect();
        let mut page = json!({"pagelen": params.pagelen, "page": params.page, "values": values});
        if !omit_size {
            page["size"] = json!(total);
        }
        if end < total {
            let path = format!("{}/2.0/repositories/{ws}/{slug}/refs/tags", ctx.root);
            page["next"] = json!(next_url(&path, &params.raw, params.page + 1));
        }
        Json(page).into_response()
    })
}

fn by_date(
    a: Option<chrono::DateTime<Utc>>,
    b: Option<chrono::DateTime<Utc>>,
    ta: &TagRec,
    tb: &TagRec,
) -> Ordering {
    a.cmp(&b).then_with(|| ta.name.cmp(&tb.name))
}

/// The same query with `page` replaced.
fn next_url(path: &str, raw: &[(String, String)], page: usize) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in raw.iter().filter(|(k, _)| k != "page") {
        query.append_pair(key, value);
    }
    query.append_pair("page", &page.to_string());
    format!("{path}?{}", query.finish())
}

async fn create_tag(
    State(shared): St,
    Path((ws, slug)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    // A person may have created a tag since Hoist listed them.
    let race = {
        let mut race = shared.race.lock().unwrap_or_else(|e| e.into_inner());
        race.take_if(|r| r.repo == slug)
    };
    if let Some(race) = race {
        shared.insert_hand_tag(&race.repo, &race.name, &race.hash, Utc::now());
    }
    let created = {
        let mut repos = shared.repos();
        let Some(repo) = repos.get_mut(&slug).filter(|_| ws == shared.workspace) else {
            return error_with(404, REPO_NOT_FOUND);
        };
        let tag = match validate_create(repo, &body) {
            Ok(tag) => tag,
            Err(error) => return (StatusCode::BAD_REQUEST, Json(error)).into_response(),
        };
        repo.tags.insert(tag.name.clone(), tag.clone());
        let ctx = RepoCtx {
            root: shared.root(),
            workspace: &shared.workspace,
            slug: &slug,
            uuid: &repo.uuid,
        };
        let commit = repo.commit(&tag.hash).expect("validated commit exists");
        (tag_json(&ctx, &tag, commit), tag)
    };
    let (value, tag) = created;
    shared.announce(&slug, &tag.name, &tag.hash);
    let mut response = (StatusCode::CREATED, Json(value.clone())).into_response();
    if let Some(location) = value["links"]["self"]["href"]
        .as_str()
        .and_then(|href| HeaderValue::from_str(href).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Checks a create body the way Bitbucket does and returns the lightweight tag to insert, or
/// the body of the 400 answer.
fn validate_create(repo: &Repo, body: &[u8]) -> Result<TagRec, Value> {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Err(error_json("Invalid JSON in request body"));
    };
    let required = |field: &str| {
        let fields = json!({ field: ["This field is required."] });
        json!({"type": "error", "error": {"message": "Bad request", "fields": fields}})
    };
    let name = match body.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => return Err(required("name")),
    };
    if !valid_ref_name(&name) {
        return Err(error_json(&format!("\"{name}\" is not a valid tag name")));
    }
    let Some(hash) = body.pointer("/target/hash").and_then(Value::as_str) else {
        return Err(required("target.hash"));
    };
    let hash = hash.to_ascii_lowercase();
    if !is_full_hash(&hash) || repo.commit(&hash).is_none() {
        return Err(error_json(&format!("Commit \"{hash}\" not found")));
    }
    if repo.tags.contains_key(&name) {
        return Err(error_json(&format!("tag \"{name}\" already exists")));
    }
    Ok(TagRec {
        name,
        hash,
        annotation: None,
    })
}

/// Git's rules for ref names (`git check-ref-format`), the ones a tag name can break.
fn valid_ref_name(name: &str) -> bool {
    let bad_char = |c: char| c.is_control() || " ~^:?*[\\".contains(c);
    !name.is_empty()
        && !name.chars().any(bad_char)
        && !name.contains("..")
        && !name.contains("@{")
        && !name.contains("//")
        && name != "@"
        && !name.starts_with(['/', '-'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.split('/').any(|part| part.starts_with('.'))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn ref_names_follow_git() {
        for ok in ["stg1.2.3", "release/v1", r#"special-"$;><&#_=@!|.,/test"#] {
            assert!(valid_ref_name(ok), "{ok}");
        }
        for bad in [
            "", "a b", "a..b", "a~1", "x.lock", "/a", "a/", "a:b", "-a", "a/.b",
        ] {
            assert!(!valid_ref_name(bad), "{bad}");
        }
    }
}
