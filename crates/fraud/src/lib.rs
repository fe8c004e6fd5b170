//! hail fraud: screens every ride request.
//!
//! - [`handler`]: `RideRequested` → `RideScreened`.
#![forbid(unsafe_code)]

pub mod handler;

use hail_events::subjects;
use hail_runtime::{Runtime, RuntimeArgs};

/// Default port of /metrics.
pub const METRICS_PORT: u16 = 9103;

/// Runs fraud until SIGTERM/SIGINT.
pub async fn run(runtime: RuntimeArgs) -> anyhow::Result<()> {
    let rt = Runtime::start("fraud", METRICS_PORT, runtime).await?;
    rt.serve(&[subjects::RIDES_REQUESTED_ALL], handler::Fraud)
        .await
}
