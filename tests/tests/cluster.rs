//! hail on a 3-node JetStream cluster: the streams get three replicas, the
//! services connect with every seed and ride out the loss of the node they are
//! on, the RIDES leader and the meta leader can be SIGKILLed under load without
//! losing an acknowledged ride or answering one twice, and with two nodes of
//! three down publishes fail (no quorum) until one returns.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream;
use hail_e2e::{
    SERVICES,
    chaos::{self, Load},
    serial,
    services::Service,
};
use hail_events::{Event as _, codec, headers, subjects};
use hail_runtime::{
    provision::{StreamSettings, ensure_streams},
    replicas::Replicas,
};
use hail_testkit::{NatsCluster, bin_path, wait_until};

/// Rides per second of the background load: modest, the CI machine has two cores.
const RATE: usize = 150;
const DRIVERS: usize = 1_000;
const READY: Duration = Duration::from_secs(60);
const DRAIN: Duration = Duration::from_secs(240);
/// A killed node's replacement leader, a restarted node catching up.
const FAILOVER: Duration = Duration::from_secs(60);
const PROGRESS: Duration = Duration::from_secs(90);

async fn connect(cluster: &NatsCluster) -> Result<jetstream::Context> {
    let client =
        hail_runtime::connect::connect(&cluster.urls(), "cluster-test", Duration::from_secs(10))
            .await?;
    Ok(jetstream::new(client))
}

async fn stream_info(js: &jetstream::Context, name: &str) -> Result<jetstream::stream::Info> {
    Ok(js.get_stream(name).await?.get_info().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_forms_replicates_and_survives_a_node_restart() -> Result<()> {
    let _serial = serial().await;
    let mut cluster = NatsCluster::start().await?;
    assert_eq!(cluster.urls().split(',').count(), 3);
    let meta = cluster.wait_meta_leader().await?;
    assert!(meta.starts_with("nats-"), "meta leader {meta}");

    let js = connect(&cluster).await?;
    let replicas = Replicas::Auto.for_client(&js.client());
    assert_eq!(replicas, 3, "auto on a cluster");
    let settings = StreamSettings {
        rides_max_bytes: 1 << 30,
        replicas,
        ..StreamSettings::default()
    };
    ensure_streams(&js, &settings).await?;
    for name in [
        subjects::RIDES_STREAM,
        subjects::DRIVERS_STREAM,
        subjects::DLQ_STREAM,
    ] {
        let info = stream_info(&js, name).await?;
        assert_eq!(info.config.num_replicas, 3, "{name}");
        let placement = cluster.wait_stream_current(name, 3, FAILOVER).await?;
        let api_leader = info.cluster.and_then(|c| c.leader);
        assert_eq!(
            placement.leader, api_leader,
            "{name}: /jsz and the API agree"
        );
    }

    // A follower SIGKILLed: the stream keeps a quorum and takes writes.
    let leader = cluster
        .stream_leader(subjects::RIDES_STREAM)
        .await
        .context("RIDES leader")?;
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    publish_retrying(&js, "follower-down", 200).await?;
    cluster.restart(follower).await?;
    cluster
        .wait_stream_current(subjects::RIDES_STREAM, 3, FAILOVER)
        .await?;

    // The leader SIGKILLed: another node leads, nothing acknowledged is lost.
    cluster.kill(leader);
    let what = "a new RIDES leader";
    wait_until(FAILOVER, what, || async {
        cluster
            .stream_leader(subjects::RIDES_STREAM)
            .await
            .is_some_and(|l| l != leader)
    })
    .await?;
    publish_retrying(&js, "leader-down", 100).await?;
    // The leader restarted, then the other follower frozen (SIGSTOP): the
    // group keeps its quorum, takes writes, and the frozen node catches up.
    cluster.restart(leader).await?;
    let other = cluster
        .stream_leader(subjects::RIDES_STREAM)
        .await
        .context("new leader")?;
    // Not the node this test's client is on: a frozen server keeps its
    // clients' connections open, and they notice only at the ping timeout.
    let on = js.client().server_info().port;
    let paused = (0..3)
        .find(|i| *i != other && cluster.ports(*i).client != on)
        .context("a node that neither leads RIDES nor serves the test")?;
    cluster.pause(paused)?;
    publish_retrying(&js, "node-paused", 100).await?;
    cluster.resume(paused)?;
    cluster
        .wait_stream_current(subjects::RIDES_STREAM, 3, FAILOVER)
        .await?;
    let info = stream_info(&js, subjects::RIDES_STREAM).await?;
    assert_eq!(info.state.messages, 400);
    wait_until(FAILOVER, "every node holds the 400 messages", || async {
        node_last_seqs(&cluster, subjects::RIDES_STREAM)
            .await
            .iter()
            .all(|s| *s == Some(400))
    })
    .await?;
    Ok(())
}

/// Publishes requests `<prefix>-0..n` one at a time, each retried until its
/// PubAck comes (for up to 30 s): right after a node is lost a publish may
/// find no leader yet. Each has its own `Nats-Msg-Id`, so a retry of one that
/// was stored after all is stored once.
async fn publish_retrying(js: &jetstream::Context, prefix: &str, n: usize) -> Result<()> {
    for i in 0..n {
        let ride = hail_e2e::rides::ride(prefix, i);
        let what = format!("{} stored", ride.ride_id);
        wait_until(FAILOVER, &what, || async {
            let sent = js
                .publish_with_headers(
                    ride.subject(),
                    headers::for_event(&ride),
                    codec::encode(&ride).expect("a sample ride encodes"),
                )
                .await;
            match sent {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            }
        })
        .await?;
    }
    Ok(())
}

/// Each node's own last sequence of `stream`, from its `/jsz` (None: no answer).
async fn node_last_seqs(cluster: &NatsCluster, stream: &str) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for i in 0..cluster.len() {
        let jsz = cluster.jsz(i, "?accounts=true&streams=true").await.ok();
        out.push(jsz.and_then(|j| {
            j["account_details"]
                .as_array()?
                .iter()
                .filter_map(|a| a["stream_detail"].as_array())
                .flatten()
                .find(|s| s["name"] == stream)?["state"]["last_seq"]
                .as_u64()
        }));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_replicas_than_nodes_is_refused_naming_the_flag() -> Result<()> {
    let _serial = serial().await;
    let cluster = NatsCluster::start().await?;
    let out = tokio::process::Command::new(bin_path("hail-pricing")?)
        .args(["--nats-url", &cluster.urls(), "--replicas", "5"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "pricing started with 5 replicas");
    ensure!(
        stderr.contains("5 replicas") && stderr.contains("--replicas"),
        "{stderr}"
    );
    Ok(())
}

/// The four services on every seed, matching twice; drivers published and indexed.
async fn start_stack(cluster: &NatsCluster) -> Result<(Vec<Service>, jetstream::Context)> {
    let urls = cluster.urls();
    // One at a time: several creators of one stream at once on a fresh cluster
    // wait for the server (they retry); here that would only slow the test.
    let mut svcs = Vec::new();
    for name in SERVICES.into_iter().chain(["matching"]) {
        let s = Service::spawn(name, &urls)?;
        s.wait_ready(READY).await?;
        svcs.push(s);
    }
    let js = connect(cluster).await?;
    chaos::publish_drivers(&js, DRIVERS).await?;
    for matching in [&svcs[0], &svcs[4]] {
        wait_until(READY, "matching indexed every driver", || async {
            matching
                .metric("hail_matching_drivers_available", &[])
                .await
                .is_ok_and(|v| v >= DRIVERS as f64)
        })
        .await?;
    }
    Ok((svcs, js))
}

/// SIGKILLs node `i` under load, waits for the load to go on, restarts it and
/// waits until every stream is current on three replicas again.
async fn kill_and_recover(
    scenario: &str,
    cluster: &mut NatsCluster,
    load: &Load,
    i: usize,
    role: &str,
) -> Result<()> {
    println!(
        "[{scenario}] SIGKILL {} ({role}) at {} rides acknowledged",
        cluster.name(i),
        load.acked()
    );
    cluster.kill(i);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing with a node down")
        .await?;
    cluster.restart_all_current(i).await?;
    for stream in [subjects::RIDES_STREAM, subjects::DRIVERS_STREAM] {
        cluster.wait_stream_current(stream, 3, FAILOVER).await?;
    }
    println!(
        "[{scenario}] {} back and current at {} rides acknowledged",
        cluster.name(i),
        load.acked()
    );
    load.wait_acked_more(RATE, PROGRESS, "the load flowing after the restart")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_meta_leaders_sigkilled_under_load_lose_nothing() -> Result<()> {
    const SCENARIO: &str = "cluster leaders";
    let _serial = serial().await;
    let mut cluster = NatsCluster::start().await?;
    let (svcs, js) = start_stack(&cluster).await?;
    let info = stream_info(&js, subjects::RIDES_STREAM).await?;
    ensure!(info.config.num_replicas == 3, "RIDES on {info:?}");

    let load = Load::start(js.clone(), "leaders", RATE);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing")
        .await?;
    let leader = cluster
        .stream_leader(subjects::RIDES_STREAM)
        .await
        .context("RIDES has no leader")?;
    kill_and_recover(SCENARIO, &mut cluster, &load, leader, "RIDES leader").await?;
    let meta = cluster
        .meta_leader_index()
        .await
        .context("no meta leader")?;
    kill_and_recover(SCENARIO, &mut cluster, &load, meta, "meta leader").await?;
    let report = load.stop().await?;
    chaos::verify(SCENARIO, &js, &cluster.urls(), &report, DRAIN).await?;
    let last = stream_info(&js, subjects::RIDES_STREAM)
        .await?
        .state
        .last_sequence;
    wait_until(FAILOVER, "every node holds all of RIDES", || async {
        node_last_seqs(&cluster, subjects::RIDES_STREAM)
            .await
            .iter()
            .all(|s| *s == Some(last))
    })
    .await?;
    for s in &svcs {
        ensure!(
            !s.process.has_exited(),
            "{} exited: {}",
            s.name,
            s.process.log_tail()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_down_fail_publishes_until_one_returns() -> Result<()> {
    const SCENARIO: &str = "no quorum";
    let _serial = serial().await;
    let mut cluster = NatsCluster::start().await?;
    let (svcs, js) = start_stack(&cluster).await?;
    let load = Load::start(js.clone(), "quorum", RATE);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing")
        .await?;

    let survivor = 0;
    println!(
        "[{SCENARIO}] SIGKILL nats-2 and nats-3 at {} rides acknowledged",
        load.acked()
    );
    cluster.kill(1);
    cluster.kill(2);
    let failed_before = load.failed();
    wait_until(PROGRESS, "publishes failing without a quorum", || async {
        load.failed() >= failed_before + RATE
    })
    .await?;
    let error = publish_probe(&js).await.unwrap_err();
    println!("[{SCENARIO}] a publish with one node of three: {error:#}");
    let acked_down = load.acked();
    ensure!(cluster.is_running(survivor), "nats-1 must still run");

    cluster.restart(1).await?;
    println!(
        "[{SCENARIO}] nats-2 back; {} acknowledged, {} failed while two were down",
        load.acked(),
        load.failed() - failed_before
    );
    load.wait_acked_more(RATE, PROGRESS, "the load flowing again with two nodes")
        .await?;
    ensure!(load.acked() > acked_down);
    let report = load.stop().await?;
    ensure!(!report.failed.is_empty(), "no publish failed");
    chaos::verify(SCENARIO, &js, &cluster.urls(), &report, DRAIN).await?;
    cluster.restart(2).await?;
    cluster
        .wait_stream_current(subjects::RIDES_STREAM, 3, FAILOVER)
        .await?;
    for s in &svcs {
        ensure!(!s.process.has_exited(), "{} exited", s.name);
    }
    Ok(())
}

/// One message published to RIDES and its PubAck awaited: on a fence subject,
/// which no consumer and no audit reads, since the stream may still store it
/// once the quorum is back.
async fn publish_probe(js: &jetstream::Context) -> Result<()> {
    js.publish("fence.cluster-test.probe", "".into())
        .await?
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_start_on_the_seeds_with_one_seed_down() -> Result<()> {
    let _serial = serial().await;
    let mut cluster = NatsCluster::start().await?;
    // Its streams and durable made while every node is up (creating a stream
    // of 3 replicas with a node known to be down fails: no peers to place it).
    let first = Service::spawn("pricing", &cluster.urls())?;
    first.wait_ready(READY).await?;
    cluster.kill(0);
    // The first seed refuses connections: the second instance connects to another.
    let second = Service::spawn("pricing", &cluster.urls())?;
    second.wait_ready(READY).await?;
    Ok(())
}
