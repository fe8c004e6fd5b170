//! The consumer-group runtime: a hail service is a [`Handler`]; the runtime owns
//! everything around it.
//!
//! - [`service`]: hail's services (the four of the pipeline, then ride-view),
//!   each one's name, port, subjects and the durable consumer it binds.
//! - [`config`]: the flags every service shares, validated at start.
//! - [`connect`]: bounded retry at start, unlimited reconnects afterwards;
//!   [`auth`]: the credential and TLS flags, and permission violations.
//! - [`provision`]: the streams, durables and buckets: create-or-update for
//!   `hail provision`, check-and-bind for a service at start; [`replicas`]:
//!   how many copies of each (`auto`: 3 on a cluster, 1 alone).
//! - [`worker`]: batched pulls, bounded concurrency, outcome → ack / nak / dead-letter;
//!   a one-active group (analytics) pulls as a pinned-client priority group and
//!   notes its pin ([`pin`]);
//!   [`fence`] stores each answer at most once at any age, looking it up in the
//!   stream ([`answered`]) only when a delivery is not the first.
//! - [`dead_letter`]: the copy that goes to `dlq.<service>`; [`advisory`] makes one
//!   for messages the server gave up on after their last delivery; [`replay`]
//!   sends one back for its service (both halves of the replay protocol).
//! - [`drivers`]: every driver's last location, loaded at start and kept live;
//!   [`request_feed`]: every ride request, for state all instances must share;
//!   both on [`ordered_feed`] (load what a stream holds, then follow it).
//! - [`metrics`] and [`http`]: `/metrics`, `/healthz`, `/readyz` (hail-probe
//!   reads them back for the CLI, the load generator and tests).
//! - [`service_api`]: `$SRV.PING/INFO/STATS` with the lag in STATS.
//! - [`shutdown`] and [`telemetry`]: signals and logs.
//! - `allocator`: mimalloc is the allocator of every process linking the runtime.
//! - [`fault`]: test-only fault injection (`--fault-*`), off unless a rate is set.
//!
//! A service's `main` parses its flags, then:
//!
//! <!-- no_run: needs a nats-server, and serves until SIGTERM. -->
//! ```no_run
//! # use hail_runtime::{Delivery, Handler, Outcome, Runtime, RuntimeArgs, service::Service};
//! struct Echo;
//! impl Handler for Echo {
//!     async fn handle(&self, _d: &Delivery<'_>) -> Outcome { Outcome::done() }
//! }
//! # async fn f(args: RuntimeArgs) -> anyhow::Result<()> {
//! let rt = Runtime::start(Service::Pricing, args).await?;
//! rt.serve(Echo).await
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod advisory;
mod allocator;
pub mod answered;
pub mod auth;
pub mod config;
pub mod connect;
pub mod dead_letter;
pub mod drivers;
pub mod duration;
pub mod fault;
pub mod fence;
pub mod http;
pub mod metrics;
pub mod ordered_feed;
mod outcome;
pub mod pin;
pub mod provision;
pub mod replay;
pub mod replicas;
pub mod request_feed;
pub mod service;
pub mod service_api;
pub mod shutdown;
pub mod telemetry;
pub mod worker;

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;
use async_nats::{Client, jetstream};
use prometheus::Registry;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::{LogFormat, RuntimeArgs};
pub use metrics::RuntimeMetrics;
pub use outcome::{Delivery, Handler, Outcome, Output};
use provision::{ConsumerSpec, StreamSettings};
use service::Service;

/// Ends a service's `main`: logs the error chain and maps it to the exit code.
pub fn exit_code(binary: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Milliseconds since the Unix epoch, for event timestamps.
pub fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A connected service, its streams provisioned, its HTTP endpoints up.
pub struct Runtime {
    service: Service,
    args: RuntimeArgs,
    instance: String,
    client: Client,
    js: jetstream::Context,
    replicas: usize,
    registry: Registry,
    metrics: RuntimeMetrics,
    shutdown: CancellationToken,
    http_stop: CancellationToken,
    http: tokio::task::JoinHandle<()>,
    ready: Arc<AtomicBool>,
    tracker: TaskTracker,
}

impl Runtime {
    /// Validates the flags, installs the signal handlers, starts HTTP on
    /// `--metrics-addr` (default `127.0.0.1:<the service's port>`), connects to
    /// NATS (bounded by `--connect-timeout`, as `--creds`/`--user`/`--nkey`
    /// say) and checks and binds the streams ([`provision::bind_streams`]).
    pub async fn start(service: Service, args: RuntimeArgs) -> anyhow::Result<Self> {
        args.validate().map_err(anyhow::Error::msg)?;
        let instance = args.instance_name(service.name());
        let shutdown = shutdown::on_signals().context("cannot install signal handlers")?;
        let registry = Registry::new();
        let metrics = RuntimeMetrics::register(&registry, service.name())?;
        auth::register_metrics(&registry)?;
        let ready = Arc::new(AtomicBool::new(false));
        let client_cell = Arc::new(OnceLock::new());
        let addr = args
            .metrics_addr
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], service.metrics_port())));
        let http_stop = CancellationToken::new();
        let state = http::HttpState {
            registry: registry.clone(),
            ready: ready.clone(),
            client: client_cell.clone(),
        };
        let http = http::serve(addr, state, http_stop.clone()).await?;
        tracing::info!(%addr, instance, "serving /metrics /healthz /readyz");
        let client = tokio::select! {
            c = connect::connect_as(&args.nats_url, &instance, args.connect_timeout, &args.auth) => c?,
            _ = shutdown.cancelled() => anyhow::bail!("interrupted while connecting to NATS at {}", args.nats_url),
        };
        let _ = client_cell.set(client.clone());
        let js = jetstream::new(client.clone());
        let settings = StreamSettings {
            rides_max_age: args.rides_max_age,
            rides_max_bytes: args.rides_max_bytes,
            duplicate_window: args.duplicate_window,
            replicas: args.replicas.for_client(&client),
        };
        provision::bind_streams(&js, &settings).await?;
        let replicas = settings.replicas;
        Ok(Runtime {
            service,
            args,
            instance,
            client,
            js,
            replicas,
            registry,
            metrics,
            shutdown,
            http_stop,
            http,
            ready,
            tracker: TaskTracker::new(),
        })
    }

    /// The service this runtime runs.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The NATS client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The JetStream context.
    pub fn js(&self) -> &jetstream::Context {
        &self.js
    }

    /// The registry served on `/metrics`; services register their own metrics here.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Cancelled when the process is asked to stop.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Tracks a service's own background tasks; they must end once the shutdown
    /// token fires, and are waited for (time-boxed) before the client is drained.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Replicas of every stream and KV bucket: `--replicas`, with `auto`
    /// resolved against the server at start.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The flags the runtime was started with.
    pub fn args(&self) -> &RuntimeArgs {
        &self.args
    }

    /// The durable consumer this service binds with these flags
    /// ([`Service::consumer_spec`]).
    pub fn consumer_spec(&self) -> ConsumerSpec {
        self.service.consumer_spec(&self.args)
    }

    /// Checks and binds the service's durable consumer on RIDES (named after the
    /// service: the consumer group; reading [`Service::filters`]), registers with the services
    /// API and runs `handler` until SIGTERM/SIGINT, then shuts down in order: stop
    /// pulling, finish in flight (time-boxed), stop the service's own tasks, flush
    /// acks, drain, stop HTTP.
    pub async fn serve<H: Handler>(self, handler: H) -> anyhow::Result<()> {
        let spec = self.consumer_spec();
        let consumer = provision::bind_consumer(&self.js, &spec).await?;
        let pin = pin::PinSeen::default();
        let lag = service_api::LagSource {
            durable: spec.durable.clone(),
            instance: self.instance.clone(),
            pin: pin.clone(),
            pending: self.metrics.pending.clone(),
            in_flight: self.metrics.in_flight.clone(),
            processed: self.metrics.processed.clone(),
        };
        let svc = service_api::register(
            &self.client,
            self.service.name(),
            &self.instance,
            lag,
            &self.tracker,
            self.shutdown.clone(),
        )
        .await?;
        let watch = advisory::Watch {
            service: self.service.name().to_string(),
            stream: spec.stream.clone(),
            durable: spec.durable.clone(),
        };
        advisory::watch_max_deliveries(
            self.js.clone(),
            watch,
            self.metrics.clone(),
            &self.tracker,
            self.shutdown.clone(),
        )
        .await?;
        self.set_ready(true);
        tracing::info!(durable = spec.durable, filters = ?spec.filter_subjects, "consuming");
        let settings = worker::WorkerSettings {
            batch: self.args.batch,
            concurrency: self.args.concurrency,
            max_deliver: self.args.max_deliver,
            backoff: self.args.backoff.clone(),
            shutdown_timeout: self.args.shutdown_timeout,
            faults: fault::Faults::from_args(&self.args.faults),
            pin,
        };
        // The worker runs as a task of the runtime, not on the thread that
        // awaits it (`#[tokio::main]`'s): there, every message the connection
        // task hands over would wake another thread (measured: a fifth of
        // each service's CPU at 2,000 rides/s, docs/BENCHMARKS.md).
        let worker = tokio::spawn(worker::run(
            self.service.name(),
            self.js.clone(),
            consumer,
            handler,
            self.metrics.clone(),
            settings,
            self.shutdown.clone(),
        ));
        let result = worker
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the worker task failed: {e}")));
        self.set_ready(false);
        // Each step that talks to NATS is time-boxed: with the server gone
        // it would otherwise wait for a reconnect that may never come.
        let timeout = self.args.shutdown_timeout;
        match tokio::time::timeout(timeout, svc.stop()).await {
            Ok(Err(e)) => tracing::debug!(error = %e, "services API stop"),
            Err(_) => tracing::warn!(?timeout, "services API stop timed out"),
            Ok(Ok(())) => {}
        }
        self.stop().await;
        result
    }

    fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.metrics.ready.set(i64::from(ready));
    }

    /// The tail of the ordered shutdown, after the worker is done.
    async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.args.shutdown_timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop in time");
        }
        let timeout = self.args.shutdown_timeout;
        match tokio::time::timeout(timeout, self.client.flush()).await {
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "flushing acks failed; they will be redelivered")
            }
            Err(_) => tracing::warn!(
                ?timeout,
                "flushing acks timed out (NATS unreachable?); they will be redelivered"
            ),
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout(timeout, self.client.drain()).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "draining the nats connection failed"),
            Err(_) => tracing::warn!(?timeout, "draining the nats connection timed out"),
            Ok(Ok(())) => {}
        }
        self.http_stop.cancel();
        let _ = self.http.await;
        tracing::info!("stopped");
    }
}
