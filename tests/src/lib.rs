//! Helpers for hail's end-to-end tests: start the real service binaries against a
//! testkit nats-server, publish rides, read consumers, streams and `/metrics`.
//!
//! - [`services`]: spawning and reading a service process.
//! - [`monitor`]: hail-monitor on a free port, and its figures.
//! - [`cli`]: running the real `hail` CLI.
//! - [`gateway`]: hail-gateway as a process, and the Python tools run against it.
//! - [`rides`]: publishing requests and reading what the stream holds.
//! - [`ride_view`]: ride-view's records checked against what RIDES holds.
//! - [`chaos`]: the fault suite's seeded randomness, background load, and the
//!   checks after each scenario (drain, `hail audit --json`, nothing acknowledged lost).
//! - [`prometheus`]: a real Prometheus with hail's rules and consoles, promtool,
//!   and the queries of the dashboards.
//!
//! The tests themselves live in `tests/`; every test takes [`serial`] first, so
//! the two cores of a CI machine run one pipeline at a time.
#![forbid(unsafe_code)]

pub mod chaos;
pub mod cli;
pub mod gateway;
pub mod monitor;
pub mod prometheus;
pub mod ride_view;
pub mod rides;
pub mod services;

use tokio::sync::{Mutex, MutexGuard};

/// The four services, by durable name ([`hail_runtime::service::Service::NAMES`]).
pub const SERVICES: [&str; 4] = hail_runtime::service::Service::NAMES;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Runs pipeline tests one at a time within a test binary.
pub async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}
