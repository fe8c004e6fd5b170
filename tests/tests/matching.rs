//! matching end to end: real nats-server, real `hail-matching` processes.
//!
//! - two processes on one durable never give one driver two rides, answer every
//!   request exactly once, and answer a redelivered request as before;
//! - a completed ride releases its driver for the next request, and a replayed
//!   completion does not release a driver another ride holds;
//! - a cancelled ride (`hail request --cancel`) releases its driver for the next
//!   request, even on a durable made before matching read cancellations, and a
//!   republished request of it gets no driver; a cancellation that overtakes its
//!   request has that request answered unmatched as cancelled;
//! - a process SIGKILLed mid-run leaks no driver, and a restarted one rebuilds the
//!   same index from DRIVERS and the claims bucket.
//! - with a cities file, a pickup outside its city's service area is answered
//!   unmatched as outside_service_area and takes no driver; one inside is matched.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream;
use futures::StreamExt;
use hail_e2e::{rides, serial, services::Service};
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, Event, EventKind, LatLng, RideCancelled,
    RideCompleted, RideId, RideMatched, RideRequested, RideUnmatched, UnmatchedReason, codec,
    headers, sample,
};
use hail_testkit::{NatsServer, wait_until};

const CITY: &str = "berlin";
const CENTRE: (f64, f64) = (52.52, 13.405);
const READY: Duration = Duration::from_secs(30);
const DRAIN: Duration = Duration::from_secs(240);
const AVAILABLE: &str = "hail_matching_drivers_available";
const CLAIMED: &str = "hail_matching_drivers_claimed";

async fn jetstream_of(server: &NatsServer) -> Result<jetstream::Context> {
    hail_e2e::rides::streams(&server.url()).await
}

fn at(dlat: f64, dlon: f64) -> LatLng {
    LatLng::new(CENTRE.0 + dlat, CENTRE.1 + dlon).unwrap()
}

/// Driver `d-<i>` at about ±`deg` degrees around the centre.
fn driver(i: usize, deg: f64, status: DriverStatus) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("d-{i}")).unwrap(),
        city: City::new(CITY).unwrap(),
        position: at(rides::spread(i, 1) * deg, rides::spread(i, 2) * deg),
        status,
        at_ms: 1_800_000_000_000 + i as u64,
    }
}

/// Publishes the test's only driver, `d-0`, available near the centre, and
/// waits until every instance of `services` counts it.
async fn one_driver(js: &jetstream::Context, services: &[&Service]) -> Result<DriverId> {
    publish(js, &[driver(0, 0.001, DriverStatus::Available)], None).await?;
    wait_each(services, AVAILABLE, &[("city", CITY)], 1.0).await?;
    Ok(DriverId::new("d-0")?)
}

/// Waits until the metric equals `want` on each of `services` (each instance
/// keeps its own driver index, fed by the claims bucket).
async fn wait_each(
    services: &[&Service],
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> Result<()> {
    for s in services {
        wait_metric(&[s], name, labels, want).await?;
    }
    Ok(())
}

/// Request `name` with its pickup about 200 m from [`one_driver`]'s driver.
fn nearby_ride(name: &str) -> RideRequested {
    let mut r = sample::ride_requested(name, CITY);
    r.pickup = at(0.002, 0.0);
    r
}

/// Request `<prefix>-<i>` with its pickup about ±`deg` degrees around the centre.
fn request(prefix: &str, i: usize, deg: f64) -> RideRequested {
    let mut r = sample::ride_requested(&format!("{prefix}-{i}"), CITY);
    r.pickup = at(rides::spread(i, 3) * deg, rides::spread(i, 4) * deg);
    r
}

fn completed(ride: &RideId, driver: &DriverId) -> RideCompleted {
    RideCompleted {
        ride_id: ride.clone(),
        city: City::new(CITY).unwrap(),
        driver_id: driver.clone(),
        at_ms: 1_800_000_100_000,
    }
}

/// Publishes events with their standard headers; `again` adds a suffix to the
/// message id, so JetStream stores a second copy of an event already published.
async fn publish<E: Event + Clone>(
    js: &jetstream::Context,
    events: &[E],
    again: Option<&str>,
) -> Result<()> {
    rides::publish_all_with(js, events.iter().cloned(), |e| {
        let mut h = headers::for_event(e);
        if let Some(suffix) = again {
            h.insert(headers::MSG_ID, format!("{}:{suffix}", e.msg_id()).as_str());
        }
        h
    })
    .await
}

/// Every event of type `E` stored in RIDES on `filter`.
async fn stored<E: Event>(js: &jetstream::Context, filter: &str) -> Result<Vec<E>> {
    rides::stored_events(js, hail_events::subjects::RIDES_STREAM, filter).await
}

/// Every answer stored so far.
async fn answers(js: &jetstream::Context) -> Result<(Vec<RideMatched>, Vec<RideUnmatched>)> {
    Ok((
        stored(js, "rides.matched.>").await?,
        stored(js, "rides.unmatched.>").await?,
    ))
}

/// Waits until `n` requests are answered and the durable has nothing left.
async fn wait_answered(js: &jetstream::Context, n: usize) -> Result<()> {
    wait_until(DRAIN, &format!("{n} requests answered"), || async {
        let answered = match answers(js).await {
            Ok((m, u)) => m.len() + u.len(),
            Err(_) => 0,
        };
        answered >= n && rides::drained(js, "matching").await
    })
    .await
}

/// Driver → ride of every claim held in the claims bucket.
async fn held_claims(js: &jetstream::Context) -> Result<HashMap<String, String>> {
    let kv = js.get_key_value("hail_claims").await?;
    let mut keys = kv.keys().await?;
    let mut held = HashMap::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        if let Some(driver) = key.strip_prefix("driver.")
            && let Some(ride) = kv.get(key.as_str()).await?
        {
            held.insert(driver.to_string(), String::from_utf8(ride.to_vec())?);
        }
    }
    Ok(held)
}

/// Every match holds its own driver, no driver twice, and no claim is left over.
async fn check_claims_match(js: &jetstream::Context, matched: &[RideMatched]) -> Result<()> {
    let drivers: HashSet<_> = matched.iter().map(|m| m.driver_id.as_str()).collect();
    ensure!(
        drivers.len() == matched.len(),
        "a driver was given two rides"
    );
    let expected: HashMap<String, String> = matched
        .iter()
        .map(|m| (m.driver_id.to_string(), m.ride_id.to_string()))
        .collect();
    assert_eq!(
        held_claims(js).await?,
        expected,
        "claims bucket vs RideMatched"
    );
    Ok(())
}

/// Waits until the sum of a metric over `services` equals `want`.
async fn wait_metric(
    services: &[&Service],
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> Result<()> {
    let what = format!("{name}{labels:?} = {want}");
    wait_until(Duration::from_secs(30), &what, || async {
        let mut sum = 0.0;
        for s in services {
            match s.metric(name, labels).await {
                Ok(v) => sum += v,
                Err(_) => return false,
            }
        }
        sum == want
    })
    .await
}

fn ids<'a>(it: impl Iterator<Item = &'a RideId>) -> HashSet<&'a str> {
    it.map(|r| r.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_give_one_driver_two_rides() -> Result<()> {
    const DRIVERS: usize = 200;
    const REQUESTS: usize = 1_000;
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    // Drivers within ±0.01°, pickups within ±0.005°: every driver is in range of
    // every pickup (under 2 km), so exactly DRIVERS requests can be matched.
    let drivers: Vec<_> = (0..DRIVERS)
        .map(|i| driver(i, 0.01, DriverStatus::Available))
        .collect();
    publish(&js, &drivers, None).await?;
    let a = Service::spawn("matching", &server.url())?;
    let b = Service::spawn("matching", &server.url())?;
    a.wait_ready(READY).await?;
    b.wait_ready(READY).await?;
    for s in [&a, &b] {
        assert_eq!(
            s.metric(AVAILABLE, &[("city", CITY)]).await?,
            DRIVERS as f64
        );
    }

    // All at once, with 50 of them stored twice (as a publisher retrying after
    // the duplicate window would), so two deliveries of a request race.
    let requests: Vec<_> = (0..REQUESTS).map(|i| request("m", i, 0.005)).collect();
    publish(&js, &requests[..500], None).await?;
    publish(&js, &requests[..50], Some("dup")).await?;
    publish(&js, &requests[500..], None).await?;
    wait_answered(&js, REQUESTS).await?;

    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(matched.len(), DRIVERS, "matches");
    assert_eq!(unmatched.len(), REQUESTS - DRIVERS, "unmatched");
    let (m_ids, u_ids) = (
        ids(matched.iter().map(|m| &m.ride_id)),
        ids(unmatched.iter().map(|u| &u.ride_id)),
    );
    assert_eq!(
        m_ids.len() + u_ids.len(),
        REQUESTS,
        "every request answered exactly once"
    );
    assert!(
        m_ids.is_disjoint(&u_ids),
        "a ride both matched and unmatched"
    );
    assert!(
        unmatched
            .iter()
            .all(|u| u.reason == UnmatchedReason::AllNearbyClaimed)
    );
    assert!(
        matched
            .iter()
            .all(|m| m.pickup_distance_m < 3_000.0 && m.eta_s > 0)
    );
    check_claims_match(&js, &matched).await?;
    let processed = (
        a.processed("RideRequested").await?,
        b.processed("RideRequested").await?,
    );
    assert_eq!(processed.0 + processed.1, (REQUESTS + 50) as f64);
    assert!(
        processed.0 > 0.0 && processed.1 > 0.0,
        "both take work: {processed:?}"
    );
    wait_metric(&[&a, &b], AVAILABLE, &[("city", CITY)], 0.0).await?;

    // Redelivered later: the same answer, taken from the claims bucket.
    let client = async_nats::connect(server.url()).await?;
    let mut seen = client.subscribe(format!("rides.*.{CITY}")).await?;
    let again: Vec<RideRequested> = requests
        .iter()
        .filter(|r| m_ids.contains(r.ride_id.as_str()))
        .take(20)
        .chain(
            requests
                .iter()
                .filter(|r| u_ids.contains(r.ride_id.as_str()))
                .take(20),
        )
        .cloned()
        .collect();
    publish(&js, &again, Some("later")).await?;
    let mut replayed: HashMap<String, Vec<u8>> = HashMap::new();
    tokio::time::timeout(DRAIN, async {
        while replayed.len() < again.len() {
            let msg = seen.next().await.context("subscription ended")?;
            let h = msg.headers.as_ref().context("no headers")?;
            let kind = h
                .get(headers::EVENT)
                .map(|v| EventKind::from_name(v.as_str()));
            if matches!(kind, Some(Ok(EventKind::Matched | EventKind::Unmatched))) {
                let ride = h.get(headers::RIDE_ID).context("no ride id")?;
                replayed.insert(ride.to_string(), msg.payload.to_vec());
            }
        }
        anyhow::Ok(())
    })
    .await
    .context("waiting for the answers to redelivered requests")??;
    for m in &matched {
        if let Some(bytes) = replayed.get(m.ride_id.as_str()) {
            assert_eq!(&codec::decode::<RideMatched>(bytes)?, m, "replayed match");
        }
    }
    for u in &unmatched {
        if let Some(bytes) = replayed.get(u.ride_id.as_str()) {
            assert_eq!(
                &codec::decode::<RideUnmatched>(bytes)?,
                u,
                "replayed unmatched"
            );
        }
    }
    wait_until(DRAIN, "redeliveries acked", || {
        rides::drained(&js, "matching")
    })
    .await?;
    let (matched_after, unmatched_after) = answers(&js).await?;
    assert_eq!(
        (matched_after.len(), unmatched_after.len()),
        (DRIVERS, REQUESTS - DRIVERS)
    );
    let replays = a
        .metric("hail_matching_requests_total", &[("outcome", "replayed")])
        .await?
        + b.metric("hail_matching_requests_total", &[("outcome", "replayed")])
            .await?;
    assert!((40.0..=90.0).contains(&replays), "replayed {replays}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_ride_releases_its_driver() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    let svc = Service::spawn("matching", &server.url())?;
    svc.wait_ready(READY).await?;
    // The only driver arrives while matching runs.
    let d0 = one_driver(&js, &[&svc]).await?;

    let answered = |n: usize| wait_answered(&js, n);
    publish(&js, &[nearby_ride("a")], None).await?;
    answered(1).await?;
    publish(&js, &[nearby_ride("b")], None).await?;
    answered(2).await?;
    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(
        (matched[0].ride_id.as_str(), &matched[0].driver_id),
        ("a", &d0)
    );
    assert_eq!(unmatched[0].ride_id.as_str(), "b");
    assert_eq!(unmatched[0].reason, UnmatchedReason::AllNearbyClaimed);

    publish(&js, &[completed(&matched[0].ride_id, &d0)], None).await?;
    let released = [("outcome", "released")];
    wait_metric(&[&svc], "hail_matching_completions_total", &released, 1.0).await?;
    wait_metric(&[&svc], AVAILABLE, &[("city", CITY)], 1.0).await?;
    publish(&js, &[nearby_ride("c")], None).await?;
    answered(3).await?;
    let (matched, _) = answers(&js).await?;
    assert_eq!(
        (matched[1].ride_id.as_str(), &matched[1].driver_id),
        ("c", &d0)
    );

    // A's completion replayed: d-0 now serves c and must stay claimed.
    publish(&js, &[completed(&matched[0].ride_id, &d0)], Some("replay")).await?;
    let replayed = [("outcome", "already_released")];
    wait_metric(&[&svc], "hail_matching_completions_total", &replayed, 1.0).await?;
    publish(&js, &[nearby_ride("d")], None).await?;
    answered(4).await?;
    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(matched.len(), 2);
    assert_eq!(unmatched[1].ride_id.as_str(), "d");
    check_claims_match(&js, &matched[1..]).await
}

/// Binds the `matching` durable as builds before cancellations did: requests
/// and completions only. Starting matching must widen it.
async fn bind_matching_without_cancellations(js: &jetstream::Context) -> Result<()> {
    let mut spec = hail_runtime::service::Service::Matching.default_consumer_spec();
    spec.filter_subjects
        .retain(|f| f != hail_events::subjects::RIDES_CANCELLED_ALL);
    ensure!(
        spec.filter_subjects.len() == 2,
        "{:?}",
        spec.filter_subjects
    );
    hail_runtime::provision::ensure_consumer(js, &spec).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_ride_releases_its_driver_and_gets_no_other() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    bind_matching_without_cancellations(&js).await?;
    // Two instances share the durable: whichever handles a cancellation, the
    // claims bucket tells the other.
    let a = Service::spawn("matching", &server.url())?;
    let b = Service::spawn("matching", &server.url())?;
    a.wait_ready(READY).await?;
    b.wait_ready(READY).await?;
    let both = [&a, &b];
    let d0 = one_driver(&js, &both).await?;

    // a takes the only driver; b, next to it, finds none.
    publish(&js, &[nearby_ride("a")], None).await?;
    wait_answered(&js, 1).await?;
    publish(&js, &[nearby_ride("b")], None).await?;
    wait_answered(&js, 2).await?;
    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(
        (matched[0].ride_id.as_str(), &matched[0].driver_id),
        ("a", &d0)
    );
    assert_eq!(unmatched[0].ride_id.as_str(), "b");
    assert_eq!(unmatched[0].reason, UnmatchedReason::AllNearbyClaimed);
    wait_each(&both, AVAILABLE, &[("city", CITY)], 0.0).await?;

    // The rider of a cancels, through the CLI: d-0 is free again, and c gets it.
    let out = hail_e2e::cli::hail(
        &server.url(),
        &["request", "--ride", "a", "--city", CITY, "--cancel"],
    )
    .await?;
    assert!(out.contains("RideCancelled"), "{out}");
    let released = [("city", CITY), ("outcome", "released")];
    wait_metric(&both, "hail_matching_cancellations_total", &released, 1.0).await?;
    wait_each(&both, AVAILABLE, &[("city", CITY)], 1.0).await?;
    publish(&js, &[nearby_ride("c")], None).await?;
    wait_answered(&js, 3).await?;
    let (matched, _) = answers(&js).await?;
    assert_eq!(matched.len(), 2, "{matched:?}");
    assert_eq!(
        (matched[1].ride_id.as_str(), &matched[1].driver_id),
        ("c", &d0)
    );

    // a's request and cancellation stored again: a gets no driver, c keeps d-0.
    publish(&js, &[nearby_ride("a")], Some("again")).await?;
    let cancel_a = RideCancelled {
        rider_id: None,
        reason: None,
        ..sample::ride_cancelled("a", CITY)
    };
    publish(&js, &[cancel_a], Some("again")).await?;
    let finished = [("city", CITY), ("outcome", "already_finished")];
    wait_metric(&both, "hail_matching_cancellations_total", &finished, 1.0).await?;
    wait_until(DRAIN, "redeliveries acked", || {
        rides::drained(&js, "matching")
    })
    .await?;

    // d finds d-0 still with c; c completes, and then e's cancellation
    // overtakes its request: e is answered cancelled and takes no driver.
    publish(&js, &[nearby_ride("d")], None).await?;
    wait_answered(&js, 4).await?;
    publish(&js, &[completed(&matched[1].ride_id, &d0)], None).await?;
    wait_each(&both, AVAILABLE, &[("city", CITY)], 1.0).await?;
    publish(&js, &[sample::ride_cancelled("e", CITY)], None).await?;
    let before = [("city", CITY), ("outcome", "before_answer")];
    wait_metric(&both, "hail_matching_cancellations_total", &before, 1.0).await?;
    publish(&js, &[nearby_ride("e")], None).await?;
    wait_answered(&js, 5).await?;

    let (matched, unmatched) = answers(&js).await?;
    let matched_rides: Vec<_> = matched.iter().map(|m| m.ride_id.as_str()).collect();
    assert_eq!(matched_rides, ["a", "c"], "a got no second driver");
    let unmatched: Vec<_> = unmatched
        .iter()
        .map(|u| (u.ride_id.as_str(), u.reason))
        .collect();
    assert_eq!(
        unmatched,
        [
            ("b", UnmatchedReason::AllNearbyClaimed),
            ("d", UnmatchedReason::AllNearbyClaimed),
            ("e", UnmatchedReason::Cancelled),
        ]
    );
    for s in both {
        assert_eq!(s.metric(AVAILABLE, &[("city", CITY)]).await?, 1.0);
    }
    check_claims_match(&js, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pickup_outside_the_service_area_is_unmatched() -> Result<()> {
    let _serial = serial().await;
    // Berlin's area: 0.05° around the centre, about 5.5 km north-south.
    let cities = tempfile::Builder::new().suffix(".toml").tempfile()?;
    let (lat, lon) = CENTRE;
    let ring: Vec<String> = [(-0.05, -0.05), (-0.05, 0.05), (0.05, 0.05), (0.05, -0.05)]
        .iter()
        .map(|(dlat, dlon)| format!("{{ lat = {}, lon = {} }}", lat + dlat, lon + dlon))
        .collect();
    let text = format!(
        "[[city]]\nname = \"{CITY}\"\narea = [{}]\n",
        ring.join(", ")
    );
    std::fs::write(cities.path(), text)?;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    let file = cities.path().display().to_string();
    let flags = ["--cities", &file, "--radius-m", "10000"];
    let svc = Service::spawn_with("matching", &server.url(), &flags)?;
    svc.wait_ready(READY).await?;
    one_driver(&js, &[&svc]).await?;

    // Either side of the northern edge, 11 m apart; the only driver is 5.6 km
    // away, within the radius, so only the area tells the two apart.
    let mut outside = sample::ride_requested("outside", CITY);
    outside.pickup = at(0.0501, 0.0);
    let mut inside = sample::ride_requested("inside", CITY);
    inside.pickup = at(0.0499, 0.0);
    publish(&js, &[outside], None).await?;
    wait_answered(&js, 1).await?;
    publish(&js, &[inside], None).await?;
    wait_answered(&js, 2).await?;

    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(unmatched.len(), 1, "{unmatched:?}");
    assert_eq!(unmatched[0].ride_id.as_str(), "outside");
    assert_eq!(unmatched[0].reason, UnmatchedReason::OutsideServiceArea);
    assert_eq!(matched.len(), 1, "{matched:?}");
    assert_eq!(matched[0].ride_id.as_str(), "inside");
    assert_eq!(matched[0].driver_id, DriverId::new("d-0")?);
    let outcome = [("city", CITY), ("outcome", "outside_service_area")];
    wait_metric(&[&svc], "hail_matching_requests_total", &outcome, 1.0).await?;
    check_claims_match(&js, &matched).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaks_no_driver_and_a_restart_rebuilds_the_index() -> Result<()> {
    const DRIVERS: usize = 300;
    const OFFLINE: usize = 50;
    const REQUESTS: usize = 400;
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    let all: Vec<_> = (0..DRIVERS)
        .map(|i| driver(i, 0.01, DriverStatus::Available))
        .collect();
    publish(&js, &all, None).await?;
    let offline: Vec<_> = (0..OFFLINE)
        .map(|i| DriverLocationUpdated {
            status: DriverStatus::Offline,
            at_ms: 1_900_000_000_000,
            ..all[i].clone()
        })
        .collect();
    publish(&js, &offline, None).await?;
    // Few requests at a time, so that the kill below lands mid-run, with claims
    // half made; the restarted process runs with the default flags.
    let slow = ["--concurrency", "4", "--batch", "8"];
    let mut svc = Service::spawn_with("matching", &server.url(), &slow)?;
    svc.wait_ready(READY).await?;
    let available = (DRIVERS - OFFLINE) as f64;
    assert_eq!(svc.metric(AVAILABLE, &[("city", CITY)]).await?, available);

    // Killed once a quarter of the requests are done, restarted on the same port.
    let requests: Vec<_> = (0..REQUESTS).map(|i| request("k", i, 0.005)).collect();
    publish(&js, &requests, None).await?;
    wait_until(DRAIN, "a quarter processed", || async {
        svc.processed("RideRequested")
            .await
            .is_ok_and(|n| n >= (REQUESTS / 4) as f64)
    })
    .await?;
    svc.process.kill();
    let (pending, unacked) = rides::consumer_backlog(&js, "matching").await?;
    assert!(
        pending + unacked as u64 > 0,
        "killed after the run, not during it"
    );
    svc.restart()?;
    svc.wait_ready(READY).await?;
    wait_answered(&js, REQUESTS).await?;
    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(
        matched.len(),
        DRIVERS - OFFLINE,
        "every available driver matched once"
    );
    assert_eq!(unmatched.len(), REQUESTS - matched.len());
    let m_ids = ids(matched.iter().map(|m| &m.ride_id));
    assert_eq!(
        m_ids.len() + ids(unmatched.iter().map(|u| &u.ride_id)).len(),
        REQUESTS
    );
    check_claims_match(&js, &matched).await?;

    // Release 30 drivers, then SIGKILL and restart: the index comes back the same.
    let done: Vec<_> = matched[..30]
        .iter()
        .map(|m| completed(&m.ride_id, &m.driver_id))
        .collect();
    publish(&js, &done, None).await?;
    wait_metric(&[&svc], AVAILABLE, &[("city", CITY)], 30.0).await?;
    let before = (
        svc.metric(AVAILABLE, &[]).await?,
        svc.metric(CLAIMED, &[]).await?,
    );
    assert_eq!(before, (30.0, available - 30.0));
    svc.process.kill();
    svc.restart()?;
    svc.wait_ready(READY).await?;
    let after = (
        svc.metric(AVAILABLE, &[]).await?,
        svc.metric(CLAIMED, &[]).await?,
    );
    assert_eq!(
        after, before,
        "(available, claimed) before and after the restart"
    );

    // The released drivers, and only they, take the next requests.
    let next: Vec<_> = (0..30).map(|i| request("n", i, 0.005)).collect();
    publish(&js, &next, None).await?;
    wait_answered(&js, REQUESTS + 30).await?;
    let (matched_now, _) = answers(&js).await?;
    let fresh: HashSet<_> = matched_now
        .iter()
        .filter(|m| m.ride_id.as_str().starts_with("n-"))
        .map(|m| m.driver_id.as_str())
        .collect();
    let released: HashSet<_> = matched[..30].iter().map(|m| m.driver_id.as_str()).collect();
    assert_eq!(fresh, released);
    Ok(())
}
