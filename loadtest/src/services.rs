//! The four real service binaries, started as their own processes against one
//! nats-server, each with its `/metrics` and `/readyz` on a free port.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::Result;
use hail_probe::{Launch, Process, bin_path, free_port};
use tokio::time::Instant;

use hail_runtime::service::Service;

/// How long the services get to bind their consumers.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each gets to stop on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Where each service binary is; the error says how to build them.
pub fn binaries() -> Result<Vec<(Service, PathBuf)>> {
    Service::ALL
        .iter()
        .map(|role| Ok((*role, bin_path(role.binary())?)))
        .collect()
}

/// The running services.
pub struct Services {
    running: Vec<Running>,
}

struct Running {
    role: Service,
    process: Process,
    port: u16,
}

impl Services {
    /// Spawns `instances` of each binary with `--nats-url` and `--metrics-addr
    /// 127.0.0.1:<free port>` and waits until every `/readyz` answers 200 (its
    /// consumer is bound).
    pub async fn start(
        binaries: &[(Service, PathBuf)],
        nats_url: &str,
        instances: usize,
    ) -> Result<Self> {
        let mut services = Services {
            running: Vec::new(),
        };
        let each = binaries
            .iter()
            .flat_map(|b| std::iter::repeat_n(b, instances.max(1)));
        for (role, path) in each {
            let port = free_port();
            let process = Launch::new(path)
                .args(["--nats-url", nats_url])
                .args(["--metrics-addr".to_string(), format!("127.0.0.1:{port}")])
                .spawn()?;
            services.running.push(Running {
                role: *role,
                process,
                port,
            });
        }
        if let Err(e) = services.wait_ready().await {
            services.stop().await;
            return Err(e);
        }
        Ok(services)
    }

    /// CPU seconds each service's instances have used so far, summed per
    /// service (an instance that cannot be read counts 0).
    pub fn cpu_seconds(&self) -> BTreeMap<&'static str, f64> {
        let mut spent = BTreeMap::new();
        for s in &self.running {
            let cpu = hail_probe::cpu_seconds(s.process.pid()).unwrap_or(0.0);
            *spent.entry(s.role.name()).or_default() += cpu;
        }
        spent
    }

    async fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        for s in &self.running {
            let url = format!("http://127.0.0.1:{}/readyz", s.port);
            let left = deadline.saturating_duration_since(Instant::now());
            s.process.wait_ready(&url, left).await?;
        }
        Ok(())
    }

    /// SIGTERMs every service (they stop in order: finish in flight, flush, drain)
    /// and waits; one that does not stop in time is killed and reported.
    pub async fn stop(self) {
        let stops = self.running.into_iter().map(|mut s| {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = s.process.terminate(STOP_TIMEOUT) {
                    tracing::warn!(service = s.role.binary(), error = %e, "did not stop cleanly");
                }
            })
        });
        for stop in futures::future::join_all(stops).await {
            if let Err(e) = stop {
                tracing::warn!(error = %e, "stopping a service panicked");
            }
        }
    }
}
