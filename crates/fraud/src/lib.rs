//! hail fraud: screens every ride request against the rider's history and the
//! card blocklist, and publishes `RideScreened` with a score, a verdict and the
//! rules that fired.
//!
//! Pure domain logic, unit-tested without NATS:
//! - [`history`]: requests per rider, device and card in event time, keyed by
//!   ride (a redelivery counts once), evicted beyond the longest window.
//! - [`rules`]: velocity, impossible travel, shared device, shared card,
//!   blocklisted card; each judges a request against the history before it.
//! - [`scoring`]: weights to a score `1 - Π(1 - w)`, thresholds to a verdict.
//! - [`screener`]: rules + scoring + history, the step the handler runs.
//!
//! Wiring:
//! - [`config`]: flags, validated at start.
//! - [`blocklist`]: the KV bucket of blocked cards and its live in-memory copy.
//! - [`replay`]: the history rebuilt from RIDES at start, so it survives restarts.
//! - [`handler`]: `RideRequested` → `RideScreened`.
//! - [`metrics`]: verdicts, rule hits, history and blocklist sizes.
//!
//! Limits worth knowing: a request is judged against the requests recorded
//! before it in event time; two requests of one rider handled at the same moment
//! (the runtime handles up to `--concurrency` at once) may not see each other.
//! With several instances on the durable, each one's live history holds the
//! requests it screened (plus everything replayed at its start); an exact
//! per-rider history across instances needs rider-partitioned subjects, the
//! scale-out path of DESIGN.md.
#![forbid(unsafe_code)]

pub mod blocklist;
pub mod config;
pub mod handler;
pub mod history;
pub mod metrics;
pub mod replay;
pub mod rules;
pub mod scoring;
pub mod screener;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use hail_events::subjects;
use hail_runtime::{Runtime, RuntimeArgs};
use tokio_util::sync::CancellationToken;

pub use config::FraudArgs;

/// Default port of /metrics.
pub const METRICS_PORT: u16 = 9103;

/// The durable consumer (and consumer group) of fraud on RIDES.
pub const DURABLE: &str = "fraud";

/// How often the history gauges are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(10);

/// Runs fraud until SIGTERM/SIGINT: loads the blocklist, replays the history,
/// then consumes.
pub async fn run(runtime: RuntimeArgs, fraud: FraudArgs) -> anyhow::Result<()> {
    let settings = fraud.settings().map_err(anyhow::Error::msg)?;
    let rt = Runtime::start(DURABLE, METRICS_PORT, runtime).await?;
    let metrics = metrics::Metrics::register(rt.registry()).context("cannot register metrics")?;
    let store = blocklist::ensure_bucket(rt.js(), rt.args().replicas).await?;
    let blocked = blocklist::Blocklist::default();
    blocklist::follow(
        &store,
        blocked.clone(),
        metrics.blocklist_cards.clone(),
        rt.tracker(),
        rt.shutdown_token(),
    )
    .await?;
    let screener = Arc::new(Mutex::new(screener::Screener::new(
        settings.rules,
        settings.scoring,
        settings.max_skew_ms,
    )));
    let lookback = Duration::from_millis(settings.rules.horizon_ms() + settings.max_skew_ms);
    let shutdown = rt.shutdown_token();
    let replayed = tokio::select! {
        r = replay::rebuild(rt.js(), DURABLE, &screener, lookback) => r?,
        _ = shutdown.cancelled() => anyhow::bail!("interrupted while replaying the history"),
    };
    metrics.replayed.inc_by(replayed);
    spawn_gauges(&rt, screener.clone(), metrics.clone());
    let handler = handler::Fraud::new(screener, blocked, metrics);
    rt.serve(&[subjects::RIDES_REQUESTED_ALL], handler).await
}

/// Refreshes the history gauges until shutdown.
fn spawn_gauges(rt: &Runtime, screener: Arc<Mutex<screener::Screener>>, m: metrics::Metrics) {
    let shutdown: CancellationToken = rt.shutdown_token();
    rt.tracker().spawn(async move {
        let mut tick = tokio::time::interval(GAUGE_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    let sizes = screener.lock().unwrap_or_else(|e| e.into_inner()).sizes();
                    m.history(sizes);
                }
            }
        }
    });
}
