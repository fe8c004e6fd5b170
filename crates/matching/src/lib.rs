//! hail matching: answers every ride request with a match or a reason for none.
//!
//! - [`handler`]: `RideRequested` → `RideMatched` / `RideUnmatched`; `RideCompleted`
//!   releases the driver.
#![forbid(unsafe_code)]

pub mod handler;

use hail_events::subjects;
use hail_runtime::{Runtime, RuntimeArgs};

/// Default port of /metrics.
pub const METRICS_PORT: u16 = 9101;

/// Runs matching until SIGTERM/SIGINT.
pub async fn run(runtime: RuntimeArgs) -> anyhow::Result<()> {
    let rt = Runtime::start("matching", METRICS_PORT, runtime).await?;
    let filters = [subjects::RIDES_REQUESTED_ALL, subjects::RIDES_COMPLETED_ALL];
    rt.serve(&filters, handler::Matching).await
}
