//! `hail analytics`: per-city totals (being built, see the "Domain services" issue).

use anyhow::Result;
use async_nats::jetstream;

/// Flags of `hail analytics`.
#[derive(Debug, clap::Args)]
pub struct AnalyticsArgs {}

/// Not available yet.
pub async fn run(_js: &jetstream::Context, _args: AnalyticsArgs) -> Result<()> {
    anyhow::bail!("hail analytics is not available in this build yet")
}
