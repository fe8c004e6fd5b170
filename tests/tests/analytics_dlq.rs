//! analytics never both counts a message and dead-letters it, and a replayed
//! dead letter is counted exactly once.
//!
//! The real hail-analytics runs with a short `--max-deliver`/`--backoff`
//! against a real nats-server whose checkpoint bucket is made unwritable (its
//! stream's `max_msg_size` lowered below any checkpoint) for a while: rides
//! published then reach their last delivery without a stored checkpoint and are
//! dead-lettered; rides published just before the bucket heals are counted on a
//! later delivery. Each ride has a city of its own, so `hail analytics --json`
//! says per ride whether it is counted: every ride is counted xor in
//! `dlq.analytics`. After `hail dlq replay` the totals equal what was published,
//! and a second replay of the same letters (stored again, as outside the
//! duplicate window) changes nothing.

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_e2e::{cli::hail, rides, serial, services::Service};
use hail_events::{RideRequested, headers, sample, subjects};
use hail_runtime::{metrics::names::RETRIED, replay::Replay, service::Service as Svc};
use hail_testkit::{NatsServer, wait_until};
use serde_json::Value;

/// Rides counted before the fault.
const HEALTHY: usize = 15;
/// Rides whose every delivery fails to checkpoint: all dead-lettered.
const LOST: usize = 15;
/// Rides whose first delivery fails, then the bucket heals.
const LATE: usize = 15;
const TOTAL: usize = HEALTHY + LOST + LATE;
const WAIT: Duration = Duration::from_secs(90);
/// Three deliveries a second apart, each waiting 300 ms for its checkpoint.
const FLAGS: [&str; 8] = [
    "--max-deliver",
    "3",
    "--backoff",
    "1s",
    "--checkpoint-timeout",
    "300ms",
    "--ack-floor-refresh",
    "500ms",
];
/// The stream behind analytics' KV bucket.
const KV_STREAM: &str = "KV_hail_analytics";

/// Ride `<batch>-<i>` in a city of the same name: one ride per city.
fn ride(batch: &str, i: usize) -> RideRequested {
    let id = format!("{batch}-{i}");
    sample::ride_requested(&id, &id)
}

fn batch(name: &str, n: usize) -> Vec<RideRequested> {
    (0..n).map(|i| ride(name, i)).collect()
}

/// Makes the checkpoint bucket refuse every write (`writable == false`) or
/// accept them again.
async fn set_checkpoints_writable(js: &jetstream::Context, writable: bool) -> Result<()> {
    let mut stream = js.get_stream(KV_STREAM).await?;
    let mut config = stream.info().await?.config.clone();
    config.max_message_size = if writable { -1 } else { 16 };
    js.update_stream(config).await?;
    Ok(())
}

/// `hail analytics --json`.
async fn report(server: &NatsServer) -> Result<Value> {
    Ok(serde_json::from_str(
        &hail(&server.url(), &["analytics", "--json"]).await?,
    )?)
}

/// Requests counted for `ride` (its own city) in a report.
fn counted(report: &Value, ride: &RideRequested) -> u64 {
    report["cities"][ride.city.as_str()]["requests"]
        .as_u64()
        .unwrap_or(0)
}

/// Ride ids of analytics' dead letters, one entry per letter.
async fn dead_rides(js: &jetstream::Context) -> Result<Vec<String>> {
    let letters = rides::stored(
        js,
        subjects::DLQ_STREAM,
        &subjects::dlq(Svc::Analytics.name()),
    )
    .await?;
    letters
        .iter()
        .map(|m| {
            let h = m.headers.as_ref().context("dead letter without headers")?;
            Ok(h.get(headers::RIDE_ID)
                .context("dead letter without a ride id")?
                .to_string())
        })
        .collect()
}

/// True once analytics has acked or dead-lettered everything and its stored
/// checkpoint covers the whole of RIDES.
async fn settled(js: &jetstream::Context, server: &NatsServer) -> bool {
    let last = async {
        let mut s = js.get_stream(subjects::RIDES_STREAM).await?;
        Ok::<_, anyhow::Error>(s.info().await?.state.last_sequence)
    };
    let (Ok(last), true) = (
        last.await,
        rides::drained(js, Svc::Analytics.durable()).await,
    ) else {
        return false;
    };
    match report(server).await {
        Ok(r) => r["checkpoint"]["covered_through_seq"].as_u64() >= Some(last),
        Err(_) => false,
    }
}

/// (rides counted, rides dead-lettered), failing if one ride is counted twice,
/// has two dead letters, or is both counted and dead-lettered.
async fn counted_xor_dead(
    js: &jetstream::Context,
    server: &NatsServer,
    all: &[RideRequested],
) -> Result<(usize, usize)> {
    let r = report(server).await?;
    let dead = dead_rides(js).await?;
    let distinct: BTreeSet<&str> = dead.iter().map(String::as_str).collect();
    anyhow::ensure!(
        distinct.len() == dead.len(),
        "a ride has two dead letters: {dead:?}"
    );
    let mut n = 0;
    for ride in all {
        let c = counted(&r, ride);
        let is_dead = distinct.contains(ride.ride_id.as_str());
        anyhow::ensure!(c <= 1, "{} counted {c} times", ride.ride_id);
        anyhow::ensure!(
            (c == 1) != is_dead,
            "{} is {}",
            ride.ride_id,
            if is_dead {
                "counted and dead-lettered"
            } else {
                "neither counted nor dead-lettered"
            }
        );
        n += c as usize;
    }
    Ok((n, distinct.len()))
}

/// Totals and every ride's count: each ride exactly once.
async fn each_counted_once(server: &NatsServer, all: &[RideRequested]) -> Result<()> {
    let r = report(server).await?;
    anyhow::ensure!(
        r["all"]["requests"].as_u64() == Some(TOTAL as u64),
        "totals {} after replays, published {TOTAL}",
        r["all"]["requests"]
    );
    for ride in all {
        anyhow::ensure!(
            counted(&r, ride) == 1,
            "{} counted {} times",
            ride.ride_id,
            counted(&r, ride)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_failing_until_the_last_delivery_never_count_a_dead_letter() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    let analytics = Service::spawn_with(Svc::Analytics.name(), &server.url(), &FLAGS)?;
    analytics.wait_ready(WAIT).await?;
    let (healthy, lost, late) = (
        batch("healthy", HEALTHY),
        batch("lost", LOST),
        batch("late", LATE),
    );
    let all: Vec<RideRequested> = [&healthy, &lost, &late]
        .into_iter()
        .flatten()
        .cloned()
        .collect();

    rides::publish_all(&js, healthy.clone()).await?;
    wait_until(WAIT, "the healthy rides counted", || async {
        settled(&js, &server).await
    })
    .await?;

    set_checkpoints_writable(&js, false).await?;
    rides::publish_all(&js, lost.clone()).await?;
    wait_until(WAIT, "every lost ride dead-lettered", || async {
        dead_rides(&js).await.is_ok_and(|d| d.len() >= LOST)
    })
    .await?;
    // The late rides' first deliveries fail too; then the bucket heals.
    let retried_before = analytics.metric(RETRIED, &[]).await?;
    rides::publish_all(&js, late.clone()).await?;
    wait_until(WAIT, "every late ride retried once", || async {
        analytics
            .metric(RETRIED, &[])
            .await
            .is_ok_and(|n| n >= retried_before + LATE as f64)
    })
    .await?;
    set_checkpoints_writable(&js, true).await?;

    let last = std::cell::Cell::new((0, 0));
    let outcome = wait_until(WAIT, "every ride counted or dead-lettered", || async {
        if !settled(&js, &server).await {
            return false;
        }
        match counted_xor_dead(&js, &server, &all).await {
            Ok(split) => {
                last.set(split);
                true
            }
            Err(_) => false,
        }
    })
    .await;
    if outcome.is_err() {
        // Name the ride that breaks it.
        counted_xor_dead(&js, &server, &all).await?;
    }
    outcome?;
    let (n_counted, n_dead) = last.get();
    assert_eq!(n_counted + n_dead, TOTAL);
    let dead: BTreeSet<String> = dead_rides(&js).await?.into_iter().collect();
    for ride in &lost {
        assert!(
            dead.contains(ride.ride_id.as_str()),
            "{} not dead-lettered",
            ride.ride_id
        );
    }
    for ride in &healthy {
        assert!(
            !dead.contains(ride.ride_id.as_str()),
            "{} dead-lettered",
            ride.ride_id
        );
    }
    assert!(
        analytics
            .metric("hail_analytics_withdrawn_total", &[])
            .await?
            >= LOST as f64,
        "the lost rides were counted, then withdrawn"
    );

    // Replayed with the real CLI: each dead ride counted once.
    let out = hail(
        &server.url(),
        &["dlq", "replay", "--all", "--service", Svc::Analytics.name()],
    )
    .await?;
    assert!(out.contains(&format!("{n_dead} replayed,")), "{out}");
    wait_until(WAIT, "the replays counted", || async {
        settled(&js, &server).await && each_counted_once(&server, &all).await.is_ok()
    })
    .await?;

    // Replayed again, stored again (another message id, as a replay outside
    // the duplicate window): nothing changes.
    let skipped_before = analytics
        .metric("hail_analytics_redeliveries_skipped_total", &[])
        .await?;
    let letters = rides::stored(
        &js,
        subjects::DLQ_STREAM,
        &subjects::dlq(Svc::Analytics.name()),
    )
    .await?;
    for letter in &letters {
        let r = Replay::of_dead_letter(letter.headers.as_ref().context("headers")?)?;
        let mut h = r.headers.clone();
        h.insert(
            headers::MSG_ID,
            format!("replay-again:{}", r.stream_seq).as_str(),
        );
        js.publish_with_headers(r.subject.clone(), h, letter.payload.clone())
            .await?
            .await?;
    }
    wait_until(WAIT, "the second replays handled", || async {
        settled(&js, &server).await
    })
    .await?;
    each_counted_once(&server, &all).await?;
    let skipped = analytics
        .metric("hail_analytics_redeliveries_skipped_total", &[])
        .await?;
    assert!(
        skipped >= skipped_before + letters.len() as f64,
        "each second replay reached analytics and was not counted ({skipped_before} → {skipped})"
    );
    Ok(())
}
