//! Resident memory of a `hail-matching` process that knows N drivers.
//!
//! Starts a throwaway nats-server (hail-testkit), publishes N driver locations to
//! DRIVERS, starts the matching binary of this example's profile directory
//! (or of `$HAIL_BIN_DIR`), waits until it is ready with every driver indexed,
//! and prints VmRSS and VmHWM from `/proc/<pid>/status`.
//!
//! ```text
//! cargo build --release -p hail-matching
//! cargo run --release -p hail-matching --example rss -- 100000
//! ```

use std::time::Duration;

use anyhow::{Context as _, Result};
use hail_e2e::{rides, services::Service};
use hail_events::{City, DriverId, DriverLocationUpdated, DriverStatus, LatLng};
use hail_runtime::service::Service::Matching;
use hail_testkit::{NatsServer, bin_path, wait_until};

#[tokio::main]
async fn main() -> Result<()> {
    let drivers: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .with_context(|| format!("drivers: {n:?} is not a count"))?,
        None => 100_000,
    };
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    rides::publish_all(&js, (0..drivers).map(driver)).await?;

    let started = std::time::Instant::now();
    let matching = Service::spawn("matching", &server.url())?;
    matching.wait_ready(Duration::from_secs(300)).await?;
    wait_until(
        Duration::from_secs(300),
        "matching ready with every driver",
        || async {
            matching
                .metric("hail_matching_drivers_available", &[])
                .await
                .is_ok_and(|n| n == drivers as f64)
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", matching.process.log()))?;
    let (rss, hwm) = matching.process.memory_kib()?;
    println!("binary: {}", bin_path(Matching.binary())?.display());
    println!(
        "drivers indexed: {drivers} in {:?} from start",
        started.elapsed()
    );
    println!("VmHWM:\t{hwm:>8} kB");
    println!("VmRSS:\t{rss:>8} kB");
    Ok(())
}

/// Available driver `i`, somewhere within ±0.15° lat, ±0.25° lon of Berlin.
fn driver(i: usize) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("driver-{i}")).expect("driver id"),
        city: City::new("berlin").expect("city"),
        position: LatLng::new(
            52.52 + rides::spread(i, 1) * 0.15,
            13.405 + rides::spread(i, 2) * 0.25,
        )
        .expect("a position near Berlin"),
        status: DriverStatus::Available,
        at_ms: 1_800_000_000_000,
    }
}
