//! fraud end to end, against a real nats-server, the real `hail-fraud` binary and
//! the real `hail` CLI: the rider history survives a SIGKILL, two instances
//! judge against one history, and the card blocklist is changed from the CLI
//! and seen by the running service.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::DeliverPolicy};
use futures::StreamExt;
use hail_e2e::{serial, services::Service};
use hail_events::{
    CardFingerprint, DeviceId, Event, RideId, RideRequested, RideScreened, RiderId, Verdict, codec,
    headers, sample, subjects,
};
use hail_testkit::{NatsServer, wait_until};

const WAIT: Duration = Duration::from_secs(30);

async fn jetstream_of(server: &NatsServer) -> Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(server.url()).await?))
}

/// A request of `rider` paying with `card`, on a device of its own, at `at_ms`.
fn request(ride: &str, rider: &str, card: &str, at_ms: u64) -> RideRequested {
    let mut r = sample::ride_requested(ride, "berlin");
    r.ride_id = RideId::new(ride).unwrap();
    r.rider_id = RiderId::new(rider).unwrap();
    r.device_id = DeviceId::new(format!("dev-{ride}")).unwrap();
    r.card = CardFingerprint::new(card).unwrap();
    r.requested_at_ms = at_ms;
    r
}

async fn publish(js: &jetstream::Context, r: &RideRequested) -> Result<()> {
    js.publish_with_headers(r.subject(), headers::for_event(r), codec::encode(r)?)
        .await?
        .await
        .context("request not acknowledged")?;
    Ok(())
}

/// The RideScreened of `ride`, if fraud has published it.
async fn screened(js: &jetstream::Context, ride: &str) -> Result<Option<RideScreened>> {
    let stream = js.get_stream(subjects::RIDES_STREAM).await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: "rides.screened.>".into(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let total = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await?;
    for _ in 0..total {
        let msg = messages.next().await.context("ordered consumer ended")??;
        let event: RideScreened = codec::decode(&msg.payload)?;
        if event.ride_id.as_str() == ride {
            return Ok(Some(event));
        }
    }
    Ok(None)
}

/// Waits for the RideScreened of `ride`.
async fn wait_screened(js: &jetstream::Context, ride: &str) -> Result<RideScreened> {
    wait_until(WAIT, &format!("RideScreened of {ride}"), || async {
        matches!(screened(js, ride).await, Ok(Some(_)))
    })
    .await?;
    Ok(screened(js, ride).await?.expect("seen above"))
}

/// Runs the real `hail` CLI against `server`.
async fn hail(server: &NatsServer, args: &[&str]) -> Result<String> {
    hail_e2e::cli::hail(&server.url(), args).await
}

async fn wait_blocklist_size(fraud: &Service, n: f64) -> Result<()> {
    wait_until(WAIT, &format!("fraud to see {n} blocked cards"), || async {
        fraud
            .metric("hail_fraud_blocklist_cards", &[])
            .await
            .is_ok_and(|v| v == n)
    })
    .await
}

/// `n` requests of `rider` a second apart from `t0`, each with its own card and device.
async fn publish_rider(
    js: &jetstream::Context,
    rider: &str,
    from: usize,
    to: usize,
    t0: u64,
) -> Result<()> {
    for i in from..to {
        let ride = format!("{rider}-{i}");
        let r = request(&ride, rider, &format!("card-{ride}"), t0 + i as u64 * 1_000);
        publish(js, &r).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn velocity_history_survives_sigkill_and_restart() -> Result<()> {
    const N: usize = 5; // the default --velocity-max-requests
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    let mut fraud = Service::spawn("fraud", &server.url())?;
    fraud.wait_ready(WAIT).await?;

    // Before the kill: N requests of a fast rider, N - 1 of a near-miss rider.
    let t0 = hail_runtime::now_ms() - 60_000;
    publish_rider(&js, "fast", 0, N, t0).await?;
    publish_rider(&js, "near", 0, N - 1, t0).await?;
    wait_until(WAIT, "fraud processed the first requests", || async {
        fraud
            .processed("RideRequested")
            .await
            .is_ok_and(|v| v >= (2 * N - 1) as f64)
    })
    .await?;
    let nth = wait_screened(&js, &format!("fast-{}", N - 1)).await?;
    assert_eq!(
        nth.rules,
        Vec::<String>::new(),
        "{N} requests are not too many"
    );
    assert_eq!(nth.verdict, Verdict::Allow);

    fraud.process.kill();
    fraud.restart()?;
    fraud.wait_ready(WAIT).await?;
    let replayed = fraud
        .metric("hail_fraud_replayed_requests_total", &[])
        .await?;
    assert_eq!(
        replayed,
        (2 * N - 1) as f64,
        "requests read back into the history"
    );

    // After the restart: the fast rider's (N+1)th fires, the near-miss rider's Nth does not.
    publish_rider(&js, "fast", N, N + 1, t0).await?;
    publish_rider(&js, "near", N - 1, N, t0).await?;
    let over = wait_screened(&js, &format!("fast-{N}")).await?;
    assert_eq!(over.rules, vec!["velocity".to_string()], "{over:?}");
    assert_eq!(over.verdict, Verdict::Review);
    assert_eq!(over.score, 0.5);
    let near = wait_screened(&js, &format!("near-{}", N - 1)).await?;
    assert_eq!(
        near.rules,
        Vec::<String>::new(),
        "{near:?}: counted once each"
    );
    let hits = fraud
        .metric("hail_fraud_rule_hits_total", &[("rule", "velocity")])
        .await?;
    assert_eq!(hits, 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocklist_from_the_cli_blocks_and_unblocks_cards() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    let now = hail_runtime::now_ms();

    // Blocked before fraud starts: loaded with the snapshot.
    let out = hail(
        &server,
        &["fraud", "block", "card-stolen", "--reason", "chargeback"],
    )
    .await?;
    assert_eq!(out.trim(), "blocked card card-stolen");
    let fraud = Service::spawn("fraud", &server.url())?;
    fraud.wait_ready(WAIT).await?;
    assert_eq!(fraud.metric("hail_fraud_blocklist_cards", &[]).await?, 1.0);
    let listed = hail(&server, &["fraud", "blocklist"]).await?;
    assert!(listed.starts_with("card-stolen\t"), "{listed}");
    assert!(listed.trim_end().ends_with("\tchargeback"), "{listed}");

    publish(&js, &request("b-1", "rider-a", "card-stolen", now)).await?;
    publish(&js, &request("b-2", "rider-b", "card-clean", now)).await?;
    let blocked = wait_screened(&js, "b-1").await?;
    assert_eq!(blocked.verdict, Verdict::Block);
    assert_eq!(blocked.score, 1.0);
    assert_eq!(blocked.rules, vec!["blocklisted_card".to_string()]);
    let clean = wait_screened(&js, "b-2").await?;
    assert_eq!((clean.verdict, clean.rules.len()), (Verdict::Allow, 0));

    // Unblocked while fraud runs: the watch takes it off.
    let out = hail(&server, &["fraud", "unblock", "card-stolen"]).await?;
    assert_eq!(out.trim(), "unblocked card card-stolen");
    wait_blocklist_size(&fraud, 0.0).await?;
    assert_eq!(hail(&server, &["fraud", "blocklist"]).await?, "");
    publish(&js, &request("b-3", "rider-c", "card-stolen", now + 1_000)).await?;
    let allowed = wait_screened(&js, "b-3").await?;
    assert_eq!((allowed.verdict, allowed.rules.len()), (Verdict::Allow, 0));

    // Blocked again while fraud runs.
    hail(&server, &["fraud", "block", "card-stolen"]).await?;
    wait_blocklist_size(&fraud, 1.0).await?;
    publish(&js, &request("b-4", "rider-d", "card-stolen", now + 2_000)).await?;
    assert_eq!(wait_screened(&js, "b-4").await?.verdict, Verdict::Block);
    let out = hail(&server, &["fraud", "unblock", "card-unknown"]).await?;
    assert_eq!(out.trim(), "card card-unknown was not blocked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_judge_every_request_against_one_history() -> Result<()> {
    const N: usize = 5; // the default --velocity-max-requests
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    let a = Service::spawn("fraud", &server.url())?;
    let b = Service::spawn("fraud", &server.url())?;
    a.wait_ready(WAIT).await?;
    b.wait_ready(WAIT).await?;
    let t0 = hail_runtime::now_ms() - 60_000;

    // One request at a time, so the two instances take turns: the (N+1)th is
    // judged against all N before it, though its instance screened about half.
    let mut rules = Vec::new();
    for i in 0..=N {
        publish_rider(&js, "turns", i, i + 1, t0).await?;
        rules.push(wait_screened(&js, &format!("turns-{i}")).await?.rules);
    }
    let none = Vec::<String>::new();
    assert!(rules[..N].iter().all(|r| *r == none), "{rules:?}");
    assert_eq!(rules[N], vec!["velocity".to_string()], "{rules:?}");
    let (by_a, by_b) = (
        a.processed("RideRequested").await?,
        b.processed("RideRequested").await?,
    );
    assert!(by_a > 0.0 && by_b > 0.0, "both screened: {by_a} and {by_b}");

    // All at once: whatever the order they are handled in, each is judged
    // against the requests before it in time, so only the last one fires.
    publish_rider(&js, "burst", 0, N + 1, t0).await?;
    let mut fired = Vec::new();
    for i in 0..=N {
        if !wait_screened(&js, &format!("burst-{i}"))
            .await?
            .rules
            .is_empty()
        {
            fired.push(i);
        }
    }
    assert_eq!(fired, vec![N]);
    for svc in [&a, &b] {
        assert_eq!(
            svc.metric("hail_fraud_feed_waits_timed_out_total", &[])
                .await?,
            0.0
        );
    }
    Ok(())
}
