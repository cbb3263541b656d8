//! `GET /api/stats?project=&env=&days=&daily=`: the DORA figures ([`crate::core::dora`]) of one
//! project and environment, or of every configured pair that fits what is given, over the `days`
//! days ending now. Access as for the rest of `/api`; a parameter out of range, malformed or
//! naming nothing configured is a `400` that names it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, Request, State};
use serde_json::{Value, json};

use super::api::authorize;
use super::context::Context;
use super::error::ApiError;
use crate::core::dora;
use crate::domain::now_ms;
use crate::report;

pub async fn stats(
    State(ctx): State<Context>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    authorize(&ctx, &req)?;
    let param = |name: &str| q.get(name).map(String::as_str);
    let days = dora::parse_days(param("days")).map_err(|m| ApiError::bad_parameter("days", m))?;
    let daily = flag(param("daily")).map_err(|m| ApiError::bad_parameter("daily", m))?;
    let scopes = dora::scopes(&ctx.config, param("project"), param("env"))?;
    let now = now_ms();
    let mut stats = Vec::with_capacity(scopes.len());
    for (project, env) in &scopes {
        stats.push(if daily {
            let (figures, days) = ctx.store.dora_with_days(project, env, days, now).await?;
            report::stats(&figures, Some(&days))
        } else {
            report::stats(&ctx.store.dora(project, env, days, now).await?, None)
        });
    }
    let (since, until) = dora::window(days, now);
    Ok(Json(json!({
        "days": days, "since": report::rfc3339(since), "until": report::rfc3339(until),
        "stats": stats,
    })))
}

/// `daily`: absent, `false`/`0` or `true`/`1`.
fn flag(raw: Option<&str>) -> Result<bool, String> {
    match raw.map(str::trim) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err("`daily` is `true` or `false`".into()),
    }
}
