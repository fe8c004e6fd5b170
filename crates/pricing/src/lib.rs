//! hail pricing: quotes a fare for every ride request, with a surge multiplier
//! where recent requests outnumber available drivers.
//!
//! The pure domain, each unit-tested without NATS:
//! - [`cells`]: the H3 grid; a pickup's cell and its first ring;
//! - [`demand`]: requests per cell over a sliding window of request time;
//! - [`supply`]: available drivers per cell, from every driver's last update;
//! - [`surge`]: demand over supply → a multiplier in steps of 0.1, capped;
//! - [`tariff`]: the fare formula of one city;
//! - [`tariffs`]: the tariff per city, from a file or built in;
//! - [`pricer`]: the step that ties them together for one request.
//!
//! The service around it:
//! - [`config`]: flags, validated into [`config::Settings`] before anything connects;
//! - [`demand_feed`]: every request on RIDES into the demand window, so all
//!   instances see the same demand, rebuilt at start;
//! - [`handler`]: `RideRequested` → `FareQuoted` on the runtime;
//! - [`metrics`]: surge and fares per city, drivers, demand cells.
//!
//! [`run`] loads the drivers from DRIVERS and the demand window from RIDES (then
//! follows both live), and only then starts consuming requests through the
//! durable `pricing`.
#![forbid(unsafe_code)]

pub mod cells;
pub mod config;
pub mod demand;
pub mod demand_feed;
pub mod handler;
pub mod metrics;
pub mod pricer;
pub mod supply;
pub mod surge;
pub mod tariff;
pub mod tariffs;

use std::sync::Arc;

use hail_runtime::{Runtime, RuntimeArgs, drivers, service::Service};

use crate::{metrics::PricingMetrics, pricer::Pricer};

/// Runs pricing until SIGTERM/SIGINT.
pub async fn run(runtime: RuntimeArgs, args: config::PricingArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let rt = Runtime::start(Service::Pricing, runtime).await?;
    let metrics = PricingMetrics::register(rt.registry())?;
    let pricer = Arc::new(Pricer::new(settings));
    let feed = {
        let (pricer, metrics) = (pricer.clone(), metrics.clone());
        move |update| {
            let totals = pricer.apply_driver(&update);
            metrics.drivers_known.set(gauge(totals.known));
            metrics.drivers_available.set(gauge(totals.available));
        }
    };
    let loaded = drivers::follow(rt.js(), rt.tracker(), rt.shutdown_token(), feed).await?;
    let (position, requests) = demand_feed::follow(
        rt.js(),
        Service::Pricing.durable(),
        rt.tracker(),
        rt.shutdown_token(),
        pricer.clone(),
        metrics.clone(),
    )
    .await?;
    let s = pricer.settings();
    tracing::info!(
        drivers = loaded,
        demand_requests = requests,
        h3_resolution = s.grid.resolution(),
        demand_window = ?s.demand_window,
        tariffs = s.tariffs.cities().count(),
        "drivers and demand loaded; pricing"
    );
    rt.serve(handler::PricingHandler::new(pricer, metrics, position))
        .await
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
