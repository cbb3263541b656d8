//! The ceiling for `scripts/bench.sh`: a bare axum server whose every `POST` reads the body and
//! answers `200` with no body, on the same runtime Hoist uses (tokio, one worker thread per core).
//! `GET /healthz` answers `200` too, so the harness can wait for it like for Hoist.
//!
//! `cargo run --release -p hoist-bench --bin bare-axum -- 127.0.0.1:9101`

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9101".to_string());
    let router = Router::new()
        .route("/healthz", get(|| async { StatusCode::OK }))
        .fallback(post(|_body: Bytes| async { StatusCode::OK }));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, router).await
}
