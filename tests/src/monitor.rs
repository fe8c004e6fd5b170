//! hail-monitor as a child process on a free port, and reading its `/metrics`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use anyhow::{Context as _, Result};
use hail_testkit::{Process, free_port, http_get, metric_sum};

use crate::services::launch;

/// A running hail-monitor polling every 200 ms over a 2 s window.
pub struct Monitor {
    _process: Process,
    addr: SocketAddr,
}

impl Monitor {
    /// Starts hail-monitor against `nats_url` with `/metrics` on a free port of 127.0.0.1.
    pub fn spawn(nats_url: &str) -> Result<Monitor> {
        Monitor::spawn_at(nats_url, (Ipv4Addr::LOCALHOST, free_port()).into())
    }

    /// [`Monitor::spawn`] with `extra` flags (credentials, say).
    pub fn spawn_with(nats_url: &str, extra: &[&str]) -> Result<Monitor> {
        let addr: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
        let process = launch(
            hail_runtime::service::MONITOR_BINARY,
            nats_url,
            &addr.to_string(),
        )?
        .args(["--interval", "200ms", "--window", "2s"])
        .args(extra)
        .spawn()?;
        Ok(Monitor {
            _process: process,
            addr,
        })
    }

    /// Starts hail-monitor against `nats_url` with `/metrics` on a free port of
    /// `[::1]`, the IPv6 loopback.
    pub fn spawn_ipv6(nats_url: &str) -> Result<Monitor> {
        let port = TcpListener::bind("[::1]:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port on [::1]")?
            .port();
        Monitor::spawn_at(nats_url, (Ipv6Addr::LOCALHOST, port).into())
    }

    fn spawn_at(nats_url: &str, addr: SocketAddr) -> Result<Monitor> {
        let process = launch(
            hail_runtime::service::MONITOR_BINARY,
            nats_url,
            &addr.to_string(),
        )?
        .args(["--interval", "200ms", "--window", "2s"])
        .spawn()?;
        Ok(Monitor {
            _process: process,
            addr,
        })
    }

    /// The port of its `/metrics`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`, or `http://[::1]:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sum of a metric's samples with `labels`; None when absent or unreachable.
    pub async fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let (_, body) = http_get(&format!("{}/metrics", self.base_url()))
            .await
            .ok()?;
        metric_sum(&body, name, labels)
    }

    /// Whether the consumer's Burrow-style status is `status`.
    pub async fn status_is(&self, consumer: &str, status: &str) -> bool {
        let labels = [("consumer_name", consumer), ("status", status)];
        self.value("hail_consumer_status", &labels).await == Some(1.0)
    }

    /// The consumer's lag in messages (-1 when unknown).
    pub async fn lag(&self, consumer: &str) -> f64 {
        self.value("hail_consumer_lag_messages", &[("consumer_name", consumer)])
            .await
            .unwrap_or(-1.0)
    }
}
