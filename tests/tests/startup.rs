//! Starting and stopping: an unreachable NATS and a bad flag fail fast with a
//! message that names them; SIGTERM stops a service cleanly.

use std::time::{Duration, Instant};

use anyhow::Result;
use async_nats::jetstream;
use hail_e2e::{rides, serial, services::Service};
use hail_testkit::{NatsServer, Process, bin_path, free_port, wait_until};

#[tokio::test]
async fn unreachable_nats_exits_non_zero_naming_the_url() -> Result<()> {
    let _serial = serial().await;
    let url = format!("nats://127.0.0.1:{}", free_port());
    let args: Vec<String> = [
        "--nats-url",
        &url,
        "--connect-timeout",
        "2s",
        "--metrics-addr",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("127.0.0.1:{}", free_port())])
    .collect();
    for name in hail_e2e::SERVICES {
        let started = Instant::now();
        let mut p = Process::spawn(&bin_path(&format!("hail-{name}"))?, &args, &[])?;
        let status = p.wait_timeout(Duration::from_secs(20));
        let status = status.unwrap_or_else(|| panic!("hail-{name} still running after 20 s"));
        assert!(!status.success(), "hail-{name} exited {status}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        let log = p.log();
        assert!(
            log.contains(&format!("cannot reach NATS at {url}")),
            "hail-{name}: {log}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_server_too_small_for_rides_fails_at_start_naming_the_size_and_the_flag() -> Result<()> {
    let _serial = serial().await;
    // 1 GiB of JetStream storage; RIDES asks to reserve 8 GiB by default.
    let nats = NatsServer::start_with_max_file_store(1 << 30)?;
    let service = Service::spawn("analytics", &nats.url())?;
    let err = service
        .wait_ready(Duration::from_secs(20))
        .await
        .expect_err("cannot be ready without RIDES");
    let msg = format!("{err:#}");
    assert!(msg.contains("exited before it was ready"), "{msg}");
    for needle in [
        "cannot create or update stream RIDES",
        "cannot reserve the 8.0 GiB",
        "--rides-max-bytes",
        "max_file_store",
    ] {
        assert!(msg.contains(needle), "no {needle:?} in {msg}");
    }
    assert_eq!(
        msg.matches("insufficient storage resources").count(),
        1,
        "the server's answer once, not once per error layer: {msg}"
    );

    // The same server takes a RIDES that fits.
    let mut fits = Service::spawn_with(
        "analytics",
        &nats.url(),
        &["--rides-max-bytes", "536870912"],
    )?;
    fits.wait_ready(Duration::from_secs(20)).await?;
    assert!(fits.process.terminate(Duration::from_secs(10))?.success());
    Ok(())
}

#[tokio::test]
async fn a_bad_flag_fails_at_start_naming_it() -> Result<()> {
    let _serial = serial().await;
    let args = vec!["--max-deliver".to_string(), "1".to_string()];
    let mut p = Process::spawn(&bin_path("hail-pricing")?, &args, &[])?;
    let status = p
        .wait_timeout(Duration::from_secs(10))
        .expect("exits at once");
    assert!(!status.success());
    assert!(
        p.log().contains("--max-deliver must be at least 2"),
        "{}",
        p.log()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_and_exits_zero() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let mut svc = Service::spawn("fraud", &server.url())?;
    svc.wait_ready(Duration::from_secs(30)).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    rides::publish(&js, "term", 0, 2_000).await?;
    wait_until(Duration::from_secs(120), "fraud drained", || {
        rides::drained(&js, "fraud")
    })
    .await?;

    let status = svc.process.terminate(Duration::from_secs(20))?;
    assert!(
        status.success(),
        "exit status {status}\n{}",
        svc.process.log()
    );
    assert!(
        svc.process.log().contains("stopped"),
        "{}",
        svc.process.log()
    );
    // Nothing was left unacknowledged by the clean stop.
    assert_eq!(rides::consumer_backlog(&js, "fraud").await?, (0, 0));
    Ok(())
}

/// With its nats-server gone for good, every service still stops on SIGTERM:
/// each step of its shutdown that talks to NATS is time-boxed by
/// `--shutdown-timeout` instead of waiting for a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_service_while_nats_is_gone() -> Result<()> {
    const SHUTDOWN: &str = "2s";
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let mut svcs = Vec::new();
    for name in hail_e2e::SERVICES.into_iter().chain(["ride-view"]) {
        svcs.push(Service::spawn_with(
            name,
            &server.url(),
            &["--shutdown-timeout", SHUTDOWN],
        )?);
    }
    for s in &svcs {
        s.wait_ready(Duration::from_secs(60)).await?;
    }
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    rides::publish(&js, "gone", 0, 200).await?;
    drop(js);
    drop(server);
    for s in &svcs {
        // Not ready once its connection is gone: it has noticed.
        wait_until(
            Duration::from_secs(30),
            &format!("{} to notice NATS is gone", s.name),
            || async {
                hail_testkit::http_get(&s.url("/readyz"))
                    .await
                    .is_ok_and(|(status, body)| status == 503 && body.contains("not connected"))
            },
        )
        .await?;
    }
    for s in &mut svcs {
        // Four time-boxed steps of 2 s at most, and room for a loaded machine.
        let started = Instant::now();
        let status = s.process.terminate(Duration::from_secs(40))?;
        eprintln!(
            "{} stopped {:?} after SIGTERM: {status}",
            s.name,
            started.elapsed()
        );
    }
    Ok(())
}
