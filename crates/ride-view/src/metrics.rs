//! ride-view's own metrics (the runtime adds `hail_messages_processed_total`
//! and the rest). No label names a ride: only the outcome of an update.

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Names of ride-view's metrics.
pub mod names {
    /// Record updates, by `result`: `changed`, or `already_seen` (a step the
    /// record held: a redelivery, or another instance's work).
    pub const UPDATES: &str = "hail_ride_view_updates_total";
    /// Records stored in the bucket: a write may carry several events of a
    /// ride ([`crate::group_commit`]), so events over writes is how much was
    /// saved.
    pub const WRITES: &str = "hail_ride_view_writes_total";
    /// Compare-and-set conflicts met (another writer stored the record first).
    pub const CONFLICTS: &str = "hail_ride_view_conflicts_total";
    /// Messages the durable still owes (pending plus unacknowledged), read
    /// from the consumer's info every second.
    pub const REMAINING: &str = "hail_catchup_remaining_messages";
    /// How fast the backlog shrinks, over the last 10 s.
    pub const DRAIN_RATE: &str = "hail_catchup_drain_rate_messages_per_second";
    /// Remaining over drain rate: 0 once caught up, +Inf while the backlog
    /// does not shrink.
    pub const ETA: &str = "hail_catchup_eta_seconds";
    /// 1 once the backlog was empty at least once since start: following live.
    pub const CAUGHT_UP: &str = "hail_catchup_caught_up";
}

/// ride-view's metrics, registered once into the runtime's registry.
#[derive(Debug, Clone)]
pub struct RideViewMetrics {
    pub updates: IntCounterVec,
    pub conflicts: IntCounter,
    pub writes: IntCounter,
    pub remaining: IntGauge,
    pub drain_rate: Gauge,
    pub eta: Gauge,
    pub caught_up: IntGauge,
}

impl RideViewMetrics {
    /// Creates the metrics (labelled `service="ride-view"`, like the
    /// runtime's) and registers them.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let opts =
            |name: &str, help: &str| Opts::new(name, help).const_label("service", "ride-view");
        let m = RideViewMetrics {
            updates: IntCounterVec::new(
                opts(names::UPDATES, "ride record updates by result"),
                &["result"],
            )?,
            conflicts: IntCounter::with_opts(opts(
                names::CONFLICTS,
                "compare-and-set conflicts on ride records",
            ))?,
            writes: IntCounter::with_opts(opts(
                names::WRITES,
                "ride records stored (one write may carry several events)",
            ))?,
            remaining: IntGauge::with_opts(opts(
                names::REMAINING,
                "messages the ride-view durable still owes",
            ))?,
            drain_rate: Gauge::with_opts(opts(
                names::DRAIN_RATE,
                "how fast the backlog shrinks, messages per second",
            ))?,
            eta: Gauge::with_opts(opts(
                names::ETA,
                "seconds until caught up at the current drain rate",
            ))?,
            caught_up: IntGauge::with_opts(opts(
                names::CAUGHT_UP,
                "1 once the backlog was empty since start",
            ))?,
        };
        registry.register(Box::new(m.updates.clone()))?;
        registry.register(Box::new(m.conflicts.clone()))?;
        registry.register(Box::new(m.writes.clone()))?;
        registry.register(Box::new(m.remaining.clone()))?;
        registry.register(Box::new(m.drain_rate.clone()))?;
        registry.register(Box::new(m.eta.clone()))?;
        registry.register(Box::new(m.caught_up.clone()))?;
        Ok(m)
    }
}
