//! Delivery under faults: under a steady load of ride requests, SIGKILL services,
//! SIGKILL the broker, or make a service fail deliveries at random; then drain
//! and check with the real `hail audit --json` that every request JetStream
//! acknowledged was processed by every service exactly once in effect or sits in
//! its dead-letter stream, and that no acknowledged ride went missing.
//!
//! Kill moments are seeded: the seed is printed, `HAIL_TEST_SEED=<n>` replays it.

use std::time::Duration;

use anyhow::{Result, ensure};
use async_nats::jetstream;
use hail_e2e::{
    SERVICES,
    chaos::{self, Load, Rng},
    serial,
    services::Service,
};
use hail_testkit::{NatsServer, wait_until};

/// Rides per second of the background load.
const RATE: usize = 300;
/// Available drivers, so matching claims drivers for part of the run.
const DRIVERS: usize = 1_500;
const READY: Duration = Duration::from_secs(30);
const DRAIN: Duration = Duration::from_secs(240);
/// How long the load may take to show progress (the machine is small and busy).
const PROGRESS: Duration = Duration::from_secs(60);

async fn jetstream_of(server: &NatsServer) -> Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(server.url()).await?))
}

/// Starts the four services with `extra` flags for one of them, publishes the
/// drivers and waits until matching has them all.
async fn start_stack(
    server: &NatsServer,
    special: Option<(&str, &[&str])>,
) -> Result<(Vec<Service>, jetstream::Context)> {
    let mut svcs = Vec::new();
    for name in SERVICES {
        svcs.push(match special {
            Some((s, extra)) if s == name => Service::spawn_with(name, &server.url(), extra)?,
            _ => Service::spawn(name, &server.url())?,
        });
    }
    for s in &svcs {
        s.wait_ready(READY).await?;
    }
    let js = jetstream_of(server).await?;
    chaos::publish_drivers(&js, DRIVERS).await?;
    let matching = &svcs[0];
    wait_until(READY, "matching indexed every driver", || async {
        matching
            .metric("hail_matching_drivers_available", &[])
            .await
            .is_ok_and(|v| v >= DRIVERS as f64)
    })
    .await?;
    Ok((svcs, js))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_sigkilled_under_load_lose_and_duplicate_nothing() -> Result<()> {
    const SCENARIO: &str = "service crashes";
    const KILLS: usize = 6;
    let _serial = serial().await;
    let mut rng = Rng::new(chaos::seed(SCENARIO));
    let server = NatsServer::start()?;
    let (mut svcs, js) = start_stack(&server, None).await?;

    let load = Load::start(js.clone(), "crash", RATE);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing")
        .await?;
    for round in 1..=KILLS {
        // A random moment under load, a random victim, a random time down.
        tokio::time::sleep(rng.between(Duration::from_millis(300), Duration::from_millis(2500)))
            .await;
        let victim = &mut svcs[rng.below(SERVICES.len())];
        victim.process.kill();
        let down = rng.between(Duration::from_millis(100), Duration::from_millis(2000));
        println!(
            "[{SCENARIO}] kill {round}/{KILLS}: {} SIGKILLed at {} rides acknowledged, down for {down:?}",
            victim.name,
            load.acked()
        );
        tokio::time::sleep(down).await;
        victim.restart()?;
        victim.wait_ready(READY).await?;
    }
    let report = load.stop().await?;
    ensure!(
        report.failed.is_empty(),
        "the broker stayed up, yet {} publishes failed",
        report.failed.len()
    );
    chaos::verify(SCENARIO, &js, &server.url(), &report, DRAIN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_sigkilled_under_load_loses_nothing_acknowledged() -> Result<()> {
    const SCENARIO: &str = "broker crash";
    const CRASHES: usize = 2;
    let _serial = serial().await;
    let mut rng = Rng::new(chaos::seed(SCENARIO));
    let mut server = NatsServer::start()?;
    let (mut svcs, js) = start_stack(&server, None).await?;

    let load = Load::start(js.clone(), "broker", RATE);
    for round in 1..=CRASHES {
        load.wait_acked_more(RATE, PROGRESS, "the load flowing")
            .await?;
        tokio::time::sleep(rng.between(Duration::from_millis(300), Duration::from_millis(2000)))
            .await;
        server.kill();
        let down = rng.between(Duration::from_millis(200), Duration::from_millis(3000));
        println!(
            "[{SCENARIO}] crash {round}/{CRASHES}: nats-server SIGKILLed at {} rides acknowledged, down for {down:?}",
            load.acked()
        );
        tokio::time::sleep(down).await;
        server.restart()?;
        for s in &svcs {
            s.wait_ready(READY).await?;
        }
        load.wait_acked_more(
            RATE,
            PROGRESS,
            "the load acknowledged again after the restart",
        )
        .await?;
    }
    let report = load.stop().await?;
    for s in &mut svcs {
        ensure!(
            s.process.is_running(),
            "{} died with the broker instead of reconnecting:\n{}",
            s.name,
            s.process.log()
        );
    }
    chaos::verify(SCENARIO, &js, &server.url(), &report, DRAIN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_pricing_deliveries_failing_still_gets_everything_through() -> Result<()> {
    const SCENARIO: &str = "transient failures";
    const LOAD_FOR: Duration = Duration::from_secs(10);
    // Short backoffs keep the redeliveries (up to 5 per message) within seconds.
    let flaky: &[&str] = &["--fault-retry-rate", "0.2", "--backoff", "1s,2s,2s,2s"];
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let (svcs, js) = start_stack(&server, Some(("pricing", flaky))).await?;

    let load = Load::start(js.clone(), "flaky", RATE);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing")
        .await?;
    // Pacing the load, not waiting for a condition.
    tokio::time::sleep(LOAD_FOR).await;
    let report = load.stop().await?;
    ensure!(
        report.failed.is_empty(),
        "the broker stayed up, yet {} publishes failed",
        report.failed.len()
    );
    chaos::verify(SCENARIO, &js, &server.url(), &report, DRAIN).await?;
    let pricing = &svcs[1];
    let retried = pricing
        .metric(hail_runtime::metrics::names::RETRIED, &[])
        .await?;
    let processed = pricing.processed("RideRequested").await?;
    println!("[{SCENARIO}] pricing retried {retried} deliveries, processed {processed}");
    // About a fifth of first deliveries fail: at least a tenth of the load must have.
    ensure!(
        retried >= report.acked.len() as f64 / 10.0,
        "pricing retried only {retried} of {} requests: the faults were not injected",
        report.acked.len()
    );
    Ok(())
}
