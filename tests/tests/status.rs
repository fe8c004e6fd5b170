//! `hail status` against the real services, hail-monitor and the real CLI:
//! instances and rates come from every instance through the NATS services API,
//! lag from JetStream, lag in seconds, retention and status from the monitor;
//! a killed service shows as stopped with its lag; a monitor on the IPv6
//! loopback (`http://[::1]:<port>`) serves the status column too.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_e2e::{SERVICES, cli::hail, monitor::Monitor, rides, serial, services::Service};
use hail_testkit::{NatsServer, wait_until};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// `hail status --json`, by service.
async fn status(server: &NatsServer, monitor: &Monitor) -> Result<Vec<Value>> {
    let out = hail(
        &server.url(),
        &["status", "--json", "--monitor-url", &monitor.base_url()],
    )
    .await?;
    serde_json::from_str(&out).with_context(|| format!("not JSON: {out}"))
}

fn row<'a>(rows: &'a [Value], service: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["service"] == service)
        .unwrap_or_else(|| panic!("no {service} in {rows:?}"))
}

/// Publishes 10 rides every 50 ms until dropped.
struct Trickle(Arc<AtomicBool>);

impl Trickle {
    fn start(js: jetstream::Context) -> Trickle {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut from = 0;
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                if rides::publish(&js, "trickle", from, from + 10)
                    .await
                    .is_err()
                {
                    break;
                }
                from += 10;
            }
        });
        Trickle(stop)
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether the monitor reports every service's consumer `ok`.
async fn all_ok(monitor: &Monitor) -> bool {
    let mut all = true;
    for s in SERVICES {
        all &= monitor.status_is(s, "ok").await;
    }
    all
}

/// The table of `hail status --monitor-url http://[::1]:<port>` has every
/// service's status from a monitor listening on the IPv6 loopback only.
async fn status_through_an_ipv6_monitor(server: &NatsServer) -> Result<()> {
    let monitor = Monitor::spawn_ipv6(&server.url())?;
    let url = monitor.base_url();
    assert!(url.starts_with("http://[::1]:"), "{url}");
    wait_until(
        WAIT,
        "the [::1] monitor to report every consumer ok",
        || all_ok(&monitor),
    )
    .await?;
    let table = hail(&server.url(), &["status", "--monitor-url", &url]).await?;
    for s in SERVICES {
        let columns: Vec<&str> = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(s))
            .with_context(|| format!("no {s} line in\n{table}"))?
            .split_whitespace()
            .collect();
        // service, lag (msgs), lag (s), retention, rate/s, status, instances
        assert_eq!(columns.get(5), Some(&"ok"), "{s} via {url}:\n{table}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_every_instance_and_shows_a_stopped_service() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let mut svcs = Vec::new();
    for name in SERVICES {
        svcs.push(Service::spawn(name, &server.url())?);
    }
    svcs.push(Service::spawn("pricing", &server.url())?);
    for s in &svcs {
        s.wait_ready(WAIT).await?;
    }
    let monitor = Monitor::spawn(&server.url())?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    wait_until(WAIT, "the monitor to report every consumer ok", || {
        all_ok(&monitor)
    })
    .await?;
    status_through_an_ipv6_monitor(&server).await?;

    // Under a steady 200 rides/s: every service processes, pricing with two instances.
    let trickle = Trickle::start(js.clone());
    wait_until(WAIT, "every service processing the trickle", || async {
        let mut all = true;
        for s in &svcs {
            all &= s.processed("RideRequested").await.is_ok_and(|n| n > 0.0);
        }
        all
    })
    .await?;
    let rows = status(&server, &monitor).await?;
    for s in SERVICES {
        let r = row(&rows, s);
        let instances = if s == "pricing" { 2 } else { 1 };
        assert_eq!(r["instances"], instances, "{s}: {r}");
        let rate = r["rate_per_second"].as_f64().unwrap_or(-1.0);
        assert!(rate > 50.0, "{s} processes about 200/s: {r}");
        assert!(r["lag_messages"].as_u64().is_some(), "{s}: {r}");
        assert!(r["lag_seconds"].as_f64().is_some(), "{s}: {r}");
        let retention = r["retention_used"].as_f64().unwrap_or(-1.0);
        assert!((0.0..0.01).contains(&retention), "{s}: {r}");
    }
    drop(trickle);

    // analytics killed: no instance, the monitor's `stop`, and its lag grows.
    svcs[3].process.kill();
    rides::publish(&js, "while-down", 0, 300).await?;
    wait_until(WAIT, "the monitor to report analytics stopped", || {
        monitor.status_is("analytics", "stop")
    })
    .await?;
    let rows = status(&server, &monitor).await?;
    let analytics = row(&rows, "analytics");
    assert_eq!(analytics["instances"], 0, "{analytics}");
    assert_eq!(analytics["status"], "stop", "{analytics}");
    assert!(analytics["rate_per_second"].is_null(), "{analytics}");
    let lag = analytics["lag_messages"].as_u64().unwrap_or(0);
    assert!(lag >= 300, "{analytics}");
    assert_eq!(row(&rows, "pricing")["instances"], 2);

    let table = hail(
        &server.url(),
        &["status", "--monitor-url", &monitor.base_url()],
    )
    .await?;
    let line = table
        .lines()
        .find(|l| l.starts_with("analytics"))
        .with_context(|| format!("no analytics line in\n{table}"))?;
    assert!(line.contains("stop"), "{table}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.contains("retention")),
        "{table}"
    );
    Ok(())
}
