//! analytics' metric names, and the metrics it sets as it goes: how
//! checkpointing goes. The totals of the last stored checkpoint are built at
//! scrape time by [`crate::export`], under the names defined here. Labels:
//! city and small fixed sets (event type, verdict, reason, currency); never a
//! ride, rider or driver id.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Opts, Registry};

/// Metric names, as constants so tests and dashboards can refer to them.
pub mod names {
    pub const EVENTS: &str = "hail_analytics_events_total";
    pub const UNMATCHED: &str = "hail_analytics_unmatched_total";
    pub const VERDICTS: &str = "hail_analytics_verdicts_total";
    pub const MATCH_RATIO: &str = "hail_analytics_match_ratio";
    pub const FARE: &str = "hail_analytics_fare_minor_units";
    pub const SURGE: &str = "hail_analytics_surge_multiplier";
    pub const TIME_TO_MATCH: &str = "hail_analytics_time_to_match_seconds";
    pub const CHECKPOINTS: &str = "hail_analytics_checkpoints_total";
    pub const CHECKPOINT_ERRORS: &str = "hail_analytics_checkpoint_errors_total";
    pub const CHECKPOINT_SECONDS: &str = "hail_analytics_checkpoint_duration_seconds";
    pub const CHECKPOINT_BYTES: &str = "hail_analytics_checkpoint_size_bytes";
    pub const SKIPPED: &str = "hail_analytics_redeliveries_skipped_total";
    pub const WITHDRAWN: &str = "hail_analytics_withdrawn_total";
    pub const COVERAGE_FLOOR: &str = "hail_analytics_coverage_floor_sequence";
    pub const COVERAGE_RUNS: &str = "hail_analytics_coverage_runs";
    pub const UNCOUNTED_RUNS: &str = "hail_analytics_uncounted_runs";
    pub const REBASES: &str = "hail_analytics_rebases_total";
}

/// Checkpointing and de-duplication counters.
#[derive(Debug, Clone)]
pub struct AnalyticsMetrics {
    /// Checkpoints stored.
    pub checkpoints: IntCounter,
    /// Checkpoint writes that failed.
    pub checkpoint_errors: IntCounter,
    /// Time to encode and store one checkpoint.
    pub checkpoint_seconds: Histogram,
    /// Size of the last stored checkpoint.
    pub checkpoint_bytes: IntGauge,
    /// Deliveries already covered by the state, acked without counting.
    pub skipped: IntCounter,
    /// Messages taken back out of the totals on their last delivery, before
    /// the runtime dead-lettered them (their checkpoint could not be stored).
    pub withdrawn: IntCounter,
    /// Highest stream sequence below which the stored state misses nothing.
    pub coverage_floor: IntGauge,
    /// Runs of sequences covered above the floor (the disorder in flight).
    pub coverage_runs: IntGauge,
    /// Runs of covered sequences the totals do not hold (dead letters, gaps).
    pub uncounted_runs: IntGauge,
    /// Times this instance replaced its state with a checkpoint another
    /// instance stored (a standby following, or a write that lost the race).
    pub rebases: IntCounter,
}

impl AnalyticsMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |n: &str, h: &str| IntCounter::with_opts(Opts::new(n, h));
        let gauge = |n: &str, h: &str| IntGauge::with_opts(Opts::new(n, h));
        let buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        let m = AnalyticsMetrics {
            checkpoints: counter(names::CHECKPOINTS, "checkpoints stored in KV")?,
            checkpoint_errors: counter(names::CHECKPOINT_ERRORS, "checkpoint writes that failed")?,
            checkpoint_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    names::CHECKPOINT_SECONDS,
                    "time to encode and store a checkpoint",
                )
                .buckets(buckets),
            )?,
            checkpoint_bytes: gauge(names::CHECKPOINT_BYTES, "size of the last checkpoint")?,
            skipped: counter(
                names::SKIPPED,
                "deliveries the state already covered, acked without counting",
            )?,
            withdrawn: counter(
                names::WITHDRAWN,
                "messages taken out of the totals on their last delivery, then dead-lettered",
            )?,
            coverage_floor: gauge(
                names::COVERAGE_FLOOR,
                "RIDES sequence below which the stored state misses nothing",
            )?,
            coverage_runs: gauge(
                names::COVERAGE_RUNS,
                "runs of sequences covered above the floor",
            )?,
            uncounted_runs: gauge(
                names::UNCOUNTED_RUNS,
                "runs of covered sequences not in the totals (dead-lettered, settled, passed by the ack floor)",
            )?,
            rebases: counter(
                names::REBASES,
                "times this instance took up a checkpoint another analytics instance stored",
            )?,
        };
        registry.register(Box::new(m.checkpoints.clone()))?;
        registry.register(Box::new(m.checkpoint_errors.clone()))?;
        registry.register(Box::new(m.checkpoint_seconds.clone()))?;
        registry.register(Box::new(m.checkpoint_bytes.clone()))?;
        registry.register(Box::new(m.skipped.clone()))?;
        registry.register(Box::new(m.withdrawn.clone()))?;
        registry.register(Box::new(m.coverage_floor.clone()))?;
        registry.register(Box::new(m.coverage_runs.clone()))?;
        registry.register(Box::new(m.uncounted_runs.clone()))?;
        registry.register(Box::new(m.rebases.clone()))?;
        Ok(m)
    }
}
