//! hail-monitor as a child process on a free port, and reading its `/metrics`.

use anyhow::Result;
use hail_testkit::{Process, bin_path, free_port, http_get, metric_sum};

/// A running hail-monitor polling every 200 ms over a 2 s window.
pub struct Monitor {
    _process: Process,
    port: u16,
}

impl Monitor {
    /// Starts hail-monitor against `nats_url` with `/metrics` on a free port.
    pub fn spawn(nats_url: &str) -> Result<Monitor> {
        let port = free_port();
        let args: Vec<String> = [
            "--nats-url",
            nats_url,
            "--interval",
            "200ms",
            "--window",
            "2s",
            "--metrics-addr",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("127.0.0.1:{port}")])
        .collect();
        let process = Process::spawn(
            &bin_path(hail_runtime::service::MONITOR_BINARY)?,
            &args,
            &[],
        )?;
        Ok(Monitor {
            _process: process,
            port,
        })
    }

    /// The port of its `/metrics`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
