//! hail-monitor under load: a killed service's status becomes `stop` and its lag
//! rises; restarted, it returns to `ok` and its lag drains. And its `nats_*`
//! series carry prometheus-nats-exporter's names and labels.

use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use hail_e2e::{monitor::Monitor, rides, serial, services::Service};
use hail_testkit::{NatsServer, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_shows_stop_and_rising_lag_then_recovers() -> Result<()> {
    const RATE_PER_TICK: usize = 5; // every 20 ms: 250 rides/s
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let mut analytics = Service::spawn("analytics", &server.url())?;
    let pricing = Service::spawn("pricing", &server.url())?;
    analytics.wait_ready(Duration::from_secs(30)).await?;
    pricing.wait_ready(Duration::from_secs(30)).await?;
    let monitor = Monitor::spawn(&server.url())?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);

    let load_js = js.clone();
    let load = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for batch in 0..(90_000 / 20) {
            tick.tick().await;
            let from = batch * RATE_PER_TICK;
            if rides::publish(&load_js, "mon", from, from + RATE_PER_TICK)
                .await
                .is_err()
            {
                break;
            }
        }
    });

    let long = Duration::from_secs(30);
    wait_until(long, "analytics ok under load", || {
        monitor.status_is("analytics", "ok")
    })
    .await?;
    analytics.process.kill();
    wait_until(long, "analytics status stop", || {
        monitor.status_is("analytics", "stop")
    })
    .await?;
    let before = monitor.lag("analytics").await;
    wait_until(long, "analytics lag rising", || async {
        monitor.lag("analytics").await > before + 100.0
    })
    .await?;
    let age = monitor
        .value(
            "hail_consumer_lag_seconds",
            &[("consumer_name", "analytics")],
        )
        .await;
    assert!(
        age.is_some_and(|a| a > 0.0),
        "lag in seconds while down: {age:?}"
    );
    assert!(
        monitor.status_is("pricing", "ok").await,
        "pricing keeps going"
    );

    analytics.restart()?;
    wait_until(long, "analytics ok again", || {
        monitor.status_is("analytics", "ok")
    })
    .await?;
    // Drained: under one second's worth of traffic (250 rides) behind.
    wait_until(long, "analytics lag drained", || async {
        (0.0..250.0).contains(&monitor.lag("analytics").await)
    })
    .await?;
    load.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_consumer_shows_its_backlog_filling_the_retention_of_rides() -> Result<()> {
    const BATCH: usize = 250;
    const MAX_BYTES: &str = "1048576";
    let _serial = serial().await;
    let server = NatsServer::start()?;
    // RIDES kept to 1 MiB, so a few thousand rides fill half of it.
    let small = ["--rides-max-bytes", MAX_BYTES];
    let mut analytics = Service::spawn_with("analytics", &server.url(), &small)?;
    let pricing = Service::spawn_with("pricing", &server.url(), &small)?;
    analytics.wait_ready(Duration::from_secs(30)).await?;
    pricing.wait_ready(Duration::from_secs(30)).await?;
    let monitor = Monitor::spawn(&server.url())?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let rides_stream = [("stream_name", "RIDES")];
    let long = Duration::from_secs(30);
    wait_until(long, "the monitor to read RIDES' limits", || async {
        monitor
            .value("nats_stream_limit_bytes", &rides_stream)
            .await
            == Some(1_048_576.0)
    })
    .await?;
    assert_eq!(
        monitor
            .value("hail_stream_max_age_seconds", &rides_stream)
            .await,
        Some(86_400.0),
        "the default --rides-max-age of 24h"
    );

    let ratio = |consumer: &'static str| {
        let monitor = &monitor;
        async move {
            monitor
                .value(
                    "hail_consumer_retention_used_ratio",
                    &[("consumer_name", consumer)],
                )
                .await
                .unwrap_or(-1.0)
        }
    };
    analytics.process.kill();
    let mut published = 0;
    while ratio("analytics").await <= 0.5 {
        anyhow::ensure!(
            published < 20_000,
            "analytics' ratio still {} after {published} rides",
            ratio("analytics").await
        );
        rides::publish(&js, "ret", published, published + BATCH).await?;
        published += BATCH;
        // The monitor polls every 200 ms: wait for a reading of this batch.
        let last = published as f64;
        wait_until(long, "the monitor to see the batch", || async {
            monitor.value("nats_stream_last_seq", &rides_stream).await >= Some(last)
        })
        .await?;
    }
    let bytes = monitor
        .value("nats_stream_total_bytes", &rides_stream)
        .await
        .unwrap_or(0.0);
    assert!(bytes > 524_288.0, "over half of 1 MiB stored: {bytes}");
    println!(
        "analytics' backlog fills {:.2} of RIDES' 1 MiB after {published} rides ({bytes} bytes stored)",
        ratio("analytics").await
    );
    wait_until(long, "pricing, which keeps up, owes nothing", || async {
        ratio("pricing").await == 0.0
    })
    .await?;

    analytics.restart_with(&small)?;
    wait_until(long, "analytics drained, its ratio back to 0", || async {
        ratio("analytics").await == 0.0
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_the_nats_exporter_series_with_its_labels() -> Result<()> {
    let server = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let rides = js
        .create_stream(stream::Config {
            name: "RIDES".into(),
            subjects: vec!["exporter.>".into()],
            ..Default::default()
        })
        .await?;
    let audit = rides
        .create_consumer(pull::Config {
            durable_name: Some("audit".into()),
            description: Some("e2e audit".into()),
            ..Default::default()
        })
        .await?;
    for i in 0..5 {
        js.publish(format!("exporter.{i}"), "x".into())
            .await?
            .await?;
    }
    let mut batch = audit.fetch().max_messages(3).messages().await?;
    let mut acked = 0;
    while let Some(msg) = batch.next().await {
        msg.map_err(anyhow::Error::msg)?
            .double_ack()
            .await
            .map_err(anyhow::Error::msg)?;
        acked += 1;
    }
    assert_eq!(acked, 3);

    let monitor = Monitor::spawn(&server.url())?;
    // The exporter's labels: the server, the account, the stream and its
    // consumer, each leader here on a single server.
    let audit_labels = [
        ("stream_name", "RIDES"),
        ("consumer_name", "audit"),
        ("consumer_desc", "e2e audit"),
        ("account", "$G"),
        ("account_id", "$G"),
        ("is_meta_leader", "true"),
        ("is_stream_leader", "true"),
        ("is_consumer_leader", "true"),
    ];
    wait_until(
        Duration::from_secs(15),
        "the monitor to see 3 acks",
        || async {
            monitor
                .value("nats_consumer_ack_floor_consumer_seq", &audit_labels)
                .await
                == Some(3.0)
        },
    )
    .await?;
    for (name, want) in [
        ("nats_consumer_delivered_consumer_seq", 3.0),
        ("nats_consumer_delivered_stream_seq", 3.0),
        ("nats_consumer_ack_floor_stream_seq", 3.0),
        ("nats_consumer_num_pending", 2.0),
        ("nats_consumer_num_ack_pending", 0.0),
    ] {
        assert_eq!(
            monitor.value(name, &audit_labels).await,
            Some(want),
            "{name}"
        );
    }
    let rides_labels = [("stream_name", "RIDES"), ("account", "$G")];
    for (name, want) in [
        ("nats_stream_consumer_count", 1.0),
        ("nats_stream_total_messages", 5.0),
        ("nats_stream_last_seq", 5.0),
        ("nats_stream_limit_bytes", -1.0),
    ] {
        assert_eq!(
            monitor.value(name, &rides_labels).await,
            Some(want),
            "{name}"
        );
    }
    Ok(())
}
