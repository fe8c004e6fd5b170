//! hail analytics: per-city totals of every ride event.
//!
//! - [`handler`]: validates and counts every event on `rides.>`.
//! - [`metrics`]: the per-city counters.
#![forbid(unsafe_code)]

pub mod handler;
pub mod metrics;

use hail_events::subjects;
use hail_runtime::{Runtime, RuntimeArgs};

/// Default port of /metrics.
pub const METRICS_PORT: u16 = 9104;

/// Runs analytics until SIGTERM/SIGINT.
pub async fn run(runtime: RuntimeArgs) -> anyhow::Result<()> {
    let rt = Runtime::start("analytics", METRICS_PORT, runtime).await?;
    let metrics = metrics::AnalyticsMetrics::register(rt.registry())?;
    rt.serve(&[subjects::RIDES_ALL], handler::Analytics::new(metrics))
        .await
}
