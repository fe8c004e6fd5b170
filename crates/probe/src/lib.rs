//! Client-side tools for hail's CLI, load generator and tests; nothing a
//! service links.
//!
//! - [`http`]: [`http_get`], a GET for `/metrics`, health endpoints and
//!   nats-server's monitor (http and https, IPv4 and IPv6).
//! - [`prom_text`]: [`metric_sum`], one metric out of a Prometheus text exposition.
//! - [`launch`]: [`Launch`], start a program and wait until its readiness URL
//!   answers 200, failing fast when it exits; [`process`] is the running
//!   [`Process`], with its output in a log file, stopped on drop.
//! - [`nats_server`]: [`NatsServer`], a private JetStream nats-server on free
//!   loopback ports with a temporary store (the `bench` command's, the tests');
//!   [`nats_cluster`]: [`NatsCluster`], three of them clustered (`nats-1..3`),
//!   each killable, pausable and restartable, with its meta and stream leaders.
//! - [`bins`]: where nats-server and hail's own binaries are; [`port`]:
//!   [`free_port`]; [`wait`]: [`wait_until`], waiting on a condition, never a bare sleep.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use hail_probe::{Launch, NatsServer, bin_path, free_port, http_get, metric_sum};
//!
//! let nats = NatsServer::start()?;
//! let port = free_port();
//! let pricing = Launch::new(bin_path("hail-pricing")?)
//!     .args(["--nats-url", &nats.url(), "--metrics-addr", &format!("127.0.0.1:{port}")])
//!     .ready(&format!("http://127.0.0.1:{port}/readyz"), Duration::from_secs(30))
//!     .await?;
//! let (_, body) = http_get(&format!("http://127.0.0.1:{port}/metrics")).await?;
//! let handled = metric_sum(&body, "hail_messages_total", &[("outcome", "ack")]);
//! # let _ = (pricing, handled);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod bins;
pub mod cpu;
pub mod http;
pub mod launch;
pub mod nats_cluster;
pub mod nats_server;
pub mod port;
pub mod process;
pub mod prom_text;
pub mod wait;

pub use bins::{bin_path, nats_server_bin};
pub use cpu::cpu_seconds;
pub use http::{HttpError, HttpErrorKind, http_get};
pub use launch::{Launch, NotReady, ReadyError, wait_for_url};
pub use nats_cluster::NatsCluster;
pub use nats_server::NatsServer;
pub use port::free_port;
pub use process::Process;
pub use prom_text::metric_sum;
pub use wait::wait_until;
