//! Resident memory of a `hail-matching` process that knows N drivers.
//!
//! Starts a throwaway nats-server (hail-testkit), publishes N driver locations to
//! DRIVERS, starts the matching binary next to this example's profile directory
//! (or in `$HAIL_BIN_DIR`), waits until it is ready with every driver indexed,
//! and prints VmRSS and VmHWM from `/proc/<pid>/status`.
//!
//! ```text
//! cargo build --release -p hail-matching
//! cargo run --release -p hail-matching --example rss -- 100000
//! ```

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream;
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, Event, LatLng, codec, headers,
};
use hail_testkit::{NatsServer, Process, free_port, http_get, metric_sum, wait_until};

#[tokio::main]
async fn main() -> Result<()> {
    let drivers: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .with_context(|| format!("drivers: {n:?} is not a count"))?,
        None => 100_000,
    };
    let server = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let settings = hail_runtime::provision::StreamSettings {
        rides_max_age: Duration::from_secs(3600),
        rides_max_bytes: 1 << 30,
        replicas: 1,
    };
    hail_runtime::provision::ensure_streams(&js, &settings).await?;
    publish_drivers(&js, drivers).await?;

    let port = free_port();
    let args = [
        "--nats-url".to_string(),
        server.url(),
        "--metrics-addr".to_string(),
        format!("127.0.0.1:{port}"),
    ];
    let bin = matching_bin()?;
    let started = std::time::Instant::now();
    let process = Process::spawn(&bin, &args, &[])?;
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    wait_until(
        Duration::from_secs(300),
        "matching ready with every driver",
        || async {
            match http_get(&metrics).await {
                Ok((200, body)) => {
                    metric_sum(&body, "hail_matching_drivers_available", &[])
                        == Some(drivers as f64)
                }
                _ => false,
            }
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", process.log()))?;
    let (rss, hwm) = process.memory_kib()?;
    println!("binary: {}", bin.display());
    println!(
        "drivers indexed: {drivers} in {:?} from start",
        started.elapsed()
    );
    println!("VmHWM:\t{hwm:>8} kB");
    println!("VmRSS:\t{rss:>8} kB");
    Ok(())
}

/// N available drivers spread over ±0.15° lat, ±0.25° lon around Berlin.
async fn publish_drivers(js: &jetstream::Context, n: usize) -> Result<()> {
    let mut acks = Vec::with_capacity(1000);
    for i in 0..n {
        let update = DriverLocationUpdated {
            driver_id: DriverId::new(format!("driver-{i}"))?,
            city: City::new("berlin")?,
            position: LatLng::new(52.52 + spread(i, 1) * 0.15, 13.405 + spread(i, 2) * 0.25)?,
            status: DriverStatus::Available,
            at_ms: 1_800_000_000_000,
        };
        let payload = codec::encode(&update)?;
        acks.push(
            js.publish_with_headers(update.subject(), headers::for_event(&update), payload)
                .await?,
        );
        if acks.len() == 1000 {
            for a in acks.drain(..) {
                a.await.context("driver update not acknowledged")?;
            }
        }
    }
    for a in acks {
        a.await.context("driver update not acknowledged")?;
    }
    Ok(())
}

/// A spread in [-1, 1) for item `i`, different per `salt` (splitmix64).
fn spread(i: usize, salt: u64) -> f64 {
    let mut z = (i as u64).wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// `$HAIL_BIN_DIR/hail-matching`, else the one in this example's profile directory
/// (`target/<profile>/examples/rss` → `target/<profile>/hail-matching`).
fn matching_bin() -> Result<PathBuf> {
    let dir = match std::env::var_os("HAIL_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe()?;
            let examples = exe.parent().context("example has no directory")?;
            examples
                .parent()
                .context("no profile directory")?
                .to_path_buf()
        }
    };
    let bin = dir.join(hail_runtime::service::Service::Matching.binary());
    if !bin.is_file() {
        bail!(
            "{} not found: cargo build --release -p hail-matching",
            bin.display()
        );
    }
    Ok(bin)
}
