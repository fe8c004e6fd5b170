//! The `publish` subcommand: N valid ride requests into a running hail.

use std::time::Duration;

use anyhow::{Context as _, Result};
use hail_runtime::provision;

use crate::{
    city::CityModel,
    publisher::{self, PublishReport, PublishSettings},
    rides::RideFactory,
    streams,
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
    /// Credentials and TLS.
    pub auth: hail_runtime::auth::AuthArgs,
}

/// Connects, makes sure RIDES exists, publishes with a progress line per second
/// and prints the summary. Failed publishes are in the report, not an error.
pub async fn run(cmd: &PublishCommand) -> Result<PublishReport> {
    let factory = RideFactory::new(&cmd.run_id, &cmd.cities)?;
    let client = hail_runtime::connect::connect_as(
        &cmd.nats_url,
        "hail-loadgen",
        cmd.connect_timeout,
        &cmd.auth,
    )
    .await?;
    let js = publisher::context(client.clone(), cmd.window);
    let rides = provision::rides_stream(&provision::StreamSettings {
        replicas: hail_runtime::replicas::Replicas::Auto.for_client(&client),
        ..Default::default()
    });
    streams::ensure_exists(&js, rides, &cmd.nats_url).await?;
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
        pace: None,
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
