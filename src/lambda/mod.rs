//! `hoist lambda`: the routes, answers and checks of `hoist serve`, served through the AWS Lambda
//! Runtime API (lambda_http) for API Gateway HTTP APIs (payload 2.0), REST APIs (payload 1.0) and
//! function URLs, plus EventBridge schedule events that run the jobs left over.
//!
//! Lambda freezes the process as soon as an invocation is answered, so nothing may be left running
//! in the background: each invocation runs the ready jobs itself, within `[lambda] job_budget_ms`
//! (`work.rs`). `event.rs` turns Lambda events into the axum requests `http::router` serves;
//! `init.rs` checks the environment, chooses the store and reports start-up failures to Lambda.

mod event;
mod init;
mod work;

use std::path::Path;

use anyhow::Context as _;

pub use work::{Limits, Worked, work_while};

/// Whether this process is a custom runtime's `bootstrap`: Lambda starts `bootstrap` with no
/// arguments and `AWS_LAMBDA_RUNTIME_API` set, and that means `hoist lambda`.
pub fn is_bootstrap() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
        && std::env::args_os()
            .next()
            .and_then(|arg0| Path::new(&arg0).file_name().map(|name| name == "bootstrap"))
            .unwrap_or(false)
}

/// Runs as a Lambda function until Lambda stops the process.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let api = init::runtime_api()?;
    let hoist = match init::build_app(config_path).await {
        Ok(hoist) => hoist,
        Err(e) => {
            init::report_init_error(&api, &e).await;
            return Err(e);
        }
    };
    let router = crate::http::router(hoist.http.clone());
    tracing::info!(
        store = %crate::server::redact_url(&hoist.config.store.url),
        job_budget_ms = hoist.config.lambda.job_budget_ms,
        "hoist is ready for Lambda invocations"
    );
    let worker = hoist.worker;
    let handler = lambda_http::service_fn(move |request| {
        event::handle(worker.clone(), router.clone(), request)
    });
    lambda_http::run(handler)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the Lambda runtime stopped")
}
