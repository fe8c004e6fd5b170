//! hail-gateway: the HTTP front door. `POST /v1/rides` validates a ride
//! request, publishes it as `RideRequested` and answers `202 Accepted` only
//! after JetStream's PubAck (`503` + `Retry-After` when NATS does not answer);
//! `GET /v1/rides/{id}` reads the ride view; `POST /v1/rides/{id}/cancel`
//! publishes `RideCancelled`; `/openapi.json` describes it all.
//!
//! - [`request`]: the request body and its validation (every bad field named).
//! - [`cities`]: the cities rides are taken in (the cities file).
//! - [`idempotency`]: `Idempotency-Key` → ride, in a KV bucket.
//! - [`broker`]: NATS: publish and wait for the PubAck, the buckets, all bounded.
//! - [`status`]: a ride's status from its ride view record; [`recent`]: the
//!   rides accepted lately, for the moment before ride-view has them.
//! - [`routes`]: the handlers; [`problem`]: the error body; [`metrics`]: per
//!   route requests and latency; [`openapi`]: the generated document.
#![forbid(unsafe_code)]

pub mod broker;
pub mod cities;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod recent;
pub mod request;
pub mod routes;
pub mod status;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock, atomic::AtomicBool},
    time::Duration,
};

use hail_runtime::{LogFormat, duration::parse_duration, replicas::Replicas};
use prometheus::Registry;

/// The binary's name.
pub const BINARY: &str = "hail-gateway";

/// Default port of the API (and of its `/metrics`, `/healthz`, `/readyz`).
pub const DEFAULT_PORT: u16 = 8080;

/// The gateway's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// NATS server URL, or several seeds comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Address of the HTTP API, /metrics, /healthz and /readyz.
    #[arg(long, env = "HAIL_GATEWAY_LISTEN", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub listen: SocketAddr,
    /// The cities file (deploy/local/cities.toml): a ride in a city it does not
    /// list is refused. Without it any city name is taken.
    #[arg(long, env = "HAIL_GATEWAY_CITIES")]
    pub cities: Option<PathBuf>,
    /// How long to wait for a PubAck (or any NATS answer) before answering 503.
    #[arg(long, env = "HAIL_GATEWAY_PUBLISH_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub publish_timeout: Duration,
    /// `Retry-After` of a 503, in seconds.
    #[arg(long, env = "HAIL_GATEWAY_RETRY_AFTER", default_value_t = 1)]
    pub retry_after: u64,
    /// Largest request body, in bytes (a larger one is answered 413).
    #[arg(long, env = "HAIL_GATEWAY_MAX_BODY", default_value_t = 16 * 1024)]
    pub max_body: usize,
    /// Replicas of the idempotency bucket: a number, or `auto`.
    #[arg(long, env = "HAIL_REPLICAS", default_value = "auto")]
    pub replicas: Replicas,
    /// Give up connecting to NATS at start after this long.
    #[arg(long, env = "HAIL_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Time allowed for requests in flight to finish on SIGTERM.
    #[arg(long, env = "HAIL_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Log format; the level comes from RUST_LOG.
    #[arg(long, env = "HAIL_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// `--creds`, `--user`/`--password`, `--nkey`, `--tls-ca`…
    #[command(flatten)]
    pub auth: hail_runtime::auth::AuthArgs,
}

impl GatewayArgs {
    /// The cities of `--cities`, or any.
    pub fn load_cities(&self) -> anyhow::Result<cities::Cities> {
        match &self.cities {
            Some(path) => cities::Cities::load(path).map_err(|e| anyhow::anyhow!("--cities: {e}")),
            None => Ok(cities::Cities::any()),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.publish_timeout.is_zero(),
            "--publish-timeout must be longer than 0s"
        );
        anyhow::ensure!(
            self.max_body >= 256,
            "--max-body must be at least 256 bytes, got {}",
            self.max_body
        );
        Ok(())
    }
}

/// The pieces of a gateway before it is connected: its router and the cell
/// its NATS handle goes into (tests build it in-process).
pub struct Parts {
    pub app: routes::App,
    pub router: axum::Router,
    pub ready: Arc<AtomicBool>,
    pub client: Arc<OnceLock<async_nats::Client>>,
}

/// Builds the router; the API answers 503 until [`connect`] fills the broker.
pub fn build(cities: cities::Cities, settings: routes::ApiSettings) -> anyhow::Result<Parts> {
    let registry = Registry::new();
    let metrics = metrics::GatewayMetrics::register(&registry)?;
    hail_runtime::auth::register_metrics(&registry)?;
    let ready = Arc::new(AtomicBool::new(false));
    let client = Arc::new(OnceLock::new());
    let health = hail_runtime::http::HttpState {
        registry,
        ready: ready.clone(),
        client: client.clone(),
    };
    let app = routes::App {
        broker: Arc::new(OnceLock::new()),
        openapi: Arc::new(openapi::to_json(&cities)),
        cities: Arc::new(cities),
        recent: Arc::new(Mutex::new(recent::Recent::new(settings.recent_rides))),
        metrics,
        settings,
    };
    let router = routes::router(app.clone(), health);
    Ok(Parts {
        app,
        router,
        ready,
        client,
    })
}

/// Binds the broker handle of `parts` to a connected client.
pub async fn connect(
    parts: &Parts,
    client: async_nats::Client,
    replicas: Replicas,
    timeout: Duration,
) -> anyhow::Result<()> {
    let n = replicas.for_client(&client);
    let broker = broker::Broker::bind(client.clone(), n, timeout).await?;
    let _ = parts.client.set(client);
    let _ = parts.app.broker.set(broker);
    parts
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Serves until SIGTERM/SIGINT, then lets requests in flight finish and drains.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    args.validate()?;
    let cities = args.load_cities()?;
    let shutdown = hail_runtime::shutdown::on_signals()?;
    let settings = routes::ApiSettings {
        max_body_bytes: args.max_body,
        retry_after_s: args.retry_after,
        ..Default::default()
    };
    let parts = build(cities, settings)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (--listen): {e}", args.listen))?;
    tracing::info!(addr = %args.listen, "serving the API, /metrics, /healthz, /readyz");
    let stop = shutdown.clone();
    let router = parts.router.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    let client =
        hail_runtime::connect::connect_as(&args.nats_url, BINARY, args.connect_timeout, &args.auth)
            .await?;
    connect(&parts, client.clone(), args.replicas, args.publish_timeout).await?;
    tracing::info!(nats = args.nats_url, "connected; taking rides");
    shutdown.cancelled().await;
    tracing::info!("stopping: finishing requests in flight");
    match tokio::time::timeout(args.shutdown_timeout, http).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "http server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "http server panicked"),
        Err(_) => tracing::warn!("requests still in flight after --shutdown-timeout"),
    }
    let _ = client.drain().await;
    Ok(())
}
