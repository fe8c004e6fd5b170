//! `hail request`: publish one ride request, validated before it leaves.

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_events::{
    CardFingerprint, City, DeviceId, Event, LatLng, RideId, RideRequested, RiderId, codec, headers,
};

/// Flags of `hail request`.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// Ride id (publishing the same id twice within two minutes stores it once).
    #[arg(long)]
    ride: String,
    /// Rider id.
    #[arg(long, default_value = "rider-cli")]
    rider: String,
    /// City code.
    #[arg(long, default_value = "berlin")]
    city: String,
    /// Pickup as `lat,lon`.
    #[arg(long, default_value = "52.5200,13.4050")]
    pickup: String,
    /// Drop-off as `lat,lon`.
    #[arg(long, default_value = "52.5000,13.4500")]
    dropoff: String,
}

fn position(flag: &str, s: &str) -> Result<LatLng> {
    let (lat, lon) = s
        .split_once(',')
        .with_context(|| format!("--{flag} {s:?} is not lat,lon"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<f64>()
            .with_context(|| format!("--{flag}: {v:?} is not a number"))
    };
    LatLng::new(parse(lat)?, parse(lon)?).with_context(|| format!("--{flag} {s}"))
}

/// Builds, validates and publishes the request; prints the stream sequence.
pub async fn run(js: &jetstream::Context, a: RequestArgs) -> Result<()> {
    let ride = RideRequested {
        ride_id: RideId::new(&a.ride).context("--ride")?,
        rider_id: RiderId::new(&a.rider).context("--rider")?,
        city: City::new(&a.city).context("--city")?,
        pickup: position("pickup", &a.pickup)?,
        dropoff: position("dropoff", &a.dropoff)?,
        requested_at_ms: hail_runtime::now_ms(),
        device_id: DeviceId::new(format!("cli-{}", a.rider)).context("--rider")?,
        card: CardFingerprint::new(format!("card-{}", a.rider)).context("--rider")?,
    };
    let ack = js
        .publish_with_headers(
            ride.subject(),
            headers::for_event(&ride),
            codec::encode(&ride)?,
        )
        .await?
        .await
        .context("the request was not acknowledged by JetStream")?;
    let note = if ack.duplicate {
        " (duplicate: already stored)"
    } else {
        ""
    };
    println!(
        "published {} on {} at sequence {}{note}",
        ride.ride_id,
        ride.subject(),
        ack.sequence
    );
    Ok(())
}
