//! Resident memory of the hail-analytics process after it has counted 100,000
//! ride events, with 100,000 drivers in DRIVERS (analytics does not read
//! DRIVERS; they are there because a real deployment has them).
//!
//! Starts its own nats-server (hail-testkit), publishes the drivers and 25,000
//! rides × 4 events, starts the hail-analytics binary of this example's
//! profile, waits until its consumer is drained and its checkpoint covers the
//! whole stream, then prints VmRSS and VmHWM from /proc.
//!
//! ```text
//! cargo build --release -p hail-analytics
//! cargo run --release -p hail-analytics --example rss
//! ```
//! (`HAIL_BIN_DIR` overrides where hail-analytics is looked for.)

use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream::{self, context::PublishAckFuture};
use hail_analytics::checkpoint;
use hail_e2e::{rides, services::Service};
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, Event, LatLng, codec, headers, sample,
    subjects,
};
use hail_runtime::service::Service::Analytics;
use hail_testkit::{NatsServer, bin_path, wait_until};

const DRIVERS: usize = 100_000;
const RIDES: usize = 25_000;
const CITIES: [&str; 5] = ["berlin", "paris", "lisbon", "madrid", "rome"];

#[tokio::main]
async fn main() -> Result<()> {
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    rides::publish_all(&js, (0..DRIVERS).map(driver)).await?;
    let events = publish_rides(&js).await?;
    println!("published {DRIVERS} drivers and {events} ride events");

    let started = std::time::Instant::now();
    let mut analytics = Service::spawn("analytics", &server.url())?;
    let last = js
        .get_stream(subjects::RIDES_STREAM)
        .await?
        .get_info()
        .await?
        .state
        .last_sequence;
    wait_until(
        Duration::from_secs(600),
        "checkpoint covers RIDES",
        || async { covered(&js).await >= last },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", analytics.process.log()))?;
    let took = started.elapsed();
    let counted = analytics.metric("hail_analytics_events_total", &[]).await?;
    let (rss, hwm) = analytics.process.memory_kib()?;
    println!(
        "hail-analytics ({}) counted {counted} events in {took:.1?} from start ({:.0} events/s)",
        bin_path(Analytics.binary())?.display(),
        counted / took.as_secs_f64()
    );
    println!(
        "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    analytics.process.terminate(Duration::from_secs(15))?;
    Ok(())
}

async fn covered(js: &jetstream::Context) -> u64 {
    let read = async {
        let kv = js.get_key_value(checkpoint::BUCKET).await.ok()?;
        let entry = kv.get(checkpoint::KEY).await.ok()??;
        let cp = checkpoint::Checkpoint::decode(&entry).ok()?;
        Some(cp.state.coverage.floor())
    };
    read.await.unwrap_or(0)
}

async fn send<E: Event>(js: &jetstream::Context, e: &E) -> Result<PublishAckFuture> {
    Ok(js
        .publish_with_headers(e.subject(), headers::for_event(e), codec::encode(e)?)
        .await?)
}

async fn flush(acks: &mut Vec<PublishAckFuture>) -> Result<()> {
    for a in acks.drain(..) {
        a.await?;
    }
    Ok(())
}

/// Available driver `i` in one of the cities.
fn driver(i: usize) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("d{i}")).expect("driver id"),
        city: City::new(CITIES[i % CITIES.len()]).expect("city"),
        position: LatLng::new(52.4 + (i % 1000) as f64 * 1e-4, 13.3).expect("position"),
        status: DriverStatus::Available,
        at_ms: 1_800_000_000_000,
    }
}

/// Request, quote, match and completion of each ride: 4 events per ride.
async fn publish_rides(js: &jetstream::Context) -> Result<usize> {
    let mut acks = Vec::with_capacity(1000);
    let mut n = 0;
    for i in 0..RIDES {
        let city = CITIES[i % CITIES.len()];
        let req = sample::ride_requested(&format!("r{i}"), city);
        acks.push(send(js, &req).await?);
        let mut fare = sample::fare_quoted(&format!("r{i}"), city);
        fare.amount_minor += (i % 100) as u64 * 37;
        acks.push(send(js, &fare).await?);
        let matched = hail_events::RideMatched {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            driver_id: DriverId::new(format!("d{i}"))?,
            pickup_distance_m: 300.0,
            eta_s: 60,
            requested_at_ms: req.requested_at_ms,
            matched_at_ms: req.requested_at_ms + (i % 500) as u64,
        };
        acks.push(send(js, &matched).await?);
        let completed = hail_events::RideCompleted {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            driver_id: matched.driver_id.clone(),
            at_ms: req.requested_at_ms + 900_000,
        };
        acks.push(send(js, &completed).await?);
        n += 4;
        if acks.len() >= 1000 {
            flush(&mut acks).await?;
        }
    }
    flush(&mut acks).await?;
    Ok(n)
}
