//! analytics' own metrics: per-city totals (city is the only label besides the
//! event type; never a ride, rider or driver id).

use prometheus::{IntCounterVec, Opts, Registry};

/// Events counted per city and type.
pub const EVENTS: &str = "hail_analytics_events_total";

/// analytics' counters.
#[derive(Debug, Clone)]
pub struct AnalyticsMetrics {
    /// Events counted, by city and event type.
    pub events: IntCounterVec,
}

impl AnalyticsMetrics {
    /// Creates and registers the counters.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                EVENTS,
                "ride events counted by analytics, per city and type",
            ),
            &["city", "event"],
        )?;
        registry.register(Box::new(events.clone()))?;
        Ok(AnalyticsMetrics { events })
    }
}
