//! Hoist assembled: the store, and the HTTP layer and worker that share it. `hoist serve`, the
//! Lambda runtime, and the loopback stack of the demo and the tests all start here.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{self, Store};
use crate::{http, worker};

/// A running Hoist's parts.
#[derive(Clone)]
pub struct Hoist {
    pub config: Arc<Config>,
    pub store: Store,
    pub http: http::Context,
    pub worker: worker::Context,
}

impl Hoist {
    /// Connects the store (running its migrations) and builds the parts.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&store_options(&config))
            .await
            .with_context(|| {
                format!("cannot open the store at {}", redact_url(&config.store.url))
            })?;
        Ok(Self::with_store(config, store))
    }

    pub fn with_store(config: Config, store: Store) -> Self {
        let config = Arc::new(config);
        let wake = Arc::new(Notify::new());
        // One set of metrics, counted by the HTTP layer, the worker and the clients alike.
        let metrics = Metrics::new();
        Self {
            http: http::Context::new(config.clone(), store.clone(), wake.clone(), metrics.clone()),
            worker: worker::Context::new(config.clone(), store.clone(), wake, metrics),
            config,
            store,
        }
    }

    /// Runs the HTTP server and the worker until `shutdown`, then drains both.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(worker::run(self.worker.clone(), rx));
        let stop = async move {
            shutdown.await;
            let _ = tx.send(true);
        };
        http::serve(self.http, listener, stop).await?;
        let _ = worker.await;
        Ok(())
    }
}

/// Serves `config` on `server.listen` until SIGINT or SIGTERM, then drains requests and jobs.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let hoist = Hoist::start(config).await?;
    http::warn_about_exposure(&hoist.config);
    tracing::info!(listen = %listener.local_addr()?, store = %redact_url(&hoist.config.store.url), "hoist is ready");
    hoist.run(listener, shutdown_signal()).await
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

/// How the configuration opens the store.
pub fn store_options(config: &Config) -> store::Options {
    store::Options {
        url: config.store.url.clone(),
        fsync: config.store.fsync,
        max_attempts: config.max_attempts(),
        schema: None,
        serve: true,
    }
}

/// A store URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
