//! `/metrics`, `/healthz` and `/readyz` over HTTP.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

/// What the HTTP handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Gathered on each scrape.
    pub registry: Registry,
    /// Set once the service is connected and bound to its consumer.
    pub ready: Arc<AtomicBool>,
    /// The NATS client, once connected (readiness also needs a live connection).
    pub client: Arc<std::sync::OnceLock<async_nats::Client>>,
}

/// Binds `addr` now (so a taken port fails at start, naming the address) and
/// serves until `stop` fires.
pub async fn serve(
    addr: SocketAddr,
    state: HttpState,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for /metrics on {addr}: {e}"))?;
    let app = router(state);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "http server failed");
        }
    }))
}

/// The three routes, for a process that serves them beside its own (the gateway).
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<HttpState>) -> (StatusCode, String) {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => (StatusCode::OK, String::from_utf8_lossy(&buf).into_owned()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn readyz(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    let connected = s
        .client
        .get()
        .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected);
    match (s.ready.load(Ordering::Relaxed), connected) {
        (true, true) => (StatusCode::OK, "ready\n"),
        (_, false) => (StatusCode::SERVICE_UNAVAILABLE, "not connected to nats\n"),
        (false, true) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not bound to its consumer\n",
        ),
    }
}
