//! hail ride-view: every ride's status, a read model built in the KV bucket
//! `ride_view` from every event on RIDES (the record is
//! [`hail_events::ride_view::RideView`]; the gateway serves it and `hail
//! trace` follows its steps).
//!
//! It is the fifth service, added to a running platform without changing any
//! producer or other service: its own durable `ride-view` reads `rides.>`
//! from the start of RIDES (deliver all), so a new instance replays history,
//! then follows live.
//!
//! - [`transition`]: pure — how one event changes a record, idempotent and
//!   independent of arrival order;
//! - [`store`]: the bucket, and read → apply → compare-and-set, retried on
//!   conflict, so instances sharing the durable never lose each other's steps;
//! - [`group_commit`]: a ride's events in flight together stored by one write;
//! - [`handler`]: a message of RIDES → its ride's record, on the runtime;
//! - [`catchup`]: the backlog, drain rate and ETA while it replays;
//! - [`metrics`]: its own series beside the runtime's;
//! - [`config`]: its own flags (`--linger`).
#![forbid(unsafe_code)]

pub mod catchup;
pub mod config;
pub mod group_commit;
pub mod handler;
pub mod metrics;
pub mod store;
pub mod transition;

use hail_runtime::{Runtime, RuntimeArgs, service::Service};

/// Runs ride-view until SIGTERM/SIGINT.
pub async fn run(args: config::RideViewArgs, runtime: RuntimeArgs) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let rt = Runtime::start(Service::RideView, runtime).await?;
    let metrics = metrics::RideViewMetrics::register(rt.registry())?;
    let kv = store::bind(rt.js(), rt.replicas()).await?;
    catchup::follow(
        rt.js().clone(),
        Service::RideView.durable(),
        metrics.clone(),
        rt.tracker(),
        rt.shutdown_token(),
    );
    let records = group_commit::GroupCommit::new(store::Records::new(kv)).with_linger(args.linger);
    rt.serve(handler::RideViewHandler::new(records, metrics))
        .await
}
