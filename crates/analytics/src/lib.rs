//! hail analytics: per-city totals of every ride event (requests, matches and
//! match rate, fares, surge, fraud verdicts, time to match, completions), exact
//! across crashes.
//!
//! Pure domain logic:
//! - [`event`]: a ride event decoded as its subject's kind.
//! - [`totals`]: one city's totals and how each event changes them; [`histogram`]
//!   their fixed-bucket histograms.
//! - [`coverage`]: the stream sequences already handled (a floor plus runs);
//!   [`uncounted`] those among them the totals do not hold.
//! - [`state`]: totals per city plus their coverage; [`checkpoint`] its stored form.
//! - [`report`]: what `hail analytics` prints.
//!
//! Wiring:
//! - [`live`]: the state shared by handlers and the checkpointer, versioned, with
//!   a watch of the last stored version.
//! - [`handler`]: apply unless covered, then wait for the checkpoint.
//! - [`checkpointer`]: stores the state in KV ([`store`], compare-and-set) and
//!   releases the handlers it covers; the runtime then acks them.
//! - [`metrics`]: every metric name, and checkpoint health; [`export`]: the
//!   stored totals as Prometheus families under those names (export uses
//!   metrics, never the reverse).
//! - [`config`]: its flags.
//!
//! Exactness: a message is acked only after a stored checkpoint covers its
//! sequence, and a covered sequence is never counted again; so after any crash
//! the stored state plus the redelivered messages count each message once.
//! On its last delivery a message is either acked (a stored checkpoint counts
//! it) or withdrawn from the totals before the runtime dead-letters it; a
//! replayed dead letter is counted under its original sequence, once.
//! Any number of instances share the durable as a pinned-client priority group:
//! the server delivers to one, the others stand by, following the stored
//! checkpoint, and the server pins another when the pinned one stops pulling.
//! Checkpoints are written with compare-and-set ([`store`]), so an instance
//! that still thinks it is active (it was paused) cannot overwrite another's:
//! it takes up the stored checkpoint and applies what it holds again.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod checkpointer;
pub mod config;
pub mod coverage;
pub mod event;
pub mod export;
pub mod handler;
pub mod histogram;
pub mod live;
pub mod metrics;
pub mod report;
pub mod state;
pub mod store;
pub mod totals;
pub mod uncounted;

use std::sync::Arc;

use anyhow::Context as _;
use hail_runtime::{Runtime, RuntimeArgs, service::Service};

/// Loads the checkpoint, then runs analytics until SIGTERM/SIGINT.
pub async fn run(runtime: RuntimeArgs, args: config::AnalyticsArgs) -> anyhow::Result<()> {
    args.validate(runtime.ack_wait())
        .map_err(anyhow::Error::msg)?;
    let rt = Runtime::start(Service::Analytics, runtime).await?;
    let writer = format!(
        "{}-{}",
        rt.args().instance_name(Service::Analytics.name()),
        hail_runtime::now_ms()
    );
    let (store, loaded) = store::CheckpointStore::open(rt.js(), rt.replicas(), writer.clone())
        .await
        .context("cannot load the analytics checkpoint")?;
    let state = loaded.map(|cp| cp.state).unwrap_or_default();
    tracing::info!(
        revision = store.revision(),
        covered_through = state.coverage.floor(),
        cities = state.cities.len(),
        "checkpoint loaded"
    );
    let live = Arc::new(live::Live::new(state, args.checkpoint_every));
    let metrics = metrics::AnalyticsMetrics::register(rt.registry())?;
    export::TotalsCollector::register(rt.registry(), live.subscribe())?;
    checkpointer::Checkpointer {
        live: live.clone(),
        store,
        metrics: metrics.clone(),
        js: rt.js().clone(),
        durable: Service::Analytics.durable().into(),
        writer,
        interval: args.checkpoint_interval,
        ack_floor_refresh: args.ack_floor_refresh,
        drain_timeout: rt.args().shutdown_timeout,
    }
    .spawn(rt.tracker(), rt.shutdown_token());
    let handler = handler::Analytics::new(
        live.clone(),
        metrics,
        args.checkpoint_timeout,
        rt.args().max_deliver,
    );
    rt.serve(handler).await
}
