//! `hail fraud …`: the card blocklist (being built, see the "Domain services" issue).

use anyhow::Result;
use async_nats::jetstream;

/// Flags of `hail fraud`.
#[derive(Debug, clap::Args)]
pub struct FraudArgs {}

/// Not available yet.
pub async fn run(_js: &jetstream::Context, _args: FraudArgs) -> Result<()> {
    anyhow::bail!("hail fraud is not available in this build yet")
}
