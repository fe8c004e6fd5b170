//! Demand from every request on RIDES, not only the ones this instance quotes.
//!
//! The durable `pricing` shares requests out among the instances of the
//! consumer group, so an instance that counted only its own would see 1/N of
//! the demand and understate the surge; after a restart it would see none. So
//! each instance records every request through the runtime's request feed
//! ([`hail_runtime::request_feed`]): read back from one demand window before
//! the oldest request the group still owes, then live; the handler waits until
//! the feed has passed a request before quoting it, so a quote counts its own
//! request and every one stored before it.
//!
//! A backlog older than the window is quoted with what the window still holds:
//! the feed is at the head of the stream, demand is counted by request time and
//! each cell keeps one window of buckets.

use std::sync::Arc;

use anyhow::Result;
use async_nats::jetstream;
use hail_events::RideRequested;
use hail_runtime::request_feed::{self, FeedPosition};
use time::OffsetDateTime;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{metrics::PricingMetrics, pricer::Pricer};

/// When the request happened: its own time, but never after the stream stored
/// it, so a wrong or hostile client clock cannot push the demand window ahead.
pub fn event_time_ms(req: &RideRequested, stored: OffsetDateTime) -> u64 {
    let stored = u64::try_from(stored.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    req.requested_at_ms.min(stored)
}

/// Rebuilds the demand window from RIDES, then keeps it live in a task tracked
/// by `tracker` until `shutdown`. Returns the feed's position and how many
/// requests the rebuild read.
pub async fn follow(
    js: &jetstream::Context,
    durable: &str,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    pricer: Arc<Pricer>,
    metrics: PricingMetrics,
) -> Result<(FeedPosition, u64)> {
    let window = pricer.settings().demand_window;
    let record = move |req: &RideRequested, stored: OffsetDateTime| {
        let r = pricer.record(req, event_time_ms(req, stored));
        if r.counted {
            metrics.demand_recorded.inc();
        } else {
            metrics
                .demand_dropped
                .with_label_values(&[req.city.as_str()])
                .inc();
        }
        metrics
            .demand_cells
            .set(i64::try_from(r.cells).unwrap_or(i64::MAX));
    };
    request_feed::follow(js, durable, window, tracker, shutdown, record).await
}
