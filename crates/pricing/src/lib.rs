//! hail pricing: quotes a fare for every ride request.
//!
//! - [`tariff`], the fare formula (pure);
//! - [`handler`], `RideRequested` → `FareQuoted`;
//! - [`config`], its flags.
#![forbid(unsafe_code)]

pub mod config;
pub mod handler;
pub mod tariff;

use hail_events::subjects;
use hail_runtime::{Runtime, RuntimeArgs};

/// Default port of /metrics.
pub const METRICS_PORT: u16 = 9102;

/// Runs pricing until SIGTERM/SIGINT.
pub async fn run(runtime: RuntimeArgs, args: config::PricingArgs) -> anyhow::Result<()> {
    let tariff = args.tariff().map_err(anyhow::Error::msg)?;
    let rt = Runtime::start("pricing", METRICS_PORT, runtime).await?;
    rt.serve(
        &[subjects::RIDES_REQUESTED_ALL],
        handler::Pricing::new(tariff),
    )
    .await
}
