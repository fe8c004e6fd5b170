//! The gateway's API in-process, in front of a real nats-server: a ride is
//! answered 202 only once RIDES holds it, an Idempotency-Key gives one ride,
//! a status is read from the ride view, a cancellation is published, and a
//! broker that does not answer (SIGSTOP) or is gone (SIGKILL) gives 503 with
//! Retry-After, never a 202.

mod common;

use std::time::Duration;

use axum::http::{StatusCode, header};
use common::{Harness, get, post, request};
use hail_events::{
    AnyEvent, DriverId, RideId, UnmatchedReason,
    ride_view::{self, Match, RideState, RideView},
};
use hail_testkit::wait_until;
use nix::{sys::signal, unistd::Pid};

const TIMEOUT: Duration = Duration::from_secs(2);

fn requested(events: &[AnyEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AnyEvent::Requested(r) => Some(r.ride_id.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_ride_is_accepted_once_rides_holds_it() {
    let h = Harness::start(TIMEOUT).await;
    let router = h.router();
    let (status, res) = post(
        &router,
        "/v1/rides",
        &[("content-type", "application/json")],
        common::body("rider-1"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let location = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let body = common::json(res).await;
    let ride = body["ride_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/rides/{ride}"));
    assert_eq!(body["status_url"], location.as_str());
    // The 202 came after the PubAck: RIDES holds it already, no waiting.
    let events = h.rides("rides.requested.>").await;
    assert_eq!(requested(&events), std::slice::from_ref(&ride));
    let AnyEvent::Requested(r) = &events[0] else {
        unreachable!()
    };
    assert_eq!(r.rider_id.as_str(), "rider-1");
    assert_eq!(r.city.as_str(), "berlin");
    assert_eq!((r.pickup.lat(), r.pickup.lon()), (52.52, 13.405));
    // The view does not have it yet: the gateway knows it accepted it.
    let (status, s) = get(&router, &location).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["state"], "requested");
    assert_eq!(s["city"], "berlin");
}

#[tokio::test]
async fn an_idempotency_key_gives_one_ride_also_to_concurrent_retries_and_after_a_restart() {
    let h = Harness::start(TIMEOUT).await;
    let router = h.router();
    let (s1, b1) = request(&router, "rider-2", Some("key-1")).await;
    assert_eq!(s1, StatusCode::ACCEPTED, "{b1}");
    let (s2, b2) = request(&router, "rider-2", Some("key-1")).await;
    assert_eq!(s2, StatusCode::ACCEPTED, "{b2}");
    assert_eq!(b1["ride_id"], b2["ride_id"]);

    // Eight at once with a new key: one ride.
    let tries = (0..8).map(|_| request(&router, "rider-3", Some("key-2")));
    let answers = futures::future::join_all(tries).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, StatusCode::ACCEPTED, "{b}");
            b["ride_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");

    // A new gateway (as after a restart) remembers the key.
    let restarted = common::gateway(&h.nats, TIMEOUT).await;
    let (s3, b3) = request(&restarted.router, "rider-2", Some("key-1")).await;
    assert_eq!(s3, StatusCode::ACCEPTED, "{b3}");
    assert_eq!(b3["ride_id"], b1["ride_id"]);

    // The same key for another request is refused, naming the header.
    let (s4, b4) = request(&router, "rider-4", Some("key-1")).await;
    assert_eq!(s4, StatusCode::UNPROCESSABLE_ENTITY, "{b4}");
    assert_eq!(b4["fields"][0]["field"], "Idempotency-Key");

    let mut stored = requested(&h.rides("rides.requested.>").await);
    stored.sort();
    let mut want = vec![
        b1["ride_id"].as_str().unwrap().to_string(),
        ids.into_iter().next().unwrap(),
    ];
    want.sort();
    assert_eq!(stored, want, "each key's ride is stored once");
}

#[tokio::test]
async fn the_status_comes_from_the_ride_view_and_a_cancel_is_published() {
    let h = Harness::start(TIMEOUT).await;
    let router = h.router();
    let (status, body) = get(&router, "/v1/rides/nobody-knows").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = get(&router, "/v1/rides/bad.id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["fields"][0]["field"], "id");

    // ride-view's record, written as ride-view writes it.
    let kv =
        h.js.create_key_value(async_nats::jetstream::kv::Config {
            bucket: ride_view::BUCKET.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ride = RideId::new("r-view").unwrap();
    let mut view = RideView::new(ride.clone());
    view.state = RideState::Matched;
    view.city = Some("berlin".into());
    view.requested_at_ms = Some(1_000);
    view.matched = Some(Match {
        driver_id: DriverId::new("d-7").unwrap(),
        eta_s: 240,
        pickup_distance_m: 950.0,
        at_ms: 1_200,
    });
    kv.put(
        ride_view::key(&ride),
        serde_json::to_vec(&view).unwrap().into(),
    )
    .await
    .unwrap();
    let (status, s) = get(&router, "/v1/rides/r-view").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["state"], "matched");
    assert_eq!(s["driver"]["driver_id"], "d-7");
    assert_eq!(s["driver"]["eta_s"], 240);

    let json = [("content-type", "application/json")];
    let (status, res) = post(
        &router,
        "/v1/rides/r-view/cancel",
        &json,
        r#"{"reason":"changed my mind","rider":"rider-9"}"#.into(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    drop(res);
    let cancelled: Vec<_> = h
        .rides("rides.cancelled.>")
        .await
        .into_iter()
        .filter_map(|e| match e {
            AnyEvent::Cancelled(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].ride_id, ride);
    assert_eq!(cancelled[0].reason.as_deref(), Some("changed my mind"));
    assert_eq!(cancelled[0].rider_id.as_ref().unwrap().as_str(), "rider-9");

    // A ride that is over cannot be cancelled; an unknown one is 404.
    view.state = RideState::Unmatched;
    view.unmatched_reason = Some(UnmatchedReason::NoDriverInRadius);
    kv.put(
        ride_view::key(&ride),
        serde_json::to_vec(&view).unwrap().into(),
    )
    .await
    .unwrap();
    let (status, _) = post(&router, "/v1/rides/r-view/cancel", &[], String::new()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = post(&router, "/v1/rides/unknown/cancel", &[], String::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Resumes a SIGSTOPped process when dropped, so a failing test leaves no
/// frozen nats-server behind.
struct Paused(u32);

impl Paused {
    /// SIGSTOPs `pid` and returns once every thread of it is stopped (a
    /// thread running on another core stops only at its next kernel entry).
    async fn pause(pid: u32) -> Paused {
        signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGSTOP).unwrap();
        let paused = Paused(pid);
        wait_until(Duration::from_secs(10), "every thread stopped", || async {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
            tasks.flatten().all(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                // pid (comm) STATE …: the state follows the last ')'.
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
            })
        })
        .await
        .unwrap();
        paused
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = signal::kill(Pid::from_raw(self.0 as i32), signal::Signal::SIGCONT);
    }
}

#[tokio::test]
async fn a_broker_that_does_not_acknowledge_gets_503_never_202() {
    // Long enough for a PubAck on a loaded CI machine, short for the test.
    let timeout = Duration::from_secs(2);
    let mut h = Harness::start(timeout).await;
    let router = h.router();
    let (status, _) = request(&router, "rider-5", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Frozen: the connection stays up, no PubAck comes.
    let paused = Paused::pause(h.nats.pid()).await;
    let (status, res) = post(
        &router,
        "/v1/rides",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", "frozen-1"),
        ],
        common::body("rider-6"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    let problem = common::json(res).await;
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .starts_with("nothing was stored"),
        "{problem}"
    );
    drop(paused);

    // The client retries with its key: one ride, stored once.
    let answer = std::sync::Mutex::new(serde_json::Value::Null);
    wait_until(Duration::from_secs(20), "a retry accepted", || async {
        let (status, body) = request(&router, "rider-6", Some("frozen-1")).await;
        *answer.lock().unwrap() = body;
        status == StatusCode::ACCEPTED
    })
    .await
    .unwrap();
    let ride = answer.into_inner().unwrap()["ride_id"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = requested(&h.rides("rides.requested.>").await);
    assert_eq!(
        stored.iter().filter(|r| **r == ride).count(),
        1,
        "{stored:?}"
    );

    // Gone: 503 at once, and 202 again once it is back.
    h.nats.kill();
    wait_until(
        Duration::from_secs(10),
        "the gateway sees NATS gone",
        || async {
            let (status, _) = request(&router, "rider-7", None).await;
            status == StatusCode::SERVICE_UNAVAILABLE
        },
    )
    .await
    .unwrap();
    let (status, res) = post(
        &router,
        "/v1/rides",
        &[("content-type", "application/json")],
        common::body("rider-7"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    h.nats.restart().unwrap();
    wait_until(Duration::from_secs(20), "rides accepted again", || async {
        request(&router, "rider-8", None).await.0 == StatusCode::ACCEPTED
    })
    .await
    .unwrap();
    // rider-5 and rider-8 were accepted; rider-6's retry replayed its key's ride.
    let (_, metrics) = get_text(&router, "/metrics").await;
    let sum = |name| hail_testkit::metric_sum(&metrics, name, &[]);
    assert_eq!(
        sum("hail_gateway_rides_accepted_total"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sum("hail_gateway_idempotent_replays_total"),
        Some(1.0),
        "{metrics}"
    );
    let route = [("route", "/v1/rides"), ("status", "503")];
    let unavailable = hail_testkit::metric_sum(&metrics, "hail_http_requests_total", &route);
    assert!(unavailable >= Some(2.0), "{metrics}");
}

async fn get_text(router: &axum::Router, path: &str) -> (StatusCode, String) {
    use tower::ServiceExt as _;
    let res = router
        .clone()
        .oneshot(
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn a_keyed_ride_is_named_by_its_key() {
    let h = Harness::start(TIMEOUT).await;
    let (status, body) = request(&h.router(), "rider-k", Some("order-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let want = hail_gateway::idempotency::ride_id_for_key(b"order-1");
    assert_eq!(body["ride_id"], want.as_str());
}
