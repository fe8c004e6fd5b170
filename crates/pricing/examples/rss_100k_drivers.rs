//! Resident memory of the real `hail-pricing` process with 100,000 drivers known.
//!
//! Starts a testkit nats-server (free ports, temp store), publishes 100,000
//! `DriverLocationUpdated` to DRIVERS (one per driver, spread over four cities,
//! three in four available), starts the `hail-pricing` of this example's
//! profile (or of `$HAIL_BIN_DIR`), waits for `/readyz`, checks it loaded every driver, and
//! reads VmRSS (and VmHWM, the peak) from /proc/<pid>/status. Then it prices
//! 20,000 requests and reads them again.
//!
//! ```text
//! cargo build --release -p hail-pricing --bins
//! cargo run --release -p hail-pricing --example rss_100k_drivers
//! ```

use std::time::Duration;

use anyhow::Result;
use hail_e2e::{rides, services::Service};
use hail_events::{City, DriverId, DriverLocationUpdated, DriverStatus, LatLng, RideId, sample};
use hail_testkit::{NatsServer, wait_until};

const DRIVERS: usize = 100_000;
const REQUESTS: usize = 20_000;
const CITIES: [(&str, f64, f64); 4] = [
    ("berlin", 52.52, 13.40),
    ("paris", 48.86, 2.35),
    ("london", 51.51, -0.13),
    ("nyc", 40.75, -73.98),
];

/// A deterministic spot within ~20 km of city `i % 4`.
fn spot(i: usize) -> (&'static str, LatLng) {
    let (name, lat, lon) = CITIES[i % CITIES.len()];
    let a = (i.wrapping_mul(7919) % 1000) as f64 / 1000.0 - 0.5;
    let b = (i.wrapping_mul(104_729) % 1000) as f64 / 1000.0 - 0.5;
    (
        name,
        LatLng::new(lat + a * 0.18, lon + b * 0.30).expect("spot"),
    )
}

fn driver(i: usize) -> DriverLocationUpdated {
    let (city, position) = spot(i);
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("driver-{i}")).expect("driver id"),
        city: City::new(city).expect("city"),
        position,
        status: if i % 4 == 3 {
            DriverStatus::OnTrip
        } else {
            DriverStatus::Available
        },
        at_ms: hail_runtime::now_ms(),
    }
}

fn request(i: usize) -> hail_events::RideRequested {
    let (city, pickup) = spot(i * 31 + 5);
    let mut r = sample::ride_requested("x", city);
    r.ride_id = RideId::new(format!("rss-{i}")).expect("ride id");
    r.pickup = pickup;
    r.requested_at_ms = hail_runtime::now_ms();
    r
}

/// The metric's value; -1 when `/metrics` cannot be read.
async fn metric(pricing: &Service, name: &str) -> f64 {
    pricing.metric(name, &[]).await.unwrap_or(-1.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    rides::publish_all(&js, (0..DRIVERS).map(driver)).await?;
    println!("published {DRIVERS} drivers");

    let mut pricing = Service::spawn("pricing", &server.url())?;
    let started = std::time::Instant::now();
    pricing.wait_ready(Duration::from_secs(120)).await?;
    let ready_after = started.elapsed();
    let known = metric(&pricing, "hail_pricing_drivers_known").await;
    anyhow::ensure!(
        known == DRIVERS as f64,
        "pricing knows {known} drivers, not {DRIVERS}"
    );
    let (rss, hwm) = pricing.process.memory_kib()?;
    println!(
        "ready after {ready_after:?} with {known} drivers: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );

    rides::publish_all(&js, (0..REQUESTS).map(request)).await?;
    wait_until(Duration::from_secs(120), "requests priced", || async {
        metric(&pricing, "hail_messages_processed_total").await >= REQUESTS as f64
    })
    .await?;
    let (rss, hwm) = pricing.process.memory_kib()?;
    println!(
        "after pricing {REQUESTS} requests: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    pricing.process.terminate(Duration::from_secs(10))?;
    Ok(())
}
