//! `hail analytics [--json]`: the per-city totals analytics stored in its last
//! checkpoint (KV `hail_analytics`/`checkpoint`). Read from KV, not from the
//! service, so it works while analytics is down.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_analytics::{checkpoint, report::Report, store};

/// Flags of `hail analytics`.
#[derive(Debug, clap::Args)]
pub struct AnalyticsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints the totals of the last stored checkpoint.
pub async fn run(js: &jetstream::Context, args: AnalyticsArgs) -> Result<()> {
    let (cp, revision) = store::read(js, Duration::from_secs(5))
        .await
        .with_context(|| {
            format!(
                "cannot read {}/{} (hail-analytics creates it at start)",
                checkpoint::BUCKET,
                checkpoint::KEY
            )
        })?
        .context("analytics has not stored a checkpoint yet")?;
    let report = Report::new(&cp, revision);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table(hail_runtime::now_ms()));
    }
    Ok(())
}
