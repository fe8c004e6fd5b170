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
//! - the history is fed by every request on RIDES through the runtime's
//!   [`hail_runtime::request_feed`]: read back at start (one horizon before the
//!   oldest request the group still owes), so it survives restarts, then live,
//!   so every instance of the group holds every rider's requests, not only the
//!   ones it screened. The handler waits until the feed has passed a request,
//!   so the request is judged against every one stored before it, whichever
//!   instance handled those, and two requests of one rider handled at the same
//!   moment see each other.
//! - [`handler`]: `RideRequested` → `RideScreened`.
//! - [`metrics`]: verdicts, rule hits, history and blocklist sizes.
//!
//! Limits worth knowing: a request is judged against the requests before it in
//! event time. A backlog older than the longest window (fraud down that long)
//! is judged against what the history still holds, since the feed reads to the
//! head of RIDES at start and the history keeps one horizon behind its newest
//! request. Every instance holds the whole history; beyond one machine's memory
//! the scale-out path of DESIGN.md is rider-partitioned subjects.
#![forbid(unsafe_code)]

pub mod blocklist;
pub mod config;
pub mod handler;
pub mod history;
pub mod metrics;
pub mod rules;
pub mod scoring;
pub mod screener;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use hail_events::RideRequested;
use hail_runtime::{Runtime, RuntimeArgs, request_feed, service::Service};
use tokio_util::sync::CancellationToken;

pub use config::FraudArgs;

/// How often the history gauges are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(10);

/// Runs fraud until SIGTERM/SIGINT: loads the blocklist, replays the history,
/// then consumes.
pub async fn run(runtime: RuntimeArgs, fraud: FraudArgs) -> anyhow::Result<()> {
    let settings = fraud.settings().map_err(anyhow::Error::msg)?;
    let rt = Runtime::start(Service::Fraud, runtime).await?;
    let metrics = metrics::Metrics::register(rt.registry()).context("cannot register metrics")?;
    let store = blocklist::ensure_bucket(rt.js(), rt.replicas()).await?;
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
    let record = {
        let screener = screener.clone();
        move |req: &RideRequested, stored: time::OffsetDateTime| {
            let sighting = history::Sighting::of(req, handler::unix_ms(stored));
            screener
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(&sighting);
        }
    };
    let feed = request_feed::follow(
        rt.js(),
        Service::Fraud.durable(),
        lookback,
        rt.tracker(),
        shutdown.clone(),
        record,
    );
    let (position, replayed) = tokio::select! {
        r = feed => r.context("cannot read the history back from RIDES")?,
        _ = shutdown.cancelled() => anyhow::bail!("interrupted while replaying the history"),
    };
    tracing::info!(replayed, "history read back from RIDES; screening");
    metrics.replayed.inc_by(replayed);
    spawn_gauges(&rt, screener.clone(), metrics.clone());
    let handler = handler::Fraud::new(screener, blocked, metrics, position);
    rt.serve(handler).await
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
