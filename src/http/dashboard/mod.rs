//! The dashboard (SPEC 15): HTML pages rendered here from `templates/`, one stylesheet, no
//! script. Pages read the store as the API does; buttons are POST forms that go through
//! [`crate::requests`], the same code as the API, the CLI and Slack, recorded as via `dashboard`
//! by the signed-in person. `session.rs` says who may look and which forms are honoured.

// A page's early answers (sign in, refused) are whole responses, returned as errors.
#![allow(clippy::result_large_err)]

mod chart;
pub mod session;
mod views;

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use self::session::{Denied, Viewer};
use self::views::Frame;
use super::context::Context;
use super::request::{is_forwarded, peer_ip};
use crate::core::dora;
use crate::domain::{ReleaseId, ReleaseStatus, Via, now_ms};
use crate::requests::{self, Promoted, Refused};
use crate::store::ReleaseFilter;

const PAGE: i64 = 50;
const FLASH: &str = "hoist_flash";
const CSS: &str = include_str!("hoist.css");

/// The dashboard's routes.
pub fn routes() -> Router<Context> {
    Router::new()
        .route("/", get(releases))
        .route("/releases/{id}", get(release))
        .route("/releases/{id}/approve", axum::routing::post(approve))
        .route("/releases/{id}/promote", axum::routing::post(promote))
        .route(
            "/projects/{project}/environments/{env}/rollback",
            axum::routing::post(rollback),
        )
        .route("/dora", get(dora_page))
        .route("/signin", get(sign_in_page).post(sign_in))
        .route("/signout", axum::routing::post(sign_out))
        .route("/static/hoist.css", get(css))
}

/// A page that could not be shown, as a page.
struct Problem {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl Problem {
    fn bad(parameter: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Problem {
            status: StatusCode::BAD_REQUEST,
            title: "Bad request",
            message: if message.contains(&format!("`{parameter}`")) {
                message
            } else {
                format!("`{parameter}`: {message}")
            },
        }
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "dashboard: the store failed");
        Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Unavailable",
            message: "the store could not be read; try again shortly".into(),
        }
    }
}

impl From<dora::BadParameter> for Problem {
    fn from(e: dora::BadParameter) -> Self {
        Problem::bad(e.parameter, e.message)
    }
}

fn problem_page(p: Problem, viewer: Option<&Viewer>) -> Response {
    let page = views::ProblemPage {
        frame: frame(viewer, None),
        title: p.title.into(),
        message: p.message,
    };
    (p.status, html(page.render())).into_response()
}

fn html(r: askama::Result<String>) -> Response {
    match r {
        Ok(body) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::X_FRAME_OPTIONS, "DENY"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
                ),
            ],
            Html(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "dashboard: a template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn frame(viewer: Option<&Viewer>, flash: Option<String>) -> Frame {
    Frame {
        viewer: viewer.map(|v| v.name.clone()),
        can_sign_out: viewer.is_some_and(|v| v.has_session),
        csrf: viewer.map(|v| v.csrf.clone()).unwrap_or_default(),
        flash,
    }
}

fn loopback(req: &Request) -> bool {
    peer_ip(req.extensions()).to_canonical().is_loopback() && !is_forwarded(req.headers())
}

/// The viewer, or the answer for someone who may not look.
fn who(ctx: &Context, req: &Request) -> Result<Viewer, Response> {
    session::viewer(&ctx.keys, &ctx.config, req.headers(), loopback(req)).map_err(|d| match d {
        Denied::SignIn => Redirect::to("/signin").into_response(),
        Denied::Forbidden => problem_page(
            Problem {
                status: StatusCode::FORBIDDEN,
                title: "Forbidden",
                message: "the dashboard answers direct loopback callers only unless server.api_token is set (then sign in with it)".into(),
            },
            None,
        ),
    })
}

/// The query's parameters; a repeated one keeps its last value.
fn params(q: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The flash message a redirect left, and the header that clears it.
fn take_flash(headers: &HeaderMap) -> Option<String> {
    let raw = session::cookie(headers, FLASH)?;
    let text: String = url::form_urlencoded::parse(format!("m={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some(text.chars().take(500).collect())
}

fn with_flash_cleared(mut resp: Response, had: bool) -> Response {
    if had {
        resp.headers_mut().append(
            header::SET_COOKIE,
            format!("{FLASH}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
                .parse()
                .expect("a fixed header"),
        );
    }
    resp
}

/// A 303 to `to` carrying `message` for the next page.
fn redirect_saying(to: &str, message: &str) -> Response {
    let value: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        format!("{FLASH}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=60")
            .parse()
            .expect("an encoded value"),
    );
    resp
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

// ---- pages --------------------------------------------------------------------------------------

async fn releases(State(ctx): State<Context>, RawQuery(q): RawQuery, req: Request) -> Response {
    let viewer = match who(&ctx, &req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let flash = take_flash(req.headers());
    let had = flash.is_some();
    let page = async {
        let ps = params(q.as_deref());
        let mut only = ReleaseFilter::default();
        if let Some(p) = param(&ps, "project") {
            let project = ctx.config.project(p).ok_or_else(|| {
                Problem::bad("project", format!("no project `{}` is configured", cut(p)))
            })?;
            only.project = Some(project.name.clone());
        }
        let envs = views::all_envs(&ctx.config);
        if let Some(e) = param(&ps, "env") {
            if !envs.iter().any(|x| x == e) {
                return Err(Problem::bad(
                    "env",
                    format!("no environment `{}` is configured", cut(e)),
                ));
            }
            only.env = Some(
                crate::domain::EnvName::parse(e).map_err(|_| Problem::bad("env", "not a name"))?,
            );
        }
        if let Some(s) = param(&ps, "status") {
            only.status = Some(ReleaseStatus::parse(s).ok_or_else(|| {
                Problem::bad("status", format!("no release status `{}`", cut(s)))
            })?);
        }
        let before = match param(&ps, "before") {
            Some(b) => Some(ReleaseId(
                b.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
                    Problem::bad(
                        "before",
                        "must be a release number (a whole number above 0)",
                    )
                })?,
            )),
            None => None,
        };
        let list = ctx.store.releases_where(PAGE, before, only.clone()).await?;
        let older = (list.len() as i64 == PAGE).then(|| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("project", only.project.as_ref().map(|p| p.to_string())),
                ("env", only.env.as_ref().map(|e| e.to_string())),
                ("status", only.status.map(|s| s.to_string())),
                ("before", list.last().map(|r| r.id.0.to_string())),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, &v);
                }
            }
            q.finish()
        });
        Ok(views::ReleasesPage {
            frame: frame(Some(&viewer), flash),
            projects: ctx
                .config
                .projects
                .iter()
                .map(|p| p.name.to_string())
                .collect(),
            envs,
            statuses: views::statuses(),
            project: only.project.map(|p| p.to_string()).unwrap_or_default(),
            env: only.env.map(|e| e.to_string()).unwrap_or_default(),
            status: only.status.map(|s| s.to_string()).unwrap_or_default(),
            rows: list.iter().map(|r| views::row(&ctx.config, r)).collect(),
            older,
        })
    };
    let resp = match page.await {
        Ok(p) => html(p.render()),
        Err(p) => problem_page(p, Some(&viewer)),
    };
    with_flash_cleared(resp, had)
}

/// At most 60 characters of what someone sent, to quote it back.
fn cut(s: &str) -> String {
    s.chars().take(60).collect()
}

async fn release(State(ctx): State<Context>, Path(id): Path<String>, req: Request) -> Response {
    let viewer = match who(&ctx, &req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let flash = take_flash(req.headers());
    let had = flash.is_some();
    let page = async {
        let id = id
            .parse::<i64>()
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| Problem::bad("id", "a release is named by its number"))?;
        let r = ctx
            .store
            .release(ReleaseId(id))
            .await?
            .ok_or_else(|| Problem {
                status: StatusCode::NOT_FOUND,
                title: "Not found",
                message: format!("no release {id}"),
            })?;
        let mut deployments = Vec::new();
        for d in ctx.store.deployments(r.id).await? {
            let ex = ctx.store.executions(d.id).await?;
            deployments.push((d, ex));
        }
        let approvals = ctx.store.approvals(r.id).await?;
        Ok(views::release_page(
            frame(Some(&viewer), flash),
            &ctx.config,
            &r,
            &deployments,
            &approvals,
        ))
    };
    let resp = match page.await {
        Ok(p) => html(p.render()),
        Err(p) => problem_page(p, Some(&viewer)),
    };
    with_flash_cleared(resp, had)
}

async fn dora_page(State(ctx): State<Context>, RawQuery(q): RawQuery, req: Request) -> Response {
    let viewer = match who(&ctx, &req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let page = async {
        let ps = params(q.as_deref());
        let days = dora::parse_days(param(&ps, "days")).map_err(|m| Problem::bad("days", m))?;
        let (project, env) = (param(&ps, "project"), param(&ps, "env"));
        let scopes = dora::scopes(&ctx.config, project, env)?;
        let now = now_ms();
        let mut panels = Vec::new();
        for (p, e) in &scopes {
            let (figures, daily) = ctx.store.dora_with_days(p, e, days, now).await?;
            panels.push(views::panel(&figures, &daily));
        }
        Ok(views::DoraPage {
            frame: frame(Some(&viewer), None),
            projects: ctx
                .config
                .projects
                .iter()
                .map(|p| p.name.to_string())
                .collect(),
            envs: views::all_envs(&ctx.config),
            project: project.unwrap_or_default().to_string(),
            env: env.unwrap_or_default().to_string(),
            days,
            panels,
        })
    };
    match page.await {
        Ok(p) => html(p.render()),
        Err(p) => problem_page(p, Some(&viewer)),
    }
}

// ---- sign-in ------------------------------------------------------------------------------------

/// The form's viewer: the sign-in page is shown to anyone (with a form token bound to no session).
fn anonymous(ctx: &Context, req: &Request) -> Viewer {
    session::viewer(&ctx.keys, &ctx.config, req.headers(), loopback(req)).unwrap_or(Viewer {
        name: String::new(),
        csrf: ctx.keys.form_token(),
        has_session: false,
    })
}

fn sign_in_form(ctx: &Context, viewer: &Viewer, problem: Option<String>) -> Response {
    let signed_in = !viewer.name.is_empty();
    let page = views::SignInPage {
        frame: frame(signed_in.then_some(viewer), None),
        token: ctx.config.server.api_token.is_some(),
        problem,
    };
    let status = if page.problem.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    (status, html(page.render())).into_response()
}

async fn sign_in_page(State(ctx): State<Context>, req: Request) -> Response {
    if ctx.config.server.api_token.is_none() && !loopback(&req) {
        return who(&ctx, &req)
            .err()
            .unwrap_or_else(|| Redirect::to("/").into_response());
    }
    let viewer = anonymous(&ctx, &req);
    sign_in_form(&ctx, &viewer, None)
}

async fn sign_in(State(ctx): State<Context>, req: Request) -> Response {
    if ctx.config.server.api_token.is_none() && !loopback(&req) {
        return who(&ctx, &req)
            .err()
            .unwrap_or_else(|| Redirect::to("/").into_response());
    }
    let viewer = anonymous(&ctx, &req);
    let headers = req.headers().clone();
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    // The sign-in form's token is not bound to a session (there is none yet), so the origin is
    // what stops another site from signing a browser in under its own name.
    if !session::same_origin(&headers) {
        return refused_form(Some(&viewer));
    }
    let Some(name) = param(&form, "name").and_then(session::valid_name) else {
        return sign_in_form(
            &ctx,
            &viewer,
            Some("`name`: give your name, 1 to 64 characters".into()),
        );
    };
    if let Some(token) = &ctx.config.server.api_token {
        let presented = param(&form, "token").unwrap_or("");
        if !token.ct_eq(presented.as_bytes()) {
            return sign_in_form(
                &ctx,
                &viewer,
                Some("`token`: that is not the API token".into()),
            );
        }
    }
    let value = ctx.keys.session(&name);
    let mut resp = redirect_saying("/", &format!("Signed in as {name}."));
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(Some(&value), secure(&ctx))
            .parse()
            .expect("a signed value"),
    );
    resp
}

async fn sign_out(State(ctx): State<Context>, req: Request) -> Response {
    let (viewer, form) = match checked_form(&ctx, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let _ = (viewer, form);
    let mut resp = Redirect::to("/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(None, secure(&ctx))
            .parse()
            .expect("a fixed value"),
    );
    resp
}

/// Cookies say `Secure` when Hoist is reached over https (`server.public_url`).
fn secure(ctx: &Context) -> bool {
    ctx.config.server.base_url().starts_with("https://")
}

// ---- buttons ------------------------------------------------------------------------------------

async fn read_form(req: Request) -> Result<Vec<(String, String)>, Response> {
    let ok_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !ok_type {
        return Err(problem_page(
            Problem {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                title: "Unsupported form",
                message: "send the form as application/x-www-form-urlencoded".into(),
            },
            None,
        ));
    }
    let body = axum::body::to_bytes(req.into_body(), 16 * 1024)
        .await
        .map_err(|_| {
            problem_page(
                Problem::bad("body", "unreadable or larger than 16 KiB"),
                None,
            )
        })?;
    Ok(url::form_urlencoded::parse(&body).into_owned().collect())
}

fn refused_form(viewer: Option<&Viewer>) -> Response {
    problem_page(
        Problem {
            status: StatusCode::FORBIDDEN,
            title: "Refused",
            message: "this form did not come from this dashboard's page (another origin, or without its token): nothing was done".into(),
        },
        viewer,
    )
}

/// The viewer and the form of a POST that passed every check: signed in, same origin, its token.
async fn checked_form(
    ctx: &Context,
    req: Request,
) -> Result<(Viewer, Vec<(String, String)>), Response> {
    let viewer = who(ctx, &req)?;
    let same_origin = session::same_origin(req.headers());
    let form = read_form(req).await?;
    let token_ok = param(&form, "csrf").is_some_and(|t| session::csrf_ok(&viewer, t));
    if !same_origin || !token_ok {
        return Err(refused_form(Some(&viewer)));
    }
    Ok((viewer, form))
}

fn said(r: &Result<String, Refused>) -> String {
    match r {
        Ok(m) => m.clone(),
        Err(Refused::Store(e)) => {
            tracing::error!(error = %e, "dashboard: the store failed");
            "the store could not be written; nothing was done, try again".into()
        }
        Err(e) => format!("Not done: {e}"),
    }
}

async fn approve(State(ctx): State<Context>, Path(id): Path<i64>, req: Request) -> Response {
    let (viewer, form) = match checked_form(&ctx, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let env = param(&form, "env").unwrap_or("").to_string();
    let r = requests::approve(
        &ctx.store,
        &ctx.config,
        ReleaseId(id),
        &env,
        &viewer.name,
        Via::Dashboard,
    )
    .await
    .map(|a| {
        if a.promoted.is_some() {
            ctx.wake.notify_one();
        }
        let counted = if a.counted {
            format!("{} approved {env}", viewer.name)
        } else {
            format!("{} had approved {env} already", viewer.name)
        };
        match a.promoted {
            Some(Promoted::Started) => format!("{counted}; the promotion to {env} started."),
            Some(Promoted::Already(_)) => {
                format!("{counted}; the promotion to {env} is under way.")
            }
            None => format!("{counted}; the promotion waits for what is still unmet."),
        }
    });
    redirect_saying(&format!("/releases/{id}"), &said(&r))
}

async fn promote(State(ctx): State<Context>, Path(id): Path<i64>, req: Request) -> Response {
    let (viewer, form) = match checked_form(&ctx, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let env = param(&form, "env").unwrap_or("").to_string();
    let r = requests::promote(
        &ctx.store,
        &ctx.config,
        ReleaseId(id),
        &env,
        &viewer.name,
        Via::Dashboard,
    )
    .await
    .map(|p| {
        ctx.wake.notify_one();
        match p {
            Promoted::Started => format!("The promotion to {env} started."),
            Promoted::Already(_) => format!("The promotion to {env} was under way already."),
        }
    });
    redirect_saying(&format!("/releases/{id}"), &said(&r))
}

async fn rollback(
    State(ctx): State<Context>,
    Path((project, env)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (viewer, _) = match checked_form(&ctx, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let r = requests::rollback(
        &ctx.store,
        &ctx.config,
        &project,
        &env,
        None,
        &viewer.name,
        Via::Dashboard,
    )
    .await;
    match r {
        Ok(done) => {
            ctx.wake.notify_one();
            redirect_saying(
                &format!("/releases/{}", done.release),
                &format!(
                    "Rolling {project} {env} back to {} (release {}).",
                    done.tag, done.release
                ),
            )
        }
        Err(e) => redirect_saying("/", &said(&Err(e))),
    }
}
