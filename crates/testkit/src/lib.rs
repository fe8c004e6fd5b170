//! hail's test harness: real processes instead of mocks.
//!
//! Every integration test owns its own nats-server and its own service
//! processes, so tests run in parallel and leave nothing behind: each handle
//! SIGKILLs its process on drop and removes its temporary directory.
//!
//! The pieces live in hail-probe, which the CLI and the load generator use
//! too; this crate gathers them under the names the tests use:
//!
//! - [`bin_path`] finds a hail binary built by `cargo build --workspace --bins`,
//!   [`nats_server_bin`] finds nats-server.
//! - [`NatsServer`] (module [`nats`]): a JetStream-enabled nats-server on free
//!   ports with a temporary store that can be killed like a crash and restarted
//!   on the same ports with its state recovered.
//! - [`NatsCluster`] (module [`cluster`]): three JetStream nodes clustered on
//!   loopback (`nats-1..3`), any of them SIGKILLed, paused or restarted on its
//!   own store; it names the meta leader and each stream's leader.
//! - [`Process`]: a child process with its output in a log file, to terminate
//!   gracefully (SIGTERM) or kill (SIGKILL); [`Launch`] starts one and waits
//!   until it is ready.
//! - [`free_port`] for services that need a port chosen up front.
//! - [`wait_until`]: how a test waits for a condition (never a bare sleep).
//! - [`http_get`]: a GET for `/metrics` and health endpoints.
//! - [`metric_sum`]: one metric out of a Prometheus text exposition.
//!
//! The process handles are synchronous (`std::process`), so they work in plain
//! and in `#[tokio::test]` tests alike; [`NatsServer::start`] blocks until the
//! server is ready, at most 10 s.
//!
//! <!-- no_run: needs nats-server and the service binaries (`cargo build
//! --workspace --bins`); the e2e tests in tests/ run exactly this. -->
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use hail_testkit::{Launch, NatsServer, bin_path, free_port, http_get, metric_sum};
//!
//! let nats = NatsServer::start()?;
//! let metrics_addr = format!("127.0.0.1:{}", free_port());
//! let pricing = Launch::new(bin_path("hail-pricing")?)
//!     .args(["--metrics-addr", &metrics_addr])
//!     .envs([("NATS_URL", nats.url())])
//!     .ready(&format!("http://{metrics_addr}/readyz"), Duration::from_secs(10))
//!     .await?;
//! let (_, body) = http_get(&format!("http://{metrics_addr}/metrics")).await?;
//! assert_eq!(metric_sum(&body, "hail_ready", &[("service", "pricing")]), Some(1.0));
//! # let _ = pricing;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

/// The nats-server of a test, from [`hail_probe::nats_server`].
pub mod nats {
    pub use hail_probe::nats_server::{DEFAULT_MAX_FILE_STORE, NatsServer};
}

/// The 3-node cluster of a test, from [`hail_probe::nats_cluster`].
pub mod cluster {
    pub use hail_probe::nats_cluster::{NatsCluster, NodePorts, Replica, StreamPlacement};
}

pub use hail_probe::{
    HttpError, Launch, NatsCluster, NatsServer, Process, bin_path, free_port, http_get, metric_sum,
    nats_server_bin, wait_until,
};
