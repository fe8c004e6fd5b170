//! pricing end to end against a real nats-server and the real `hail-pricing`:
//! a bad tariffs file stops it at start naming the city and the field; the surge
//! rises where drivers are scarce and stays 1.0 where they are ample, follows
//! drivers live, and every fare is in its city's currency from the tariffs file.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::DeliverPolicy};
use futures::StreamExt;
use hail_e2e::{rides, serial, services::Service};
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, Event, FareQuoted, LatLng, RideId, codec,
    headers, sample,
};
use hail_testkit::{NatsServer, Process, bin_path, free_port, wait_until};

const TARIFFS: &str = r#"
[default]
currency = "EUR"
base_minor = 250
per_km_minor = 120
per_minute_minor = 30
minimum_minor = 700

[cities.berlin]
currency = "EUR"
base_minor = 250
per_km_minor = 130
per_minute_minor = 30
minimum_minor = 700

[cities.london]
currency = "GBP"
base_minor = 250
per_km_minor = 125
per_minute_minor = 20
minimum_minor = 600

[cities.zurich]
currency = "CHF"
base_minor = 600
per_km_minor = 380
per_minute_minor = 0
minimum_minor = 1500
"#;

/// Alexanderplatz, Berlin: many drivers.
const BERLIN: (f64, f64) = (52.5219, 13.4132);
/// Trafalgar Square, London: one available driver.
const LONDON: (f64, f64) = (51.5080, -0.1281);
/// Paradeplatz, Zurich: no driver at all.
const ZURICH: (f64, f64) = (47.3697, 8.5392);

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Result<TempFile> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let path = std::env::temp_dir().join(format!("hail-{}-{nanos}-{name}", std::process::id()));
        std::fs::write(&path, text)?;
        Ok(TempFile(path))
    }

    fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn now_ms() -> u64 {
    hail_runtime::now_ms()
}

#[tokio::test]
async fn a_bad_tariff_fails_at_start_naming_city_and_field() -> Result<()> {
    let _serial = serial().await;
    let cases = [
        (
            "base_minor = 250\nper_km_minor = 130",
            "base_minor = -5\nper_km_minor = 130",
            "city \"berlin\", field base_minor: -5 is negative",
        ),
        (
            "currency = \"GBP\"",
            "currency = \"pounds\"",
            "city \"london\", field currency: \"pounds\" is not an ISO 4217 code",
        ),
        (
            "minimum_minor = 1500",
            "minimum_minor = 1500\nmaximum_minor = 1000",
            "city \"zurich\", field minimum_minor: minimum_minor 1500 is above maximum_minor 1000",
        ),
        (
            "base_minor = 600\nper_km_minor = 380",
            "base_minor = 0\nper_km_minor = 0",
            "city \"zurich\", field per_km_minor: is 0 and so is base_minor",
        ),
        (
            "per_minute_minor = 20",
            "per_minute_minor = 20\nper_mile_minor = 3",
            "city \"london\", field per_mile_minor: line 21: unknown field `per_mile_minor`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(TARIFFS.contains(from), "{from}");
        let file = TempFile::new("bad-tariffs.toml", &TARIFFS.replacen(from, to, 1))?;
        let args: Vec<String> = [
            "--tariffs".to_string(),
            file.arg(),
            "--nats-url".into(),
            format!("nats://127.0.0.1:{}", free_port()),
            "--metrics-addr".into(),
            format!("127.0.0.1:{}", free_port()),
        ]
        .into();
        let mut p = Process::spawn(&bin_path("hail-pricing")?, &args, &[])?;
        let status = p
            .wait_timeout(Duration::from_secs(10))
            .context("hail-pricing still running 10 s after a bad tariff")?;
        let log = p.log();
        assert!(!status.success(), "exited {status}: {log}");
        assert!(
            log.contains(&format!("--tariffs: tariffs file {}: ", file.arg())),
            "{log}"
        );
        assert!(log.contains(expected), "expected {expected:?} in:\n{log}");
        assert!(
            !log.contains("cannot reach NATS"),
            "validated before connecting: {log}"
        );
    }
    Ok(())
}

fn driver(id: String, city: &str, at: (f64, f64), status: DriverStatus) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(id).expect("driver id"),
        city: City::new(city).expect("city"),
        position: LatLng::new(at.0, at.1).expect("position"),
        status,
        at_ms: now_ms(),
    }
}

async fn publish<E: Event>(js: &jetstream::Context, events: &[E]) -> Result<()> {
    let mut acks = Vec::with_capacity(events.len());
    for e in events {
        let ack = js
            .publish_with_headers(e.subject(), headers::for_event(e), codec::encode(e)?)
            .await?;
        acks.push(ack);
    }
    for a in acks {
        a.await.context("publish not acknowledged")?;
    }
    Ok(())
}

/// `n` requests in `city` picked up at `at`, going ~3 km, requested now.
fn requests(prefix: &str, n: usize, city: &str, at: (f64, f64)) -> Vec<hail_events::RideRequested> {
    (0..n)
        .map(|i| {
            let mut r = sample::ride_requested(&format!("{prefix}-{i}"), city);
            r.ride_id = RideId::new(format!("{prefix}-{i}")).expect("ride id");
            r.pickup = LatLng::new(at.0, at.1).expect("pickup");
            r.dropoff = LatLng::new(at.0 + 0.02, at.1 + 0.03).expect("dropoff");
            r.requested_at_ms = now_ms();
            r
        })
        .collect()
}

/// Every FareQuoted on RIDES, by ride id.
async fn quotes(js: &jetstream::Context) -> Result<HashMap<String, FareQuoted>> {
    let stream = js.get_stream("RIDES").await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: "rides.priced.>".into(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let total = consumer.cached_info().num_pending as usize;
    let mut out = HashMap::with_capacity(total);
    let mut messages = consumer.messages().await?;
    for _ in 0..total {
        let msg = messages.next().await.context("ordered consumer ended")??;
        let q: FareQuoted = codec::decode(&msg.payload)?;
        out.insert(q.ride_id.to_string(), q);
    }
    Ok(out)
}

/// RIDES (1 GiB), DRIVERS and DLQ, before any service has started.
async fn ensure_streams(js: &jetstream::Context) -> Result<()> {
    hail_e2e::rides::ensure_test_streams(js).await
}

async fn wait_drained(js: &jetstream::Context) -> Result<()> {
    wait_until(Duration::from_secs(60), "pricing drained", || {
        rides::drained(js, "pricing")
    })
    .await
}

fn of_prefix<'a>(all: &'a HashMap<String, FareQuoted>, prefix: &str) -> Vec<&'a FareQuoted> {
    all.iter()
        .filter(|(id, _)| id.starts_with(&format!("{prefix}-")))
        .map(|(_, q)| q)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_follows_demand_over_supply_and_fares_follow_the_city() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    ensure_streams(&js).await?;

    // 40 available drivers at Alexanderplatz; in London one available and five busy.
    let mut drivers: Vec<_> = (0..40)
        .map(|i| driver(format!("b{i}"), "berlin", BERLIN, DriverStatus::Available))
        .collect();
    drivers.push(driver(
        "l0".into(),
        "london",
        LONDON,
        DriverStatus::Available,
    ));
    drivers.extend((1..6).map(|i| driver(format!("l{i}"), "london", LONDON, DriverStatus::OnTrip)));
    publish(&js, &drivers).await?;

    let tariffs = TempFile::new("tariffs.toml", TARIFFS)?;
    let svc = Service::spawn_with("pricing", &server.url(), &["--tariffs", &tariffs.arg()])?;
    svc.wait_ready(Duration::from_secs(30)).await?;
    assert_eq!(svc.metric("hail_pricing_drivers_known", &[]).await?, 46.0);
    assert_eq!(
        svc.metric("hail_pricing_drivers_available", &[]).await?,
        41.0
    );

    publish(&js, &requests("ber", 20, "berlin", BERLIN)).await?;
    // One at a time, so each quote counts exactly the requests before it (a
    // quote counts every request the demand feed has read, later ones too).
    for r in requests("lon", 20, "london", LONDON) {
        publish(&js, &[r]).await?;
        wait_drained(&js).await?;
    }
    publish(&js, &requests("zur", 5, "zurich", ZURICH)).await?;
    wait_drained(&js).await?;
    let all = quotes(&js).await?;
    assert_eq!(all.len(), 45, "one quote per request");

    // Ample drivers: 20 requests over 40 drivers never surges.
    let berlin = of_prefix(&all, "ber");
    assert!(
        berlin.iter().all(|q| q.surge == 1.0 && q.currency == "EUR"),
        "{berlin:?}"
    );
    // Scarce: the k-th request sees k requests over 1 driver: 1.0 for the first,
    // then 1.5, 2.0, 2.5 and the 3.0 cap from the fifth on.
    let london = of_prefix(&all, "lon");
    let mut surges: Vec<f64> = london.iter().map(|q| q.surge).collect();
    surges.sort_by(f64::total_cmp);
    assert_eq!(&surges[..5], &[1.0, 1.5, 2.0, 2.5, 3.0], "{surges:?}");
    assert!(surges[5..].iter().all(|s| *s == 3.0), "{surges:?}");
    assert!(london.iter().all(|q| q.currency == "GBP"), "{london:?}");
    // A surged fare is the plain one times the surge.
    let plain = london
        .iter()
        .find(|q| q.surge == 1.0)
        .expect("one plain fare");
    let capped = london
        .iter()
        .find(|q| q.surge == 3.0)
        .expect("a capped fare");
    let tripled = i128::from(plain.amount_minor) * 3;
    assert!(
        (i128::from(capped.amount_minor) - tripled).abs() <= 1,
        "{capped:?} vs 3 × {plain:?}"
    );
    // No driver at all: the cap; the currency is the file's for zurich.
    let zurich = of_prefix(&all, "zur");
    assert!(
        zurich.iter().all(|q| q.surge == 3.0 && q.currency == "CHF"),
        "{zurich:?}"
    );

    assert_eq!(
        svc.metric("hail_pricing_surge_multiplier", &[("city", "berlin")])
            .await?,
        1.0
    );
    assert_eq!(
        svc.metric("hail_pricing_surged_quotes_total", &[("city", "london")])
            .await?,
        19.0
    );

    // Supply is live: 60 more drivers in London bring the surge back to 1.0.
    let relief: Vec<_> = (100..160)
        .map(|i| driver(format!("l{i}"), "london", LONDON, DriverStatus::Available))
        .collect();
    publish(&js, &relief).await?;
    wait_until(
        Duration::from_secs(10),
        "pricing sees the new drivers",
        || async {
            svc.metric("hail_pricing_drivers_available", &[])
                .await
                .is_ok_and(|n| n == 101.0)
        },
    )
    .await?;
    publish(&js, &requests("late", 1, "london", LONDON)).await?;
    wait_drained(&js).await?;
    let late = quotes(&js).await?;
    let late = of_prefix(&late, "late");
    assert_eq!(late.len(), 1);
    // 21 requests over 61 drivers.
    assert_eq!((late[0].surge, late[0].currency.as_str()), (1.0, "GBP"));
    assert_eq!(
        svc.metric("hail_pricing_surge_multiplier", &[("city", "london")])
            .await?,
        1.0
    );
    Ok(())
}

/// The surge of the quote of `ride`, once pricing has answered it.
async fn surge_of(js: &jetstream::Context, ride: &str) -> Result<f64> {
    let all = quotes(js).await?;
    all.get(ride)
        .map(|q| q.surge)
        .with_context(|| format!("no quote for {ride}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_sees_all_demand_and_a_restart_keeps_it() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    ensure_streams(&js).await?;
    // One available driver at Trafalgar Square: the k-th request there sees k
    // requests over 1 driver, surge 1.0, 1.5, 2.0, 2.5, then the 3.0 cap.
    publish(
        &js,
        &[driver(
            "l0".into(),
            "london",
            LONDON,
            DriverStatus::Available,
        )],
    )
    .await?;
    let tariffs = TempFile::new("tariffs-shared.toml", TARIFFS)?;
    let flags = ["--tariffs".to_string(), tariffs.arg()];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut a = Service::spawn_with("pricing", &server.url(), &flags)?;
    let mut b = Service::spawn_with("pricing", &server.url(), &flags)?;
    a.wait_ready(Duration::from_secs(30)).await?;
    b.wait_ready(Duration::from_secs(30)).await?;

    // Two instances share the durable; each quote counts every request before
    // it, whichever instance took those. Counting only its own, an instance
    // would see about half and quote lower.
    let rides = requests("two", 4, "london", LONDON);
    let mut surges = Vec::new();
    for r in rides.iter().cloned() {
        let id = r.ride_id.to_string();
        publish(&js, &[r]).await?;
        wait_drained(&js).await?;
        surges.push(surge_of(&js, &id).await?);
    }
    assert_eq!(surges, [1.0, 1.5, 2.0, 2.5]);
    let (by_a, by_b) = (
        a.processed("RideRequested").await?,
        b.processed("RideRequested").await?,
    );
    assert_eq!(by_a + by_b, 4.0);
    assert!(by_a > 0.0 && by_b > 0.0, "both quoted: {by_a} and {by_b}");
    for svc in [&a, &b] {
        assert_eq!(
            svc.metric("hail_pricing_demand_recorded_total", &[])
                .await?,
            4.0,
            "each instance counted all four"
        );
    }

    // Both gone; a fresh instance rebuilds the window from RIDES: the fifth
    // request sees five, not one.
    a.process.kill();
    b.process.kill();
    a.restart_with(&flags)?;
    a.wait_ready(Duration::from_secs(30)).await?;
    assert_eq!(
        a.metric("hail_pricing_demand_recorded_total", &[]).await?,
        4.0,
        "rebuilt from RIDES at start"
    );
    let fifth = requests("after", 1, "london", LONDON);
    let id = fifth[0].ride_id.to_string();
    publish(&js, &fifth).await?;
    wait_drained(&js).await?;
    assert_eq!(surge_of(&js, &id).await?, 3.0, "5 requests over 1 driver");
    assert_eq!(
        a.metric("hail_pricing_demand_feed_waits_timed_out_total", &[])
            .await?,
        0.0
    );
    Ok(())
}
