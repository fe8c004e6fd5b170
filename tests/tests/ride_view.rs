//! ride-view, the fifth service, added to a platform that has already run:
//! 50,000 rides go through matching, pricing, fraud and analytics (real
//! processes) without it; then it starts, replays RIDES from the start while
//! showing its catch-up (its metrics, hail-monitor's lag, `hail status`),
//! follows live, and every ride's record matches what RIDES holds (state,
//! driver, fare, verdict, every step) — while the other services' durables
//! stay exactly as they were. And two instances share the durable, one
//! SIGKILLed mid-way: every record still right.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_e2e::{
    SERVICES, chaos, cli::hail, monitor::Monitor, ride_view, rides, serial, services,
    services::Service,
};
use hail_events::{
    RideCancelled, RideCompleted, RideMatched, RideScreened, RideUnmatched, RiderId,
    UnmatchedReason, Verdict, sample, subjects,
};
use hail_ride_view::metrics::names;
use hail_testkit::{NatsServer, wait_until};
use serde_json::Value;

const RIDES: usize = 50_000;
/// Generous: a loaded 2-core CI machine with debug builds.
const DRAIN: Duration = Duration::from_secs(900);

async fn wait_drained(js: &jetstream::Context, durable: &str) -> Result<()> {
    wait_until(DRAIN, &format!("durable {durable} drained"), || {
        rides::drained(js, durable)
    })
    .await
}

/// Each durable's config and creation time, as the server holds them.
async fn durables(js: &jetstream::Context) -> Result<BTreeMap<String, (Value, String)>> {
    let stream = js.get_stream(subjects::RIDES_STREAM).await?;
    let mut out = BTreeMap::new();
    for d in SERVICES {
        let info = stream.consumer_info(d).await?;
        out.insert(
            d.to_string(),
            (
                serde_json::to_value(&info.config)?,
                info.created.to_string(),
            ),
        );
    }
    Ok(out)
}

/// Completes every third matched ride and cancels one ride in fifty (some of
/// them matched, some completed too): the states beyond the first answer.
async fn finish_some(js: &jetstream::Context, prefix: &str) -> Result<(usize, usize)> {
    let matched: Vec<RideMatched> =
        rides::stored_events(js, subjects::RIDES_STREAM, subjects::RIDES_MATCHED_ALL).await?;
    let completed: Vec<RideCompleted> = matched
        .iter()
        .step_by(3)
        .map(|m| RideCompleted {
            ride_id: m.ride_id.clone(),
            city: m.city.clone(),
            driver_id: m.driver_id.clone(),
            at_ms: hail_runtime::now_ms(),
        })
        .collect();
    let cancelled: Vec<RideCancelled> = (0..RIDES)
        .step_by(50)
        .map(|i| {
            let r = rides::ride(prefix, i);
            RideCancelled {
                ride_id: r.ride_id,
                city: r.city,
                rider_id: Some(r.rider_id),
                at_ms: hail_runtime::now_ms(),
                reason: None,
            }
        })
        .collect();
    let counts = (completed.len(), cancelled.len());
    rides::publish_all(js, completed).await?;
    rides::publish_all(js, cancelled).await?;
    Ok(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ride_view_added_later_replays_rides_then_follows_live() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let url = server.url();
    let js = rides::streams(&url).await?;
    chaos::publish_drivers(&js, 3_000).await?;
    let mut svcs = services::spawn_all(&url).await?;
    let monitor = Monitor::spawn(&url)?;
    let started = Instant::now();
    rides::publish(&js, "rv", 0, RIDES).await?;
    for d in SERVICES {
        wait_drained(&js, d).await?;
    }
    let (completed, cancelled) = finish_some(&js, "rv").await?;
    for d in SERVICES {
        wait_drained(&js, d).await?;
    }
    let stored = rides_held(&js).await?;
    eprintln!(
        "{RIDES} rides ({completed} completed, {cancelled} cancelled) through the four services \
         in {:?}; RIDES holds {stored} messages",
        started.elapsed()
    );
    let before = durables(&js).await?;

    // The new team's service arrives.
    let catchup = Instant::now();
    let rv = Service::spawn("ride-view", &url)?;
    rv.wait_ready(Duration::from_secs(30)).await?;
    wait_until(
        Duration::from_secs(60),
        "ride-view reports its catch-up",
        || async {
            let remaining = rv.metric(names::REMAINING, &[]).await.unwrap_or(0.0);
            let eta = rv.metric(names::ETA, &[]).await.unwrap_or(0.0);
            remaining > 0.0 && eta.is_finite() && eta > 0.0
        },
    )
    .await?;
    wait_until(
        Duration::from_secs(20),
        "hail-monitor shows ride-view's lag",
        || async { monitor.lag("ride-view").await > 0.0 },
    )
    .await?;
    let out = hail(
        &url,
        &["status", "--json", "--monitor-url", &monitor.base_url()],
    )
    .await?;
    let rows: Vec<Value> = serde_json::from_str(&out).with_context(|| out.clone())?;
    let row = rows
        .iter()
        .find(|r| r["service"] == "ride-view")
        .with_context(|| format!("hail status lists no ride-view: {out}"))?;
    assert!(row["lag_messages"].as_u64().unwrap_or(0) > 0, "{row}");
    assert!(
        row["eta_seconds"].as_f64().is_some_and(|e| e > 0.0),
        "{row}"
    );
    assert_eq!(row["instances"], 1, "{row}");

    wait_drained(&js, "ride-view").await?;
    let took = catchup.elapsed();
    let read = rv
        .metric(hail_runtime::metrics::names::PROCESSED, &[])
        .await?;
    let changed = rv.metric(names::UPDATES, &[("result", "changed")]).await?;
    let writes = rv.metric(names::WRITES, &[]).await?;
    eprintln!(
        "ride-view caught up on {read} ride events in {took:?} ({:.0} events/s), \
         {changed} record changes in {writes} writes",
        read / took.as_secs_f64()
    );

    wait_until(
        Duration::from_secs(10),
        "ride-view says it is caught up",
        || async {
            rv.metric(names::CAUGHT_UP, &[]).await.unwrap_or(0.0) == 1.0
                && rv.metric(names::ETA, &[]).await.unwrap_or(-1.0) == 0.0
        },
    )
    .await?;

    // Then it follows live.
    rides::publish(&js, "rv-live", 0, 200).await?;
    for d in SERVICES.into_iter().chain(["ride-view"]) {
        wait_drained(&js, d).await?;
    }
    let checked = ride_view::check_all(&js).await?;
    assert_eq!(checked, RIDES + 200);
    assert_eq!(
        durables(&js).await?,
        before,
        "the other services' durables changed"
    );
    for s in &mut svcs {
        assert!(s.process.is_running(), "{} died", s.name);
    }
    Ok(())
}

/// Messages RIDES holds now.
async fn rides_held(js: &jetstream::Context) -> Result<u64> {
    let mut stream = js.get_stream(subjects::RIDES_STREAM).await?;
    Ok(stream.info().await?.state.messages)
}

/// A ride's events as another service would have published them, without
/// running those services: i % 4 = 0 matched and completed, 1 unmatched,
/// 2 matched then cancelled, 3 matched; every one priced and screened.
struct Synthetic {
    requests: Vec<hail_events::RideRequested>,
    matched: Vec<RideMatched>,
    unmatched: Vec<RideUnmatched>,
    priced: Vec<hail_events::FareQuoted>,
    screened: Vec<RideScreened>,
    completed: Vec<RideCompleted>,
    cancelled: Vec<RideCancelled>,
}

fn synthetic(prefix: &str, n: usize) -> Result<Synthetic> {
    let mut s = Synthetic {
        requests: Vec::new(),
        matched: Vec::new(),
        unmatched: Vec::new(),
        priced: Vec::new(),
        screened: Vec::new(),
        completed: Vec::new(),
        cancelled: Vec::new(),
    };
    for i in 0..n {
        let r = rides::ride(prefix, i);
        let id = r.ride_id.as_str().to_string();
        let city = r.city.as_str().to_string();
        if i % 4 == 1 {
            s.unmatched.push(RideUnmatched {
                ride_id: r.ride_id.clone(),
                city: r.city.clone(),
                reason: UnmatchedReason::NoDriverInRadius,
                requested_at_ms: r.requested_at_ms,
                at_ms: r.requested_at_ms + 5,
            });
        } else {
            let m = sample::ride_matched(&id, &city);
            if i % 4 == 0 {
                s.completed.push(RideCompleted {
                    ride_id: m.ride_id.clone(),
                    city: m.city.clone(),
                    driver_id: m.driver_id.clone(),
                    at_ms: r.requested_at_ms + 600_000,
                });
            }
            s.matched.push(m);
        }
        if i % 4 == 2 {
            s.cancelled.push(sample::ride_cancelled(&id, &city));
        }
        let mut fare = sample::fare_quoted(&id, &city);
        fare.amount_minor = 1_000 + i as u64;
        s.priced.push(fare);
        s.screened.push(RideScreened {
            ride_id: r.ride_id.clone(),
            city: r.city.clone(),
            rider_id: RiderId::new(format!("rider-{id}"))?,
            score: 0.5,
            verdict: [Verdict::Allow, Verdict::Review, Verdict::Block][i % 3],
            rules: Vec::new(),
            requested_at_ms: r.requested_at_ms,
            at_ms: r.requested_at_ms + 3,
        });
        s.requests.push(r);
    }
    Ok(s)
}

/// The sum over `instances` of a metric (0 where absent or unreadable).
async fn sum(instances: &[Service], name: &str) -> f64 {
    let mut total = 0.0;
    for s in instances {
        total += s.metric(name, &[]).await.unwrap_or(0.0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_durable_and_one_sigkilled_midway_loses_nothing() -> Result<()> {
    const N: usize = 10_000;
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let url = server.url();
    let js = rides::streams(&url).await?;
    // Answers stored before their requests: arrival order must not matter.
    let s = synthetic("rv2", N)?;
    rides::publish_all(&js, s.matched).await?;
    rides::publish_all(&js, s.priced).await?;
    rides::publish_all(&js, s.requests).await?;
    rides::publish_all(&js, s.cancelled).await?;
    rides::publish_all(&js, s.screened).await?;
    rides::publish_all(&js, s.unmatched).await?;
    rides::publish_all(&js, s.completed).await?;
    let total = rides_held(&js).await?;

    let mut pair = vec![
        Service::spawn("ride-view", &url)?,
        Service::spawn("ride-view", &url)?,
    ];
    for p in &pair {
        p.wait_ready(Duration::from_secs(30)).await?;
    }
    let quarter = total as f64 / 4.0;
    wait_until(DRAIN, "a quarter of RIDES recorded", || async {
        sum(&pair, names::UPDATES).await >= quarter
    })
    .await?;
    let both_worked = pair[0].metric(names::UPDATES, &[]).await? > 0.0
        && pair[1].metric(names::UPDATES, &[]).await? > 0.0;
    pair[0].process.kill();
    let survivor = &pair[1];
    wait_drained(&js, "ride-view").await?;
    assert!(both_worked, "both instances took part before the kill");
    let checked = ride_view::check_all(&js).await?;
    assert_eq!(checked, N);
    wait_until(
        Duration::from_secs(10),
        "the survivor says it caught up",
        || async { survivor.process.log().contains("caught up") },
    )
    .await?;
    Ok(())
}
