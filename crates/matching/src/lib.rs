//! hail matching: the nearest available driver for every ride request, claimed so
//! that no driver ever serves two rides, whichever instance decides.
//!
//! Pure domain logic, tested without NATS:
//! - [`sphere`]: positions as unit-sphere points, where the R-tree's nearest
//!   neighbour is the nearest by great-circle distance.
//! - [`nearest`]: the nearest driver by haversine distance within a radius.
//! - [`index`]: every known driver, its claim state, and R-trees of free and busy ones.
//! - [`service_area`]: each city's service area, a polygon from the cities file.
//! - [`eta`]: pickup ETA at an urban speed.
//! - [`record`]: what the claims bucket remembers about a ride.
//!
//! Around it, thin layers over NATS:
//! - [`claims`]: the `hail_claims` KV bucket, the arbiter of who holds a driver
//!   (for at most `--claim-ttl`: no claim outlives it).
//! - [`claims_feed`]: every instance's claims and releases, applied to the index.
//! - [`stored_answer`]: whether RIDES holds a ride's match (for a lapsed claim).
//! - [`matcher`]: the claim protocol (pick, claim, remember; release on completion
//!   or cancellation).
//! - [`handler`]: deliveries in (requests, completions, cancellations),
//!   `RideMatched` / `RideUnmatched` out.
//! - [`config`] and [`metrics`]: flags and Prometheus metrics.
//!
//! [`run`] loads the index from DRIVERS and the claims bucket, keeps it live from
//! both, and serves the durable consumer `matching` until SIGTERM.
#![forbid(unsafe_code)]

pub mod claims;
pub mod claims_feed;
pub mod config;
pub mod eta;
pub mod handler;
pub mod index;
pub mod matcher;
pub mod metrics;
pub mod nearest;
pub mod record;
pub mod service_area;
pub mod sphere;
pub mod stored_answer;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context as _;
use hail_runtime::{Runtime, RuntimeArgs, service::Service};

use crate::{claims::Claims, config::MatchingArgs, index::DriverIndex, matcher::Matcher};

/// Runs matching until SIGTERM/SIGINT.
pub async fn run(args: MatchingArgs, runtime: RuntimeArgs) -> anyhow::Result<()> {
    let settings = args.validate(&runtime).map_err(anyhow::Error::msg)?;
    let rt = Runtime::start(Service::Matching, runtime).await?;
    let index = Arc::new(Mutex::new(DriverIndex::new()));
    let metrics = metrics::Metrics::register(rt.registry(), index.clone())
        .context("cannot register matching's metrics")?;
    let claims = Claims::open(rt.js(), rt.replicas(), settings.lifetimes).await?;
    let feed = index.clone();
    let drivers =
        hail_runtime::drivers::follow(rt.js(), rt.tracker(), rt.shutdown_token(), move |u| {
            lock(&feed).apply_location(&u)
        })
        .await?;
    let held = claims_feed::follow(
        rt.js(),
        &claims,
        index.clone(),
        rt.tracker(),
        rt.shutdown_token(),
    )
    .await?;
    let available = lock(&index).free_count();
    let areas = settings.areas.cities().count();
    tracing::info!(drivers, held, available, areas, "driver index loaded");
    let matcher = Matcher::new(index, claims, settings.policy, settings.areas);
    rt.serve(handler::Matching::new(matcher, metrics)).await
}

/// Locks the index. A panic while it was held cannot leave it half-updated in a
/// way that matters for safety (the claims bucket is the arbiter), so a poisoned
/// lock is taken over rather than turned into a panic in every later request.
pub(crate) fn lock(index: &Mutex<DriverIndex>) -> MutexGuard<'_, DriverIndex> {
    index.lock().unwrap_or_else(PoisonError::into_inner)
}
