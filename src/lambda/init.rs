//! Start-up in Lambda: the Runtime API's environment, the configuration, the store, and the report
//! of a failed start to Lambda's `/init/error` (so the failure shows in the invocation's answer).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::server::Hoist;

/// Variables Lambda sets for every custom runtime; lambda_runtime needs them all.
const LAMBDA_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// The Runtime API's `host:port`, once the whole Lambda environment is known to be present.
pub fn runtime_api() -> anyhow::Result<String> {
    let missing: Vec<&str> = LAMBDA_ENV
        .into_iter()
        .filter(|name| std::env::var(name).map_or(true, |v| v.is_empty()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "`hoist lambda` runs inside AWS Lambda (or against a local Runtime API such as `cargo lambda watch`): {} not set; use `hoist serve` for a server",
            missing.join(", ")
        );
    }
    if std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?
        .parse::<i32>()
        .is_err()
    {
        bail!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not a number of megabytes");
    }
    Ok(std::env::var("AWS_LAMBDA_RUNTIME_API")?)
}

/// Loads and checks the configuration, chooses the store (saying what it means for state) and
/// connects it.
pub async fn build_app(path: &Path) -> anyhow::Result<Hoist> {
    let mut config = Config::load(path)?;
    let explicit = store_configured(path)?;
    choose_store(&mut config, explicit);
    if config.server.public_url.is_none() {
        tracing::warn!(
            "server.public_url is not set: status_url links will name {} instead of the API's address",
            config.server.listen
        );
    }
    if config.server.api_token.is_none() {
        tracing::warn!(
            "server.api_token is not set: /api answers nobody in Lambda (callers are never loopback)"
        );
    }
    crate::http::warn_about_exposure(&config);
    Hoist::start(config).await
}

/// Whether the operator chose a store (`HOIST_STORE_URL` or `store.url`), rather than leaving the
/// default, which names a file in the read-only function directory.
fn store_configured(path: &Path) -> anyhow::Result<bool> {
    if std::env::var("HOIST_STORE_URL").is_ok_and(|v| !v.is_empty()) {
        return Ok(true);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
    Ok(table.get("store").and_then(|s| s.get("url")).is_some())
}

/// Picks the store for this instance and warns about what it cannot keep.
fn choose_store(config: &mut Config, explicit: bool) {
    let url = &config.store.url;
    if !explicit {
        let file =
            std::env::temp_dir().join(format!("hoist-lambda-{}.db", uuid::Uuid::new_v4().simple()));
        config.store.url = format!("sqlite://{}", file.display());
        tracing::warn!(
            store = %config.store.url,
            "no store configured (store.url or HOIST_STORE_URL): running stateless, as the seed did. \
             Releases are still made from the commit and its tags in Bitbucket (a repeated ticket reuses \
             the tag already on its commit), but this instance's scratch SQLite file is all Hoist remembers: \
             a redelivery that reaches another instance is not recognised, history and lead times \
             (/api/releases) cover this instance only and vanish with it, and jobs it leaves unfinished \
             are lost. Set store.url to PostgreSQL for all of that"
        );
    } else if url.starts_with("sqlite:") {
        tracing::warn!(
            store = %url,
            "the store is an SQLite file: it belongs to this Lambda instance only (each concurrent \
             instance has its own, and it is gone when the instance is recycled), so dedupe, history \
             and unfinished jobs do not outlive the instance. Use PostgreSQL for a durable store"
        );
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        if !Path::new(path).starts_with(std::env::temp_dir()) && !path.starts_with("/tmp") {
            tracing::warn!(
                store = %url,
                "only /tmp is writable in Lambda: the SQLite file should be under /tmp"
            );
        }
    } else {
        tracing::info!("store: PostgreSQL, shared by every instance (durable)");
    }
}

/// Tells Lambda the function could not start (`POST /runtime/init/error`), so the invocation that
/// started it fails with this message rather than a bare timeout. Best effort.
pub async fn report_init_error(api: &str, error: &anyhow::Error) {
    let body = serde_json::json!({
        "errorType": "Hoist.InitError",
        "errorMessage": format!("{error:#}"),
        "stackTrace": [],
    });
    let sent = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map(|client| {
            client
                .post(format!("http://{api}/2018-06-01/runtime/init/error"))
                .header("Lambda-Runtime-Function-Error-Type", "Hoist.InitError")
                .json(&body)
                .send()
        });
    match sent {
        Ok(send) => {
            if let Err(e) = send.await {
                tracing::warn!(error = %e, "could not report the start-up failure to Lambda");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not report the start-up failure to Lambda"),
    }
}
