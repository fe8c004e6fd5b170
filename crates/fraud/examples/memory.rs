//! Resident memory of a real `hail-fraud` process with 100,000 drivers in DRIVERS
//! and 100,000 riders of history, and how long its history replay takes.
//!
//! Starts a testkit nats-server, fills DRIVERS with 100,000 drivers and RIDES with
//! 150,000 requests of 100,000 riders over the last 50 minutes (10,000 devices and
//! cards), runs `target/debug|release/hail-fraud` until it has screened them all,
//! reads VmRSS and VmHWM from /proc, then SIGKILLs it, starts it again and reads
//! them once more after the replay.
//!
//! ```text
//! cargo build --release -p hail-fraud --bins
//! cargo run --release -p hail-fraud --example memory
//! ```
//! (It runs the `hail-fraud` of the profile it is built with, or `$HAIL_BIN_DIR/hail-fraud`.)

use std::time::{Duration, Instant};

use anyhow::Result;
use async_nats::jetstream;
use hail_e2e::{rides, services::Service};
use hail_events::{
    CardFingerprint, City, DeviceId, DriverId, DriverLocationUpdated, DriverStatus, LatLng, RideId,
    RideRequested, RiderId,
};
use hail_runtime::provision::{StreamSettings, ensure_streams};
use hail_testkit::{NatsServer, wait_until};

const DRIVERS: u64 = 100_000;
const RIDERS: u64 = 100_000;
const REQUESTS: u64 = 150_000;
const DEVICES: u64 = 10_000;

#[tokio::main]
async fn main() -> Result<()> {
    let server = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    ensure_streams(
        &js,
        &StreamSettings {
            rides_max_age: Duration::from_secs(86_400),
            rides_max_bytes: 8 << 30,
            ..StreamSettings::default()
        },
    )
    .await?;
    let t = Instant::now();
    rides::publish_all(&js, (0..DRIVERS).map(driver)).await?;
    let now = hail_runtime::now_ms();
    rides::publish_all(&js, (0..REQUESTS).map(|i| request(i, now))).await?;
    println!(
        "published {DRIVERS} drivers and {REQUESTS} requests in {:?}",
        t.elapsed()
    );

    let mut fraud = Service::spawn("fraud", &server.url())?;
    let t = Instant::now();
    wait_screened(&fraud, REQUESTS as f64).await?;
    println!("screened {REQUESTS} requests in {:?}", t.elapsed());
    report("after screening", &fraud).await?;

    let t = Instant::now();
    fraud.restart()?;
    fraud.wait_ready(Duration::from_secs(300)).await?;
    println!("restart: replay and ready in {:?}", t.elapsed());
    report("after restart and replay", &fraud).await?;
    fraud.process.kill();
    Ok(())
}

async fn wait_screened(fraud: &Service, n: f64) -> Result<()> {
    wait_until(
        Duration::from_secs(600),
        "fraud screened every request",
        || async {
            fraud
                .metric("hail_fraud_verdicts_total", &[])
                .await
                .is_ok_and(|v| v >= n)
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", fraud.process.log()))
}

async fn report(when: &str, fraud: &Service) -> Result<()> {
    // The history gauges refresh every 10 s.
    wait_until(Duration::from_secs(30), "history gauges", || async {
        fraud
            .metric("hail_fraud_history_riders", &[])
            .await
            .is_ok_and(|v| v > 0.0)
    })
    .await?;
    let (rss, hwm) = fraud.process.memory_kib()?;
    println!(
        "{when}: VmRSS {rss} kB (peak VmHWM {hwm} kB); history: {} riders, {} requests; replayed {}",
        fraud.metric("hail_fraud_history_riders", &[]).await?,
        fraud.metric("hail_fraud_history_entries", &[]).await?,
        fraud
            .metric("hail_fraud_replayed_requests_total", &[])
            .await?,
    );
    Ok(())
}

fn driver(i: u64) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("driver-{i:07}")).unwrap(),
        city: City::new("berlin").unwrap(),
        position: LatLng::new(
            52.4 + (i % 1000) as f64 * 0.0002,
            13.3 + (i / 1000) as f64 * 0.002,
        )
        .unwrap(),
        status: DriverStatus::Available,
        at_ms: hail_runtime::now_ms(),
    }
}

/// Request `i` of rider `i % RIDERS`, spread over the 50 minutes before `now`.
fn request(i: u64, now: u64) -> RideRequested {
    let rider = i % RIDERS;
    RideRequested {
        ride_id: RideId::new(format!("ride-{i:010}")).unwrap(),
        rider_id: RiderId::new(format!("rider-{rider:07}")).unwrap(),
        city: City::new("berlin").unwrap(),
        pickup: LatLng::new(
            52.4 + (i % 997) as f64 * 0.0002,
            13.3 + (i % 991) as f64 * 0.0002,
        )
        .unwrap(),
        dropoff: LatLng::new(52.5, 13.4).unwrap(),
        requested_at_ms: now - 3_000_000 + i * 3_000_000 / REQUESTS,
        device_id: DeviceId::new(format!("dev-{:06}", rider % DEVICES)).unwrap(),
        card: CardFingerprint::new(format!("card-{:06}", (rider * 7) % DEVICES)).unwrap(),
    }
}
