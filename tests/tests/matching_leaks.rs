//! matching never leaks a driver: real nats-server, two real `hail-matching`
//! processes on the durable, the claim TTL (`--claim-ttl`) set to seconds.
//!
//! - a ride that never completes gives its driver back within the claim TTL; its
//!   request again claims the driver again and repeats the same answer; the next
//!   nearby request gets the driver, and the first request again then gets no
//!   second, different answer (its driver serves another ride: nothing is published);
//! - a request dead-lettered after its claim (its `RideMatched` could not be
//!   stored) gives its driver back within the claim TTL; once another ride has
//!   that driver, its replay from the DLQ is matched afresh, once, since RIDES
//!   holds no answer of it;
//! - claims left behind by a commit or a release that failed (written as matching
//!   writes them) are given back within the claim TTL, and a late redelivery of the
//!   request whose commit failed is matched once.
//!
//! A cancellation releasing its driver for the next nearby request is in
//! `matching.rs` (`a_cancelled_ride_releases_its_driver_and_gets_no_other`).

use std::{collections::HashMap, time::Duration};

use anyhow::{Result, ensure};
use async_nats::jetstream;
use futures::StreamExt;
use hail_e2e::{rides, serial, services::Service};
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, Event, LatLng, RideMatched, RideRequested,
    RideUnmatched, UnmatchedReason, headers, sample, subjects,
};
use hail_matching::{
    claims::{Claims, DriverClaim, Lifetimes},
    record::{Pickup, RideRecord},
};
use hail_testkit::{NatsServer, wait_until};

const CITY: &str = "berlin";
const CENTRE: (f64, f64) = (52.52, 13.405);
const READY: Duration = Duration::from_secs(30);
/// The claim TTL of the matching processes under test.
const CLAIM_TTL: &str = "3s";
/// How long a test waits for a driver to be offered again: the claim TTL, plus
/// the server's expiry sweep and a loaded CI machine.
const FREED: Duration = Duration::from_secs(30);
const DRAIN: Duration = Duration::from_secs(120);
const AVAILABLE: &str = "hail_matching_drivers_available";
const REQUESTS: &str = "hail_matching_requests_total";

fn at(dlat: f64, dlon: f64) -> LatLng {
    LatLng::new(CENTRE.0 + dlat, CENTRE.1 + dlon).unwrap()
}

/// Driver `d-<i>`, available, about 100·(i+1) m north of the centre.
fn driver(i: usize) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("d-{i}")).unwrap(),
        city: City::new(CITY).unwrap(),
        position: at(0.001 * (i + 1) as f64, 0.0),
        status: DriverStatus::Available,
        at_ms: 1_800_000_000_000 + i as u64,
    }
}

/// Request `name` with its pickup at the centre, near every [`driver`].
fn nearby_ride(name: &str) -> RideRequested {
    let mut r = sample::ride_requested(name, CITY);
    r.pickup = at(0.0, 0.0);
    r
}

/// Publishes events with their standard headers; `again` adds a suffix to the
/// message id, so JetStream stores a second copy (a publisher's retry, a replay).
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

/// Every answer stored in RIDES so far.
async fn answers(js: &jetstream::Context) -> Result<(Vec<RideMatched>, Vec<RideUnmatched>)> {
    let stream = subjects::RIDES_STREAM;
    Ok((
        rides::stored_events(js, stream, subjects::RIDES_MATCHED_ALL).await?,
        rides::stored_events(js, stream, subjects::RIDES_UNMATCHED_ALL).await?,
    ))
}

/// Waits until `n` answers are stored and the durable has nothing left.
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

/// `(ride, driver)` of every stored match, in order.
fn pairs(matched: &[RideMatched]) -> Vec<(&str, &str)> {
    matched
        .iter()
        .map(|m| (m.ride_id.as_str(), m.driver_id.as_str()))
        .collect()
}

/// Driver → ride of every claim held in the claims bucket.
async fn held_claims(js: &jetstream::Context) -> Result<HashMap<String, String>> {
    let kv = js.get_key_value(hail_matching::claims::BUCKET).await?;
    let mut keys = kv.keys().await?;
    let mut held = HashMap::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        if let Some(driver) = key.strip_prefix(hail_matching::claims::DRIVER_PREFIX)
            && let Some(ride) = kv.get(key.as_str()).await?
        {
            held.insert(driver.to_string(), String::from_utf8(ride.to_vec())?);
        }
    }
    Ok(held)
}

/// Waits until each of `services` reports the metric at `want`.
async fn wait_each(
    services: &[&Service],
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
    within: Duration,
) -> Result<()> {
    for s in services {
        let what = format!("{name}{labels:?} = {want} on port {}", s.port);
        wait_until(within, &what, || async {
            s.metric(name, labels).await.is_ok_and(|v| v == want)
        })
        .await?;
    }
    Ok(())
}

/// Waits until the metric summed over `services` is `want`.
async fn wait_sum(
    services: &[&Service],
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> Result<()> {
    let what = format!("{name}{labels:?} = {want} in all");
    wait_until(READY, &what, || async {
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

/// Two matching processes on the durable with `flags`, ready.
async fn two_matchings(server: &NatsServer, flags: &[&str]) -> Result<(Service, Service)> {
    let a = Service::spawn_with("matching", &server.url(), flags)?;
    let b = Service::spawn_with("matching", &server.url(), flags)?;
    a.wait_ready(READY).await?;
    b.wait_ready(READY).await?;
    Ok((a, b))
}

/// Waits until every driver is offered again by both processes and the bucket
/// holds no claim: nothing released them but the claim TTL.
async fn wait_all_free(js: &jetstream::Context, both: &[&Service], drivers: f64) -> Result<()> {
    wait_each(both, AVAILABLE, &[("city", CITY)], drivers, FREED).await?;
    let held = held_claims(js).await?;
    ensure!(held.is_empty(), "claims still held: {held:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ride_that_never_completes_frees_its_driver_within_the_claim_ttl() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    let (mut a, mut b) = two_matchings(&server, &["--claim-ttl", CLAIM_TTL]).await?;
    publish(&js, &[driver(0)], None).await?;
    wait_each(&[&a, &b], AVAILABLE, &[("city", CITY)], 1.0, READY).await?;

    // r1 takes the only driver and never completes.
    publish(&js, &[nearby_ride("r1")], None).await?;
    wait_answered(&js, 1).await?;
    let (first, _) = answers(&js).await?;
    assert_eq!(pairs(&first), [("r1", "d-0")]);
    wait_all_free(&js, &[&a, &b], 1.0).await?;

    // r1's request again while d-0 is free: r1 claims it again and repeats its
    // match, which JetStream stores once.
    publish(&js, &[nearby_ride("r1")], Some("early")).await?;
    wait_sum(&[&a, &b], REQUESTS, &[("outcome", "replayed")], 1.0).await?;
    wait_until(DRAIN, "the replay acked", || {
        rides::drained(&js, "matching")
    })
    .await?;
    assert_eq!(answers(&js).await?.0, first, "r1's answer unchanged");
    wait_all_free(&js, &[&a, &b], 1.0).await?;

    // From here on claims last the default 2 h, so the next claim stays put.
    a.restart()?;
    b.restart()?;
    a.wait_ready(READY).await?;
    b.wait_ready(READY).await?;
    let both = [&a, &b];
    wait_each(&both, AVAILABLE, &[("city", CITY)], 1.0, READY).await?;
    publish(&js, &[nearby_ride("r2")], None).await?;
    wait_answered(&js, 2).await?;
    wait_each(&both, AVAILABLE, &[("city", CITY)], 0.0, READY).await?;

    // r1's request again, after its claim expired and d-0 went to r2: r1 keeps
    // its one answer and r2 its driver.
    publish(&js, &[nearby_ride("r1")], Some("replay")).await?;
    wait_sum(&both, REQUESTS, &[("outcome", "lapsed")], 1.0).await?;
    wait_until(DRAIN, "the replay acked", || {
        rides::drained(&js, "matching")
    })
    .await?;
    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(pairs(&matched), [("r1", "d-0"), ("r2", "d-0")]);
    assert_eq!(matched[0], first[0], "r1's answer unchanged");
    assert!(unmatched.is_empty(), "{unmatched:?}");
    let held = held_claims(&js).await?;
    assert_eq!(held, HashMap::from([("d-0".into(), "r2".into())]));
    Ok(())
}

/// RIDES without the matched subjects, so no `RideMatched` can be stored (and
/// back with `restore`).
async fn refuse_matches(js: &jetstream::Context, restore: bool) -> Result<()> {
    let mut stream = js.get_stream(subjects::RIDES_STREAM).await?;
    let mut config = stream.info().await?.config.clone();
    config.subjects = if restore {
        vec![subjects::RIDES_ALL.into(), subjects::FENCES_ALL.into()]
    } else {
        [
            subjects::RIDES_REQUESTED_ALL,
            subjects::RIDES_UNMATCHED_ALL,
            subjects::RIDES_PRICED_ALL,
            subjects::RIDES_SCREENED_ALL,
            subjects::RIDES_COMPLETED_ALL,
            subjects::RIDES_CANCELLED_ALL,
            subjects::FENCES_ALL,
        ]
        .map(String::from)
        .to_vec()
    };
    js.update_stream(config).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_request_frees_its_driver_and_its_replay_is_answered_once() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    let flags = [
        "--claim-ttl",
        CLAIM_TTL,
        "--max-deliver",
        "2",
        "--backoff",
        "1s",
    ];
    let (mut a, mut b) = two_matchings(&server, &flags).await?;
    let both = [&a, &b];
    publish(&js, &[driver(0)], None).await?;
    wait_each(&both, AVAILABLE, &[("city", CITY)], 1.0, READY).await?;

    // r1 claims d-0, but its RideMatched cannot be stored: dead-lettered.
    refuse_matches(&js, false).await?;
    publish(&js, &[nearby_ride("r1")], None).await?;
    wait_until(DRAIN, "r1 dead-lettered", || async {
        rides::dead_letters(&js, "matching")
            .await
            .is_ok_and(|l| l.len() == 1 && l[0].0 == "max_deliveries")
    })
    .await?;
    wait_sum(&both, REQUESTS, &[("outcome", "matched")], 1.0).await?;
    wait_all_free(&js, &both, 1.0).await?;
    refuse_matches(&js, true).await?;
    assert_eq!(answers(&js).await?.0.len(), 0, "no answer was stored");

    // From here on claims last the default 2 h. d-0 goes to r2 — in another
    // city, so that even while RIDES has one match subject per city, r1's holds
    // no match at all.
    let flags = ["--max-deliver", "2", "--backoff", "1s"];
    a.restart_with(&flags)?;
    b.restart_with(&flags)?;
    a.wait_ready(READY).await?;
    b.wait_ready(READY).await?;
    let both = [&a, &b];
    publish(&js, &[driver(1)], None).await?;
    wait_each(&both, AVAILABLE, &[("city", CITY)], 2.0, READY).await?;
    let mut r2 = sample::ride_requested("r2", "paris");
    r2.pickup = at(0.0, 0.0);
    publish(&js, &[r2], None).await?;
    wait_answered(&js, 1).await?;

    // r1 replayed from the DLQ: its recorded driver has another ride and RIDES
    // holds no match of r1, so r1 is matched afresh, once.
    let replay = ["dlq", "replay", "--all", "--service", "matching"];
    hail_e2e::cli::hail(&server.url(), &replay).await?;
    wait_answered(&js, 2).await?;
    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(pairs(&matched), [("r2", "d-0"), ("r1", "d-1")]);
    assert!(unmatched.is_empty(), "{unmatched:?}");
    let held = held_claims(&js).await?;
    let want = [("d-0", "r2"), ("d-1", "r1")].map(|(d, r)| (d.to_string(), r.to_string()));
    assert_eq!(held, HashMap::from(want));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_a_failed_commit_or_release_left_are_freed_within_the_claim_ttl() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    let (a, b) = two_matchings(&server, &["--claim-ttl", CLAIM_TTL]).await?;
    let both = [&a, &b];
    publish(&js, &[driver(0), driver(1)], None).await?;
    wait_each(&both, AVAILABLE, &[("city", CITY)], 2.0, READY).await?;

    // What matching leaves when no delivery finishes the job, written through
    // its own claims layer with the processes' TTL: r1 claimed d-0 but its commit
    // failed (the record stays pending); x lost d-1 to a conflict and its release
    // failed (x was answered unmatched).
    let lifetimes = Lifetimes {
        claim_ttl: Duration::from_secs(3),
        forget_after: Duration::from_secs(24 * 3600),
    };
    let claims = Claims::open(&js, 1, lifetimes).await?;
    let (r1, x) = (nearby_ride("r1").ride_id, nearby_ride("x").ride_id);
    let pending = RideRecord::Pending(Pickup {
        driver_id: DriverId::new("d-0")?,
        distance_m: 111.0,
        eta_s: 20,
        matched_at_ms: 1_800_000_000_000,
    });
    claims.write_ride(&r1, &pending, 0).await?;
    let claimed = claims.claim_driver(&DriverId::new("d-0")?, &r1, 0).await?;
    ensure!(matches!(claimed, DriverClaim::Won { .. }), "{claimed:?}");
    let unmatched = RideRecord::Unmatched {
        reason: UnmatchedReason::AllNearbyClaimed,
        at_ms: 1_800_000_000_000,
    };
    claims.write_ride(&x, &unmatched, 0).await?;
    let claimed = claims.claim_driver(&DriverId::new("d-1")?, &x, 0).await?;
    ensure!(matches!(claimed, DriverClaim::Won { .. }), "{claimed:?}");
    wait_all_free(&js, &both, 2.0).await?;

    // r1's request redelivered late: its pending claim lapsed, so it is matched
    // afresh — once, to the nearest driver.
    publish(&js, &[nearby_ride("r1")], None).await?;
    wait_answered(&js, 1).await?;
    let (matched, unmatched) = answers(&js).await?;
    assert_eq!(pairs(&matched), [("r1", "d-0")]);
    assert!(unmatched.is_empty(), "{unmatched:?}");
    Ok(())
}
