//! analytics counts exactly across crashes: SIGKILLed at random moments while
//! 20,000 rides stream in, its stored totals (read with the real `hail
//! analytics --json`) still equal exactly what was published. And a second
//! instance cannot silently overwrite the first one's checkpoint. Some rides are
//! cancelled (`RideCancelled`, and `RideUnmatched` with reason `cancelled`), and
//! those are counted per city too.

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, context::PublishAckFuture};
use hail_e2e::{rides, serial, services::Service};
use hail_events::{
    DriverId, Event, RideCancelled, RideCompleted, RideMatched, RideScreened, RideUnmatched,
    RiderId, UnmatchedReason, Verdict, codec, headers, sample, subjects,
};
use hail_testkit::{NatsServer, bin_path, wait_until};
use serde_json::Value;

const RIDES: usize = 20_000;
const KILLS: usize = 5;
const DRAIN: Duration = Duration::from_secs(300);

/// What the published events must add up to, per city.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expected {
    requests: u64,
    matched: u64,
    no_driver_in_radius: u64,
    all_nearby_claimed: u64,
    unmatched_cancelled: u64,
    priced: u64,
    fare_sum_minor: u64,
    allow: u64,
    review: u64,
    block: u64,
    completed: u64,
    cancelled: u64,
}

/// splitmix64: a seeded, reproducible choice of kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn seed() -> u64 {
    std::env::var("HAIL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(hail_runtime::now_ms)
}

async fn js_of(server: &NatsServer) -> Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(server.url()).await?))
}

async fn send<E: Event>(js: &jetstream::Context, e: &E) -> Result<PublishAckFuture> {
    Ok(js
        .publish_with_headers(e.subject(), headers::for_event(e), codec::encode(e)?)
        .await?)
}

/// Ride `i`'s events (request, match or not, quote, verdict, maybe a
/// cancellation or a completion),
/// published in order; counts them into `expected`.
async fn publish_ride(
    js: &jetstream::Context,
    i: usize,
    expected: &mut BTreeMap<String, Expected>,
    acks: &mut Vec<PublishAckFuture>,
) -> Result<()> {
    let req = rides::ride("exact", i);
    let x = expected.entry(req.city.to_string()).or_default();
    let (ride_id, city) = (req.ride_id.clone(), req.city.clone());
    acks.push(send(js, &req).await?);
    x.requests += 1;
    let matched = i % 10 != 3;
    if matched {
        acks.push(send(js, &ride_matched(&req, i)).await?);
        x.matched += 1;
    } else {
        let reason = if i % 20 == 3 {
            x.no_driver_in_radius += 1;
            UnmatchedReason::NoDriverInRadius
        } else if i % 40 == 13 {
            x.unmatched_cancelled += 1;
            UnmatchedReason::Cancelled
        } else {
            x.all_nearby_claimed += 1;
            UnmatchedReason::AllNearbyClaimed
        };
        let e = RideUnmatched {
            ride_id: ride_id.clone(),
            city: city.clone(),
            reason,
            requested_at_ms: req.requested_at_ms,
            at_ms: req.requested_at_ms + 30,
        };
        acks.push(send(js, &e).await?);
    }
    let mut fare = sample::fare_quoted(ride_id.as_str(), city.as_str());
    fare.amount_minor = 700 + (i as u64 % 50) * 97;
    fare.surge = [1.0, 1.2, 1.6, 2.4][i % 4];
    acks.push(send(js, &fare).await?);
    x.priced += 1;
    x.fare_sum_minor += fare.amount_minor;
    let verdict = match i {
        _ if i.is_multiple_of(13) => Verdict::Block,
        _ if i.is_multiple_of(7) => Verdict::Review,
        _ => Verdict::Allow,
    };
    match verdict {
        Verdict::Allow => x.allow += 1,
        Verdict::Review => x.review += 1,
        Verdict::Block => x.block += 1,
    }
    acks.push(send(js, &ride_screened(&req, verdict)).await?);
    if matched && i % 11 == 5 {
        let cancel = RideCancelled {
            ride_id,
            city,
            rider_id: Some(req.rider_id.clone()),
            at_ms: req.requested_at_ms + 60_000,
            reason: None,
        };
        acks.push(send(js, &cancel).await?);
        x.cancelled += 1;
    } else if matched && i.is_multiple_of(3) {
        let done = RideCompleted {
            ride_id,
            city,
            driver_id: DriverId::new(format!("d-{i}"))?,
            at_ms: req.requested_at_ms + 600_000,
        };
        acks.push(send(js, &done).await?);
        x.completed += 1;
    }
    Ok(())
}

fn ride_matched(req: &hail_events::RideRequested, i: usize) -> RideMatched {
    RideMatched {
        ride_id: req.ride_id.clone(),
        city: req.city.clone(),
        driver_id: DriverId::new(format!("d-{i}")).expect("driver id"),
        pickup_distance_m: 450.0,
        eta_s: 90,
        requested_at_ms: req.requested_at_ms,
        matched_at_ms: req.requested_at_ms + (i as u64 % 400) * 7,
    }
}

fn ride_screened(req: &hail_events::RideRequested, verdict: Verdict) -> RideScreened {
    RideScreened {
        ride_id: req.ride_id.clone(),
        city: req.city.clone(),
        rider_id: RiderId::new(req.rider_id.as_str()).expect("rider id"),
        score: 0.1,
        verdict,
        rules: vec![],
        requested_at_ms: req.requested_at_ms,
        at_ms: req.requested_at_ms + 20,
    }
}

/// Publishes rides `from..to`, PubAcks awaited in windows of 1,000.
async fn publish_rides(
    js: &jetstream::Context,
    from: usize,
    to: usize,
    expected: &mut BTreeMap<String, Expected>,
) -> Result<()> {
    let mut acks = Vec::with_capacity(1_200);
    for i in from..to {
        publish_ride(js, i, expected, &mut acks).await?;
        if acks.len() >= 1_000 {
            for a in acks.drain(..) {
                a.await.context("publish not acknowledged")?;
            }
        }
    }
    for a in acks {
        a.await.context("publish not acknowledged")?;
    }
    Ok(())
}

/// Highest RIDES sequence delivered to the `analytics` durable so far.
async fn delivered_seq(js: &jetstream::Context) -> u64 {
    let info = async {
        let s = js.get_stream(subjects::RIDES_STREAM).await?;
        let info = s.consumer_info("analytics").await?;
        Ok::<_, async_nats::Error>(info.delivered.stream_sequence)
    };
    info.await.unwrap_or(0)
}

/// `hail analytics --json`, run as the real binary.
async fn hail_analytics_json(server: &NatsServer) -> Result<Value> {
    let out = tokio::process::Command::new(bin_path("hail")?)
        .args(["--nats-url", &server.url(), "analytics", "--json"])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "hail analytics failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Every figure of `got` (one city of the report) equals `want`.
fn assert_city(name: &str, got: &Value, want: &Expected) {
    let n = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
    let fares = &got["fares_minor"]["EUR"];
    let found = Expected {
        requests: n(&got["requests"]),
        matched: n(&got["matched"]),
        no_driver_in_radius: n(&got["unmatched_by_reason"]["no_driver_in_radius"]),
        all_nearby_claimed: n(&got["unmatched_by_reason"]["all_nearby_claimed"]),
        unmatched_cancelled: n(&got["unmatched_by_reason"]["cancelled"]),
        priced: n(&got["priced"]),
        fare_sum_minor: fares["sum"].as_f64().unwrap_or(-1.0) as u64,
        allow: n(&got["verdicts"]["allow"]),
        review: n(&got["verdicts"]["review"]),
        block: n(&got["verdicts"]["block"]),
        completed: n(&got["completed"]),
        cancelled: n(&got["cancelled"]),
    };
    assert_eq!(&found, want, "{name}: {got}");
    assert_eq!(n(&fares["count"]), want.priced, "{name} fare count");
    assert_eq!(n(&got["surge"]["count"]), want.priced, "{name} surge count");
    assert_eq!(
        n(&got["time_to_match_ms"]["count"]),
        want.matched,
        "{name} time-to-match count"
    );
    assert_eq!(
        n(&got["unmatched"]),
        want.no_driver_in_radius + want.all_nearby_claimed + want.unmatched_cancelled
    );
}

fn sum(expected: &BTreeMap<String, Expected>) -> Expected {
    expected.values().fold(Expected::default(), |mut a, e| {
        a.requests += e.requests;
        a.matched += e.matched;
        a.no_driver_in_radius += e.no_driver_in_radius;
        a.all_nearby_claimed += e.all_nearby_claimed;
        a.unmatched_cancelled += e.unmatched_cancelled;
        a.priced += e.priced;
        a.fare_sum_minor += e.fare_sum_minor;
        a.allow += e.allow;
        a.review += e.review;
        a.block += e.block;
        a.completed += e.completed;
        a.cancelled += e.cancelled;
        a
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_are_exact_after_five_sigkills_under_load() -> Result<()> {
    let _serial = serial().await;
    let seed = seed();
    println!("kill moments seed: {seed} (rerun with HAIL_TEST_SEED={seed})");
    let server = NatsServer::start()?;
    let mut svc = Service::spawn("analytics", &server.url())?;
    svc.wait_ready(Duration::from_secs(30)).await?;
    let js = js_of(&server).await?;

    // About 4.3 messages per ride; kill when analytics has been handed the
    // message at each chosen sequence, somewhere in 5%..90% of the run.
    let approx_total = RIDES as u64 * 43 / 10;
    let mut rng = Rng(seed);
    let mut moments: Vec<u64> = (0..KILLS)
        .map(|_| approx_total / 20 + rng.next() % (approx_total * 85 / 100))
        .collect();
    moments.sort_unstable();
    println!("kill when analytics was delivered sequence {moments:?}");

    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            let mut expected = BTreeMap::new();
            publish_rides(&js, 0, RIDES, &mut expected).await?;
            Ok::<_, anyhow::Error>(expected)
        })
    };
    for (k, at) in moments.iter().enumerate() {
        let what = format!("analytics delivered sequence {at}");
        wait_until(DRAIN, &what, || async { delivered_seq(&js).await >= *at }).await?;
        svc.process.kill();
        println!(
            "kill {}: SIGKILL at delivered sequence {}",
            k + 1,
            delivered_seq(&js).await
        );
        svc.restart()?;
        svc.wait_ready(Duration::from_secs(30)).await?;
    }
    let expected = publisher.await??;
    wait_until(DRAIN, "analytics drained", || {
        rides::drained(&js, "analytics")
    })
    .await?;

    let report = hail_analytics_json(&server).await?;
    for (city, want) in &expected {
        assert_city(city, &report["cities"][city], want);
    }
    let all = sum(&expected);
    assert_eq!(all.requests, RIDES as u64);
    assert_city("all", &report["all"], &all);
    assert_eq!(
        report["cities"].as_object().map(|c| c.len()),
        Some(expected.len()),
        "{report}"
    );
    let exported = svc
        .metric("hail_analytics_events_total", &[("event", "RideRequested")])
        .await?;
    assert_eq!(exported, RIDES as f64, "exported request total");
    let exported = svc
        .metric("hail_analytics_events_total", &[("event", "RideCancelled")])
        .await?;
    assert!(all.cancelled > 0, "the load cancels some rides");
    assert_eq!(
        exported, all.cancelled as f64,
        "exported cancellation total"
    );
    let dead = rides::dead_letters(&js, "analytics").await?;
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_fails_its_compare_and_set_and_exits() -> Result<()> {
    const FIRST: usize = 500;
    const MORE: usize = 3_000;
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let first = Service::spawn("analytics", &server.url())?;
    first.wait_ready(Duration::from_secs(30)).await?;
    let js = js_of(&server).await?;
    let mut expected = BTreeMap::new();
    publish_rides(&js, 0, FIRST, &mut expected).await?;
    wait_until(DRAIN, "first instance drained", || {
        rides::drained(&js, "analytics")
    })
    .await?;

    let second = Service::spawn("analytics", &server.url())?;
    second.wait_ready(Duration::from_secs(30)).await?;
    publish_rides(&js, FIRST, FIRST + MORE, &mut expected).await?;
    let both = Mutex::new([first, second]);
    let exited = |svcs: &mut [Service; 2]| -> Vec<usize> {
        (0..2).filter(|i| !svcs[*i].process.is_running()).collect()
    };
    wait_until(DRAIN, "one instance to exit", || async {
        !exited(&mut both.lock().unwrap()).is_empty()
    })
    .await?;
    wait_until(DRAIN, "the survivor drained", || {
        rides::drained(&js, "analytics")
    })
    .await?;

    let mut svcs = both.into_inner().unwrap();
    let gone = exited(&mut svcs);
    assert_eq!(gone.len(), 1, "exactly one instance exits");
    let loser = &mut svcs[gone[0]].process;
    let status = loser.wait_timeout(Duration::ZERO).context("exit status")?;
    assert!(!status.success(), "the loser exits with an error: {status}");
    let log = loser.log();
    assert!(
        log.contains("another analytics instance is writing"),
        "loser log:\n{log}"
    );
    let report = hail_analytics_json(&server).await?;
    for (city, want) in &expected {
        assert_city(city, &report["cities"][city], want);
    }
    assert_eq!(report["all"]["requests"], (FIRST + MORE) as u64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_passes_what_is_never_counted_and_the_cli_reads_it_while_down() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = js_of(&server).await?;
    hail_e2e::rides::ensure_test_streams(&js).await?;
    let mut expected = BTreeMap::new();
    publish_rides(&js, 0, 150, &mut expected).await?;
    // A poison message: dead-lettered, settled without counting.
    rides::publish_raw(&js, "rides.requested.berlin", b"\xc1".to_vec(), None).await?;
    // A request deleted before analytics sees it: only the consumer's ack
    // floor tells analytics that this hole is settled.
    let gone = sample::ride_requested("gone", "berlin");
    let payload = codec::encode(&gone)?.to_vec();
    let seq = rides::publish_raw(&js, &gone.subject(), payload, Some("RideRequested")).await?;
    js.get_stream(subjects::RIDES_STREAM)
        .await?
        .delete_message(seq)
        .await?;
    publish_rides(&js, 150, 300, &mut expected).await?;

    let fast_refresh = ["--ack-floor-refresh", "200ms"];
    let mut svc = Service::spawn_with("analytics", &server.url(), &fast_refresh)?;
    svc.wait_ready(Duration::from_secs(30)).await?;
    wait_until(DRAIN, "analytics drained", || {
        rides::drained(&js, "analytics")
    })
    .await?;
    let last = js
        .get_stream(subjects::RIDES_STREAM)
        .await?
        .get_info()
        .await?
        .state
        .last_sequence;
    wait_until(DRAIN, "the checkpoint covers every sequence", || async {
        hail_analytics_json(&server)
            .await
            .is_ok_and(|r| r["checkpoint"]["covered_through_seq"] == last)
    })
    .await?;
    let status = svc.process.terminate(Duration::from_secs(15))?;
    assert!(
        status.success(),
        "clean stop: {status}\n{}",
        svc.process.log()
    );

    let report = hail_analytics_json(&server).await?;
    assert_city("all", &report["all"], &sum(&expected));
    assert_eq!(report["checkpoint"]["covered_runs_above"], 0, "{report}");
    let table = tokio::process::Command::new(bin_path("hail")?)
        .args(["--nats-url", &server.url(), "analytics"])
        .output()
        .await?;
    let text = String::from_utf8(table.stdout)?;
    assert!(table.status.success(), "{text}");
    for city in rides::CITIES.iter().chain(&["all"]) {
        assert!(
            text.lines().any(|l| l.starts_with(city)),
            "no row for {city}:\n{text}"
        );
    }
    assert_eq!(rides::dead_letters(&js, "analytics").await?.len(), 1);
    Ok(())
}
