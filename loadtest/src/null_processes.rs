//! The null pipeline laid out as the services are: one process per null
//! consumer (`hail-loadgen null-consumer`), each with its own runtime and
//! connection, instead of the four in the bench's own process.
//!
//! The consumers do exactly what [`NullPipeline`]'s do; only the layout
//! differs. Beside the in-process null pipeline and the services
//! (`bench --mode layout`), it splits the distance between them into what
//! running four processes costs on this machine and what the services' own
//! code costs.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream;
use hail_events::subjects;
use hail_probe::{Launch, Process, bin_path, wait_until};
use hail_runtime::service::Service;

use crate::null_pipeline::NullPipeline;

/// How long the processes get to bind their durables.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each gets to stop on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The running null consumer processes.
pub struct NullProcesses {
    running: Vec<(Service, Process)>,
}

impl NullProcesses {
    /// Spawns `instances` processes per service's durable and waits until each
    /// durable has a pull request waiting from every one of them.
    pub async fn start(js: &jetstream::Context, nats_url: &str, instances: usize) -> Result<Self> {
        // Found as the service binaries are, so a test and the bench alike run
        // the hail-loadgen binary beside them.
        let exe = bin_path("hail-loadgen")?;
        let mut processes = NullProcesses {
            running: Vec::new(),
        };
        for service in Service::ALL {
            for _ in 0..instances.max(1) {
                let process = Launch::new(&exe)
                    .args(["null-consumer", "--nats-url", nats_url])
                    .args(["--service", service.name()])
                    .spawn()?;
                processes.running.push((service, process));
            }
        }
        if let Err(e) = processes.wait_pulling(js, instances.max(1)).await {
            processes.stop().await;
            return Err(e);
        }
        Ok(processes)
    }

    async fn wait_pulling(&mut self, js: &jetstream::Context, instances: usize) -> Result<()> {
        let stream = js.get_stream(subjects::RIDES_STREAM).await?;
        for service in Service::ALL {
            let durable = service.durable();
            let waiting = || async {
                match stream.consumer_info(durable).await {
                    Ok(info) => info.num_waiting >= instances,
                    Err(_) => false,
                }
            };
            let what = format!("{instances} null consumer(s) pulling from {durable}");
            if let Err(e) = wait_until(READY_TIMEOUT, &what, waiting).await {
                let logs: Vec<String> = self.running.iter().map(|(_, p)| p.log_tail()).collect();
                return Err(e.context(logs.join("\n")));
            }
        }
        if let Some((_, exited)) = self.running.iter().find(|(_, p)| p.has_exited()) {
            bail!("a null consumer exited: {}", exited.log_tail());
        }
        Ok(())
    }

    /// CPU seconds each service's null consumer processes have used so far.
    pub fn cpu_seconds(&self) -> BTreeMap<String, f64> {
        let mut spent = BTreeMap::new();
        for (service, p) in &self.running {
            let cpu = hail_probe::cpu_seconds(p.pid()).unwrap_or(0.0);
            *spent.entry(format!("null-{}", service.name())).or_default() += cpu;
        }
        spent
    }

    /// SIGTERMs every process and waits; one that does not stop in time is
    /// killed and reported.
    pub async fn stop(self) {
        let stops = self.running.into_iter().map(|(service, mut p)| {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = p.terminate(STOP_TIMEOUT) {
                    tracing::warn!(service = service.name(), error = %e, "a null consumer did not stop cleanly");
                }
            })
        });
        for stop in futures::future::join_all(stops).await {
            if let Err(e) = stop {
                tracing::warn!(error = %e, "stopping a null consumer panicked");
            }
        }
    }
}

/// `hail-loadgen null-consumer`: one null consumer of `service`'s durable
/// until SIGTERM or SIGINT (RIDES must exist).
pub async fn run_one(nats_url: &str, service: Service) -> Result<()> {
    let stop = hail_runtime::shutdown::on_signals().context("installing signal handlers")?;
    let pipeline = NullPipeline::start_for(nats_url, &[service], 1).await?;
    stop.cancelled().await;
    let stats = pipeline.stop().await;
    if stats.errors > 0 {
        tracing::warn!(errors = stats.errors, "the null consumer saw errors");
    }
    Ok(())
}
