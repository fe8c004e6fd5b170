//! A hail service binary running as a child process, and [`launch`], how the
//! tests, the load generator's tests and the examples start a service or the monitor.

use std::time::Duration;

use anyhow::Result;
use hail_testkit::{Launch, Process, bin_path, free_port, http_get, metric_sum};

/// One service process and the port of its `/metrics`.
pub struct Service {
    /// Durable name (`matching`, `pricing`…).
    pub name: &'static str,
    /// Port of its HTTP server.
    pub port: u16,
    /// The process.
    pub process: Process,
    nats_url: String,
}

impl Service {
    /// Starts `hail-<name>` against `nats_url` with `/metrics` on a free port.
    pub fn spawn(name: &'static str, nats_url: &str) -> Result<Service> {
        let port = free_port();
        let process = spawn_process(name, nats_url, port, &[])?;
        Ok(Service {
            name,
            port,
            process,
            nats_url: nats_url.to_string(),
        })
    }

    /// Starts `hail-<name>` with extra flags.
    pub fn spawn_with(name: &'static str, nats_url: &str, extra: &[&str]) -> Result<Service> {
        let port = free_port();
        let process = spawn_process(name, nats_url, port, extra)?;
        Ok(Service {
            name,
            port,
            process,
            nats_url: nats_url.to_string(),
        })
    }

    /// Starts the same service again (after a kill) on the same port, with
    /// default flags (whatever it was first started with).
    pub fn restart(&mut self) -> Result<()> {
        self.restart_with(&[])
    }

    /// Starts the same service again (after a kill) on the same port with `extra` flags.
    pub fn restart_with(&mut self, extra: &[&str]) -> Result<()> {
        self.process.kill();
        self.process = spawn_process(self.name, &self.nats_url, self.port, extra)?;
        Ok(())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `/readyz` answers 200; fails at once, quoting the log,
    /// if the process exits first (a service that cannot start never gets ready).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        Ok(self
            .process
            .wait_ready(&self.url("/readyz"), timeout)
            .await?)
    }

    /// Sum of a metric's samples with the given labels, from `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        let (status, body) = http_get(&self.url("/metrics")).await?;
        anyhow::ensure!(status == 200, "{} /metrics answered {status}", self.name);
        Ok(metric_sum(&body, name, labels).unwrap_or(0.0))
    }

    /// Inputs of `event` type processed and acked by this process.
    pub async fn processed(&self, event: &str) -> Result<f64> {
        self.metric(hail_runtime::metrics::names::PROCESSED, &[("event", event)])
            .await
    }
}

/// The binary `binary` (e.g. `hail-pricing`, `hail-monitor`) against `nats_url`
/// with its `/metrics`, `/healthz` and `/readyz` at `metrics_addr` (`127.0.0.1:9102`,
/// `[::1]:9105`), logging at info; more flags can follow.
pub fn launch(binary: &str, nats_url: &str, metrics_addr: &str) -> Result<Launch> {
    Ok(Launch::new(bin_path(binary)?)
        .args(["--nats-url", nats_url, "--metrics-addr", metrics_addr])
        .envs([("RUST_LOG", "info")]))
}

fn spawn_process(name: &str, nats_url: &str, port: u16, extra: &[&str]) -> Result<Process> {
    let service: hail_runtime::service::Service = name.parse()?;
    launch(service.binary(), nats_url, &format!("127.0.0.1:{port}"))?
        .args(extra)
        .spawn()
}

/// Starts all four services and waits until each is ready.
pub async fn spawn_all(nats_url: &str) -> Result<Vec<Service>> {
    let mut all = Vec::new();
    for name in crate::SERVICES {
        all.push(Service::spawn(name, nats_url)?);
    }
    for s in &all {
        s.wait_ready(Duration::from_secs(30)).await?;
    }
    Ok(all)
}
