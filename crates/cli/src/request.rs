//! `hail request`: publish one ride request, or with `--cancel` the rider's
//! cancellation of one, validated before it leaves.

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_events::{
    CardFingerprint, City, DeviceId, Event, LatLng, RideCancelled, RideId, RideRequested, RiderId,
    codec, headers,
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
    /// Publish the rider's cancellation of the ride (RideCancelled) instead of a
    /// request: matching releases its driver, or answers it unmatched (cancelled).
    #[arg(long, conflicts_with_all = ["pickup", "dropoff"])]
    cancel: bool,
    /// Why the rider cancelled (with --cancel).
    #[arg(long, requires = "cancel")]
    reason: Option<String>,
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

fn ride_requested(a: &RequestArgs, now_ms: u64) -> Result<RideRequested> {
    Ok(RideRequested {
        ride_id: RideId::new(&a.ride).context("--ride")?,
        rider_id: RiderId::new(&a.rider).context("--rider")?,
        city: City::new(&a.city).context("--city")?,
        pickup: position("pickup", &a.pickup)?,
        dropoff: position("dropoff", &a.dropoff)?,
        requested_at_ms: now_ms,
        device_id: DeviceId::new(format!("cli-{}", a.rider)).context("--rider")?,
        card: CardFingerprint::new(format!("card-{}", a.rider)).context("--rider")?,
    })
}

fn ride_cancelled(a: &RequestArgs, now_ms: u64) -> Result<RideCancelled> {
    let cancel = RideCancelled {
        ride_id: RideId::new(&a.ride).context("--ride")?,
        city: City::new(&a.city).context("--city")?,
        rider_id: Some(RiderId::new(&a.rider).context("--rider")?),
        at_ms: now_ms,
        reason: a.reason.clone(),
    };
    cancel.validate().context("--reason")?;
    Ok(cancel)
}

/// Builds, validates and publishes the request or cancellation; prints the
/// stream sequence.
pub async fn run(js: &jetstream::Context, a: RequestArgs) -> Result<()> {
    let now_ms = hail_runtime::now_ms();
    if a.cancel {
        publish(js, &ride_cancelled(&a, now_ms)?, "cancellation").await
    } else {
        publish(js, &ride_requested(&a, now_ms)?, "request").await
    }
}

async fn publish<E: Event>(js: &jetstream::Context, event: &E, what: &str) -> Result<()> {
    let ack = js
        .publish_with_headers(
            event.subject(),
            headers::for_event(event),
            codec::encode(event)?,
        )
        .await
        .with_context(|| format!("cannot publish the {what}"))?
        .await
        .with_context(|| format!("the {what} was not acknowledged by JetStream"))?;
    let note = if ack.duplicate {
        " (duplicate: already stored)"
    } else {
        ""
    };
    let ride = event.ride_id().map(|r| r.as_str()).unwrap_or_default();
    println!(
        "published {} of {ride} on {} at sequence {}{note}",
        E::NAME,
        event.subject(),
        ack.sequence
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: RequestArgs,
    }

    fn parse(flags: &[&str]) -> Result<RequestArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("request").chain(flags.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn cancel_builds_the_riders_cancellation() {
        let a = parse(&[
            "--ride", "r-1", "--city", "paris", "--cancel", "--reason", "late",
        ])
        .unwrap();
        let c = ride_cancelled(&a, 42).unwrap();
        assert_eq!(c.subject(), "rides.cancelled.paris");
        assert_eq!(c.msg_id(), "cancelled:r-1");
        assert_eq!(c.rider_id.unwrap().as_str(), "rider-cli");
        assert_eq!((c.at_ms, c.reason.as_deref()), (42, Some("late")));
    }

    #[test]
    fn bad_input_is_named() {
        let a = parse(&["--ride", "r 1", "--cancel"]).unwrap();
        let err = format!("{:#}", ride_cancelled(&a, 1).unwrap_err());
        assert!(err.starts_with("--ride"), "{err}");
        let a = parse(&["--ride", "r-1", "--city", "be.rlin", "--cancel"]).unwrap();
        let err = format!("{:#}", ride_cancelled(&a, 1).unwrap_err());
        assert!(err.starts_with("--city"), "{err}");
        let long = "x".repeat(hail_events::MAX_CANCEL_REASON + 1);
        let a = parse(&["--ride", "r-1", "--cancel", "--reason", &long]).unwrap();
        let err = format!("{:#}", ride_cancelled(&a, 1).unwrap_err());
        assert!(err.starts_with("--reason"), "{err}");
    }

    #[test]
    fn cancel_takes_no_positions_and_reason_needs_cancel() {
        assert!(parse(&["--ride", "r-1", "--cancel", "--pickup", "1,2"]).is_err());
        assert!(parse(&["--ride", "r-1", "--reason", "late"]).is_err());
        let a = parse(&["--ride", "r-1"]).unwrap();
        assert_eq!(ride_requested(&a, 7).unwrap().requested_at_ms, 7);
    }
}
