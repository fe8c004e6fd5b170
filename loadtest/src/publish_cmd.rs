//! The `publish` subcommand: N valid ride requests into a running hail.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, ErrorCode, context::GetStreamErrorKind};
use hail_events::subjects;
use hail_runtime::provision;

use crate::{
    city::CityModel,
    publisher::{self, PublishReport, PublishSettings},
    rides::RideFactory,
};

/// What to publish where.
#[derive(Debug, Clone)]
pub struct PublishCommand {
    pub nats_url: String,
    pub rides: u64,
    pub cities: Vec<CityModel>,
    pub window: usize,
    pub run_id: String,
    /// Give up reaching NATS after this long.
    pub connect_timeout: Duration,
}

/// Connects, makes sure RIDES exists, publishes with a progress line per second
/// and prints the summary. Failed publishes are in the report, not an error.
pub async fn run(cmd: &PublishCommand) -> Result<PublishReport> {
    let factory = RideFactory::new(&cmd.run_id, &cmd.cities)?;
    let client =
        hail_runtime::connect::connect(&cmd.nats_url, "hail-loadgen", cmd.connect_timeout).await?;
    let js = publisher::context(client.clone(), cmd.window);
    ensure_rides_stream(&js, &cmd.nats_url).await?;
    eprintln!(
        "publishing {} rides (run id {}) to {} in {}",
        cmd.rides,
        factory.run_id(),
        cmd.nats_url,
        cmd.cities
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(",")
    );
    let settings = PublishSettings {
        rides: cmd.rides,
        window: cmd.window,
        progress: true,
    };
    let report = publisher::publish(&js, &factory, &settings).await?;
    client
        .drain()
        .await
        .context("draining the NATS connection")?;
    eprintln!("{}", report.summary());
    for (kind, (count, first)) in &report.errors {
        eprintln!("  {count} failed with {kind}, e.g.: {first}");
    }
    Ok(report)
}

/// Services provision the streams at start; when none has run yet, RIDES is
/// created with their defaults so no ride is refused. An existing stream is left
/// exactly as it is.
async fn ensure_rides_stream(js: &jetstream::Context, url: &str) -> Result<()> {
    let missing = match js.get_stream(subjects::RIDES_STREAM).await {
        Ok(_) => return Ok(()),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(err)
                if err.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                e
            }
            _ => return Err(e).with_context(|| format!("checking stream RIDES at {url}")),
        },
    };
    eprintln!(
        "stream RIDES not found at {url} ({missing}); creating it with the services' defaults"
    );
    let config = provision::rides_stream(&crate::default_stream_settings());
    js.create_stream(config)
        .await
        .with_context(|| format!("creating stream RIDES at {url}"))?;
    Ok(())
}
