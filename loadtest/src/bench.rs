//! The Foundation benchmark: rides per second the pipeline sustains with all four
//! services co-located, beside the broker's own ceiling for the same message
//! pattern (the null pipeline), measured in one invocation and alternated
//! (null, services, null, services…) so machine noise hits both alike.
//!
//! Each run starts a fresh nats-server (file storage in a temp dir), provisions the
//! streams with the defaults, starts the pipeline, publishes N rides (t0 = first
//! publish) and stops the clock (t1) when all four durables show nothing pending
//! and nothing awaiting an ack. Pipeline rides/s = N / (t1 - t0).
//!
//! With a rate (`--rate`), the rides are sent open loop at that rate instead,
//! and each service's answers are timed from their rides' due times
//! ([`crate::latency`]): the same latency baseline as the throughput's.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream;
use hail_events::subjects;
use hail_probe::NatsServer;
use hail_runtime::service::Service;

use crate::{
    city::CITIES,
    drain,
    latency::{Collector, Pace},
    null_pipeline::NullPipeline,
    null_processes::NullProcesses,
    publisher::{self, PublishSettings},
    report::{BenchReport, Pipeline, RunResult},
    rides::RideFactory,
    services::{self, Services},
};

/// Which pipelines to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Only the null pipeline.
    Null,
    /// Only the real services.
    Services,
    /// Both, alternating.
    Both,
    /// The null pipeline, the same null consumers as one process each
    /// (`null-split`, laid out as the services are) and the services,
    /// alternating: what four processes cost, apart from the services' code.
    Layout,
}

/// The benchmark's parameters.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Rides per run.
    pub rides: u64,
    pub mode: Mode,
    /// Runs per pipeline.
    pub repeat: usize,
    /// PubAcks in flight while publishing.
    pub window: usize,
    /// How often the durables are polled.
    pub poll: Duration,
    /// Longest wait for the durables to drain after the last publish.
    pub drain_timeout: Duration,
    /// Instances of each service, and of each null consumer, per durable.
    pub instances: usize,
    /// Broker nodes: 1 is a single server (streams R1), more a cluster on this
    /// machine (streams R3, or R2 on two nodes).
    pub nodes: usize,
    /// Open loop: rides per second, each answer's latency measured from its
    /// ride's due time ([`crate::latency`]); `None` publishes as fast as the
    /// broker takes them.
    pub rate: Option<f64>,
}

/// Outputs per ride: matching, pricing and fraud each publish one.
const OUTPUTS_PER_RIDE: u64 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the plan and prints each run's row to stderr as it completes.
pub async fn run(s: &BenchSettings) -> Result<BenchReport> {
    // Check the binaries before any run, so a missing one fails at once.
    let binaries = match s.mode {
        Mode::Null => Vec::new(),
        Mode::Services | Mode::Both | Mode::Layout => services::binaries()?,
    };
    let mut runs = Vec::new();
    for (i, pipeline) in plan(s.mode, s.repeat).into_iter().enumerate() {
        let result = run_once(i + 1, pipeline, s, &binaries)
            .await
            .with_context(|| format!("run {} ({})", i + 1, pipeline.as_str()))?;
        eprintln!(
            "run {} {}: {} rides, publish {:.0} rides/s, pipeline {:.0} rides/s ({:.2} s)",
            result.run,
            pipeline.as_str(),
            result.rides,
            result.publish_rides_per_s,
            result.pipeline_rides_per_s,
            result.pipeline_seconds
        );
        runs.push(result);
    }
    Ok(BenchReport::new(s.rides, s.instances, s.nodes, runs))
}

/// The order of the runs: alternating when both are measured.
pub fn plan(mode: Mode, repeat: usize) -> Vec<Pipeline> {
    let each: &[Pipeline] = match mode {
        Mode::Null => &[Pipeline::Null],
        Mode::Services => &[Pipeline::Services],
        Mode::Both => &[Pipeline::Null, Pipeline::Services],
        Mode::Layout => &[Pipeline::Null, Pipeline::NullSplit, Pipeline::Services],
    };
    (0..repeat).flat_map(|_| each.iter().copied()).collect()
}

async fn run_once(
    run: usize,
    pipeline: Pipeline,
    s: &BenchSettings,
    binaries: &[(Service, PathBuf)],
) -> Result<RunResult> {
    let nats = Broker::start(s.nodes).await?;
    let result = measure(run, pipeline, &nats, s, binaries).await;
    // Dropping a server kills and reaps it and removes its store: blocking work.
    tokio::task::spawn_blocking(move || drop(nats)).await?;
    result
}

/// The broker of one run: a single server or a cluster.
enum Broker {
    Single(NatsServer),
    Cluster(hail_probe::NatsCluster),
}

impl Broker {
    async fn start(nodes: usize) -> Result<Broker> {
        Ok(match nodes {
            0 | 1 => Broker::Single(tokio::task::spawn_blocking(NatsServer::start).await??),
            n => Broker::Cluster(hail_probe::NatsCluster::start_with(n).await?),
        })
    }

    /// Every node's client URL, comma-separated.
    fn url(&self) -> String {
        match self {
            Broker::Single(s) => s.url(),
            Broker::Cluster(c) => c.urls(),
        }
    }

    fn replicas(&self) -> usize {
        match self {
            Broker::Single(_) => 1,
            Broker::Cluster(c) => c.len().min(hail_runtime::replicas::CLUSTER),
        }
    }

    /// CPU seconds of every node so far.
    fn cpu_seconds(&self) -> f64 {
        let pids = match self {
            Broker::Single(s) => vec![s.pid()],
            Broker::Cluster(c) => (0..c.len()).filter_map(|i| c.pid(i)).collect(),
        };
        pids.into_iter()
            .map(|pid| hail_probe::cpu_seconds(pid).unwrap_or(0.0))
            .sum()
    }
}

async fn measure(
    run: usize,
    pipeline: Pipeline,
    nats: &Broker,
    s: &BenchSettings,
    binaries: &[(Service, PathBuf)],
) -> Result<RunResult> {
    let url = &nats.url();
    let client = hail_runtime::connect::connect(url, "hail-loadgen-bench", CONNECT_TIMEOUT).await?;
    let js = publisher::context(client.clone(), s.window);
    let streams = hail_runtime::provision::StreamSettings {
        replicas: nats.replicas(),
        ..Default::default()
    };
    hail_runtime::provision::ensure_streams(&js, &streams).await?;
    let running = match pipeline {
        Pipeline::Null => Running::Null(NullPipeline::start(url, s.instances).await?),
        Pipeline::NullSplit => {
            Running::NullSplit(NullProcesses::start(&js, url, s.instances).await?)
        }
        Pipeline::Services => Running::Services(Services::start(binaries, url, s.instances).await?),
    };
    let cpu_before = cpu_of(&running, nats);
    let pace = s.rate.map(Pace::starting_soon);
    let collector = match pace {
        Some(pace) => Some(Collector::start(&client, pace).await?),
        None => None,
    };
    let mut result = drive(run, pipeline, &js, s, pace).await;
    if let (Ok(r), Some(c)) = (&mut result, collector) {
        r.latency = c.finish(s.rides).await;
    }
    if let Ok(r) = &mut result {
        let after = cpu_of(&running, nats);
        r.cpu_us_per_ride = after
            .into_iter()
            .map(|(who, spent)| {
                let before = cpu_before.get(&who).copied().unwrap_or(0.0);
                (who, (spent - before) * 1e6 / s.rides as f64)
            })
            .collect();
    }
    running.stop().await;
    if let Err(e) = client.drain().await {
        tracing::warn!(error = %e, "draining the bench connection failed");
    }
    result
}

/// Publishes, waits for the drain and counts what the stream holds.
async fn drive(
    run: usize,
    pipeline: Pipeline,
    js: &jetstream::Context,
    s: &BenchSettings,
    pace: Option<Pace>,
) -> Result<RunResult> {
    let factory = RideFactory::new(&format!("bench{run}"), &CITIES)?;
    let settings = PublishSettings {
        rides: s.rides,
        window: s.window,
        progress: false,
        pace,
    };
    let published = publisher::publish(js, &factory, &settings).await?;
    if published.failed > 0 || published.duplicates > 0 {
        bail!(
            "publishing was not clean, the run is void: {}; errors: {:?}",
            published.summary(),
            published.errors
        );
    }
    let durables = Service::ALL.map(Service::durable);
    let drained = drain::wait_drained(js, &durables, s.poll, s.drain_timeout).await?;
    let t1 = drained.all;
    let seconds = (t1 - published.started).as_secs_f64();
    let last_stored = published.started + published.elapsed;
    let stream_messages = js
        .get_stream(subjects::RIDES_STREAM)
        .await?
        .cached_info()
        .state
        .messages;
    let expected = s.rides * (1 + OUTPUTS_PER_RIDE);
    if stream_messages != expected {
        tracing::warn!(
            stream_messages,
            expected,
            "RIDES does not hold one request and three outputs per ride"
        );
    }
    Ok(RunResult {
        run,
        pipeline,
        rides: s.rides,
        publish_rides_per_s: published.rate(),
        pipeline_seconds: seconds,
        pipeline_rides_per_s: s.rides as f64 / seconds,
        drained_after_publish_s: t1.saturating_duration_since(last_stored).as_secs_f64(),
        durable_drained_after_s: drained
            .each
            .into_iter()
            .map(|(d, at)| (d, at.saturating_duration_since(last_stored).as_secs_f64()))
            .collect(),
        stream_messages,
        cpu_us_per_ride: BTreeMap::new(),
        latency: BTreeMap::new(),
    })
}

/// CPU seconds so far of the broker and of the pipeline: each service (all
/// its instances), or this process for the null pipeline (its consumers and
/// the publisher together).
fn cpu_of(running: &Running, nats: &Broker) -> BTreeMap<String, f64> {
    let mut spent: BTreeMap<String, f64> = match running {
        Running::Null(_) => [(
            "hail-loadgen".to_string(),
            hail_probe::cpu_seconds(std::process::id()).unwrap_or(0.0),
        )]
        .into(),
        Running::NullSplit(p) => p.cpu_seconds(),
        Running::Services(s) => s
            .cpu_seconds()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    };
    spent.insert("nats-server".into(), nats.cpu_seconds());
    spent
}

enum Running {
    Null(NullPipeline),
    NullSplit(NullProcesses),
    Services(Services),
}

impl Running {
    async fn stop(self) {
        match self {
            Running::Null(p) => {
                let stats = p.stop().await;
                if stats.errors > 0 {
                    tracing::warn!(errors = stats.errors, "the null pipeline saw errors");
                }
            }
            Running::NullSplit(p) => p.stop().await,
            Running::Services(s) => s.stop().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipelines_alternate() {
        use Pipeline::{Null, NullSplit, Services};
        assert_eq!(plan(Mode::Both, 2), [Null, Services, Null, Services]);
        assert_eq!(plan(Mode::Null, 3), [Null, Null, Null]);
        assert_eq!(plan(Mode::Services, 1), [Services]);
        assert_eq!(
            plan(Mode::Layout, 2),
            [Null, NullSplit, Services, Null, NullSplit, Services]
        );
    }
}
