//! `hoist serve`: the HTTP server and the worker together, from a listening socket until shutdown.
//! The binary's `serve` command and the loopback stack of the demo and the tests both run on it.

use std::future::Future;

use anyhow::Context;

use crate::app::App;
use crate::config::Config;

/// Serves `config` on `server.listen` until SIGINT or SIGTERM, then drains requests and jobs.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen.clone();
    let app = App::build(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    crate::http::warn_about_exposure(&app);
    tracing::info!(listen = %listener.local_addr()?, store = %crate::app::redact_url(&app.config.store.url), "hoist is ready");
    run(app, listener, shutdown_signal()).await
}

/// Runs the HTTP server and the worker until `shutdown`, then drains both.
pub async fn run(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(crate::worker::run(app.clone(), rx));
    let stop = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    crate::http::serve(app, listener, stop).await?;
    let _ = worker.await;
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing requests and jobs in flight");
}
