//! hail-monitor: the lag of every consumer group, computed from JetStream consumer
//! info, so the lag of a service that is down keeps rising on the dashboard.
//!
//! Its `/metrics` has two parts:
//!
//! - the stream and consumer series of prometheus-nats-exporter run with
//!   `-jsz=consumers -prefix=nats` (or `-jsz=all`): `nats_stream_*` and
//!   `nats_consumer_*`, the exporter's names, help and labels (`server_id`,
//!   `server_name`, `cluster`, `domain`, `meta_leader`, `is_meta_leader`,
//!   `account`, `account_name`, `account_id`, `stream_name`, `stream_leader`,
//!   `is_stream_leader`, `stream_raft_group`, then `consumer_name`,
//!   `consumer_leader`, `is_consumer_leader`, `consumer_desc`), so what is
//!   written for the exporter works here. Not exported: the exporter's server
//!   and account totals (`-jsz` without a filter) and source/mirror lag;
//! - hail's own, labelled by `stream_name` and `consumer_name` only:
//!   `hail_consumer_lag_messages`, `hail_consumer_lag_seconds`,
//!   `hail_consumer_status`, `hail_consumer_retention_used_ratio`,
//!   `hail_stream_max_age_seconds` (the exporter has no max age; its
//!   `nats_stream_limit_bytes` gives max_bytes) and
//!   `hail_monitor_polls_failed_total`.
//!
//! Modules:
//!
//! - [`poll`]: one reading of every stream and durable consumer.
//! - [`status`]: the Burrow-style status over a window of readings (pure).
//! - [`retention`]: how close a lagging consumer is to losing messages to the
//!   stream's `max_age` / `max_bytes` (pure).
//! - [`labels`]: the exporter's labels, from the connection and the readings.
//! - [`nats`]: the exporter's series.
//! - [`metrics`]: everything on `/metrics`: [`nats`] plus the `hail_*` series.
//! - [`cluster`]: on a cluster, each node's health (from its HTTP monitor,
//!   `--nats-monitor-url`), the meta leader, and each stream's replicas.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod labels;
pub mod metrics;
pub mod nats;
pub mod poll;
pub mod retention;
pub mod status;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream;
use hail_runtime::{
    LogFormat,
    duration::parse_duration,
    service::{MONITOR_BINARY, MONITOR_METRICS_PORT},
};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

/// The monitor's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MonitorArgs {
    /// NATS server URL, or several seeds comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// HTTP monitor URL of every broker node (comma-separated): each node's
    /// health and the meta leader come from their `/healthz` and `/jsz`.
    #[arg(long, env = "HAIL_NATS_MONITOR_URL", value_delimiter = ',')]
    pub nats_monitor_url: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "HAIL_METRICS_ADDR", default_value_t = SocketAddr::from(([127, 0, 0, 1], MONITOR_METRICS_PORT)))]
    pub metrics_addr: SocketAddr,
    /// Time between polls of the JetStream API.
    #[arg(long, env = "HAIL_MONITOR_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How far back the status looks (ack floor and deliveries moving or not).
    #[arg(long, env = "HAIL_MONITOR_WINDOW", default_value = "5s", value_parser = parse_duration)]
    pub window: Duration,
    /// Streams whose durable consumers are watched (comma-separated).
    #[arg(
        long,
        env = "HAIL_MONITOR_STREAMS",
        default_value = hail_events::subjects::RIDES_STREAM,
        value_delimiter = ','
    )]
    pub streams: Vec<String>,
    /// Give up connecting to NATS at start after this long.
    #[arg(long, env = "HAIL_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Log format; the level comes from RUST_LOG.
    #[arg(long, env = "HAIL_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// `--creds`, `--user`/`--password`, `--nkey`, `--tls-ca`…
    #[command(flatten)]
    pub auth: hail_runtime::auth::AuthArgs,
}

impl MonitorArgs {
    fn window_samples(&self) -> Result<usize, String> {
        if self.interval.is_zero() {
            return Err("--interval must be longer than 0s".into());
        }
        let n = (self.window.as_secs_f64() / self.interval.as_secs_f64()).round() as usize + 1;
        if n < 2 {
            return Err(format!(
                "--window {:?} must be at least one --interval {:?}",
                self.window, self.interval
            ));
        }
        Ok(n)
    }
}

/// Serves /metrics and polls until SIGTERM/SIGINT.
pub async fn run(args: MonitorArgs) -> anyhow::Result<()> {
    let samples = args.window_samples().map_err(anyhow::Error::msg)?;
    let shutdown = hail_runtime::shutdown::on_signals()?;
    let registry = Registry::new();
    let mut metrics = metrics::MonitorMetrics::register(&registry)?;
    hail_runtime::auth::register_metrics(&registry)?;
    let mut cluster_series = cluster::ClusterSeries::register(&registry)?;
    let mut known_nodes = HashMap::new();
    let ready = Arc::new(AtomicBool::new(false));
    let cell = Arc::new(OnceLock::new());
    let http_stop = CancellationToken::new();
    let state = hail_runtime::http::HttpState {
        registry,
        ready: ready.clone(),
        client: cell.clone(),
    };
    let http = hail_runtime::http::serve(args.metrics_addr, state, http_stop.clone()).await?;
    tracing::info!(addr = %args.metrics_addr, "serving /metrics");
    let client = hail_runtime::connect::connect_as(
        &args.nats_url,
        MONITOR_BINARY,
        args.connect_timeout,
        &args.auth,
    )
    .await?;
    let _ = cell.set(client.clone());
    let mut origin = labels::Origin::discover(&client).await;
    let js = jetstream::new(client.clone());
    let mut windows: HashMap<(String, String), VecDeque<status::Sample>> = HashMap::new();
    let mut tick = tokio::time::interval(args.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let nodes = if args.nats_monitor_url.is_empty() {
            vec![cluster::connected_node(&client)]
        } else {
            cluster::read_nodes(&args.nats_monitor_url, &mut known_nodes).await
        };
        let groups = cluster::read_groups(&js).await;
        cluster_series.update(&nodes, &groups);
        match poll::read(&js, &args.streams).await {
            Ok((streams, consumers)) => {
                let judged = judge(&mut windows, consumers, samples);
                origin.refresh(&client);
                origin.meta_leader = cluster::meta_leader(&nodes);
                metrics.update(&origin, &streams, &judged);
                ready.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                metrics.poll_failed();
                tracing::warn!(error = format!("{e:#}"), "poll failed");
            }
        }
    }
    let _ = client.drain().await;
    http_stop.cancel();
    let _ = http.await;
    Ok(())
}

/// Adds each reading to its consumer's window and evaluates the status.
fn judge(
    windows: &mut HashMap<(String, String), VecDeque<status::Sample>>,
    consumers: Vec<poll::ConsumerReading>,
    samples: usize,
) -> Vec<(poll::ConsumerReading, status::Status)> {
    windows.retain(|k, _| {
        consumers
            .iter()
            .any(|c| (&c.stream, &c.consumer) == (&k.0, &k.1))
    });
    consumers
        .into_iter()
        .map(|c| {
            let w = windows
                .entry((c.stream.clone(), c.consumer.clone()))
                .or_default();
            w.push_back(c.sample);
            while w.len() > samples {
                w.pop_front();
            }
            let s = status::evaluate(w.make_contiguous());
            (c, s)
        })
        .collect()
}
