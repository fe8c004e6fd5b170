//! The chaos suite's parts: a seeded random source, a steady background load that
//! records which rides JetStream acknowledged, available drivers for matching,
//! and the checks that follow every scenario (drain, `hail audit --json`, the
//! publisher's acknowledged rides among the stored requests, no driver twice).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream::{self, context::PublishAckFuture};
use futures::{StreamExt, stream::FuturesUnordered};
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, Event, LatLng, RideMatched, codec,
    headers, subjects,
};
use hail_runtime::service::Service;
use hail_testkit::{bin_path, wait_until};
use serde_json::Value;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::MissedTickBehavior,
};

use crate::{SERVICES, rides};

/// Publishes per load tick are spread over this interval.
const TICK: Duration = Duration::from_millis(20);
/// PubAcks awaited at once; below async-nats' own limit of about 5,000.
const ACK_WINDOW: usize = 2_000;

/// splitmix64: reproducible choices of what to kill and when.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A duration in `[min, max)`.
    pub fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_millis().max(1) as u64;
        min + Duration::from_millis(self.next_u64() % span)
    }
}

/// `HAIL_TEST_SEED` when set, else the clock; printed so a failure can be replayed.
pub fn seed(scenario: &str) -> u64 {
    let seed = std::env::var("HAIL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(hail_runtime::now_ms);
    println!("[{scenario}] seed {seed} (rerun with HAIL_TEST_SEED={seed})");
    seed
}

/// What the publisher saw: rides JetStream acknowledged, publishes that failed.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Rides whose PubAck arrived.
    pub acked: HashSet<String>,
    /// Rides whose publish failed or got no PubAck (JetStream may still hold some).
    pub failed: HashSet<String>,
}

/// A background publisher of `rides::ride(prefix, i)` at a steady rate, PubAcks
/// awaited in a bounded window by a second task.
pub struct Load {
    stop: watch::Sender<bool>,
    publisher: JoinHandle<Result<()>>,
    acker: JoinHandle<LoadReport>,
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl Load {
    /// Starts publishing `per_second` rides with ids `<prefix>-<i>`.
    pub fn start(js: jetstream::Context, prefix: &str, per_second: usize) -> Load {
        let (stop, stopped) = watch::channel(false);
        let (tx, rx) = mpsc::channel(1_000);
        let acked = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let per_tick = (per_second * TICK.as_millis() as usize / 1000).max(1);
        let publisher = tokio::spawn(publish_loop(js, prefix.to_string(), per_tick, tx, stopped));
        let acker = tokio::spawn(ack_loop(rx, acked.clone(), failed.clone()));
        Load {
            stop,
            publisher,
            acker,
            acked,
            failed,
        }
    }

    /// Rides acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// Publishes failed so far (no PubAck, or not sent at all).
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until `n` more rides than now have been acknowledged.
    pub async fn wait_acked_more(&self, n: usize, timeout: Duration, what: &str) -> Result<()> {
        let target = self.acked() + n;
        wait_until(timeout, what, || async { self.acked() >= target }).await
    }

    /// Stops publishing, awaits the outstanding PubAcks, and reports.
    pub async fn stop(self) -> Result<LoadReport> {
        let _ = self.stop.send(true);
        self.publisher.await.context("publisher task")??;
        self.acker.await.context("ack task")
    }
}

type Pending = (String, Option<PublishAckFuture>);

async fn publish_loop(
    js: jetstream::Context,
    prefix: String,
    per_tick: usize,
    tx: mpsc::Sender<Pending>,
    mut stopped: watch::Receiver<bool>,
) -> Result<()> {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut i = 0;
    while !*stopped.borrow() {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => {}
        }
        for _ in 0..per_tick {
            let ride = rides::ride(&prefix, i);
            i += 1;
            let sent = js
                .publish_with_headers(
                    ride.subject(),
                    headers::for_event(&ride),
                    codec::encode(&ride)?,
                )
                .await;
            // A publish that could not even be sent is a failed one, like a missing PubAck.
            tx.send((ride.ride_id.to_string(), sent.ok()))
                .await
                .context("ack task ended early")?;
        }
    }
    Ok(())
}

async fn ack_loop(
    mut rx: mpsc::Receiver<Pending>,
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut window = FuturesUnordered::new();
    let mut open = true;
    while open || !window.is_empty() {
        tokio::select! {
            next = rx.recv(), if open && window.len() < ACK_WINDOW => match next {
                Some((ride, Some(fut))) => window.push(async move { (ride, fut.await.is_ok()) }),
                Some((ride, None)) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    report.failed.insert(ride);
                }
                None => open = false,
            },
            Some((ride, ok)) = window.next(), if !window.is_empty() => {
                if ok {
                    acked.fetch_add(1, Ordering::Relaxed);
                    report.acked.insert(ride);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    report.failed.insert(ride);
                }
            }
        }
    }
    report
}

/// Publishes `n` available drivers in berlin around the sample pickup, PubAcks awaited.
pub async fn publish_drivers(js: &jetstream::Context, n: usize) -> Result<()> {
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let d = DriverLocationUpdated {
            driver_id: DriverId::new(format!("chaos-d-{i}"))?,
            city: City::new("berlin")?,
            // A ring of drivers within about 1 km of 52.52, 13.405.
            position: LatLng::new(
                52.52 + 0.008 * (i as f64).sin(),
                13.405 + 0.012 * (i as f64).cos(),
            )?,
            status: DriverStatus::Available,
            at_ms: hail_runtime::now_ms(),
        };
        acks.push(
            js.publish_with_headers(d.subject(), headers::for_event(&d), codec::encode(&d)?)
                .await?,
        );
    }
    for a in acks {
        a.await.context("driver not acknowledged")?;
    }
    Ok(())
}

/// Waits until every service's durable has nothing pending and nothing unacknowledged.
pub async fn wait_all_drained(js: &jetstream::Context, timeout: Duration) -> Result<()> {
    for durable in SERVICES {
        let what = format!("durable {durable} drained");
        wait_until(timeout, &what, || rides::drained(js, durable)).await?;
    }
    Ok(())
}

/// One service's line of `hail audit --json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Audited {
    pub service: String,
    pub published: u64,
    pub effects: u64,
    pub dead_lettered: u64,
    pub pending: u64,
    pub duplicates: u64,
    pub unaccounted: u64,
    pub holds: bool,
    pub examples: Vec<String>,
}

/// Runs the real `hail audit --json`: (exit success, overall holds, per-service lines).
pub async fn hail_audit(nats_url: &str) -> Result<(bool, bool, Vec<Audited>)> {
    let out = tokio::process::Command::new(bin_path("hail")?)
        .args(["--nats-url", nats_url, "audit", "--json"])
        .output()
        .await
        .context("running hail audit")?;
    let json: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "hail audit printed no JSON (status {}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let services = json["services"]
        .as_array()
        .context("no services in the audit")?
        .iter()
        .map(audited)
        .collect::<Result<Vec<_>>>()?;
    let holds = json["holds"].as_bool().context("no holds in the audit")?;
    Ok((out.status.success(), holds, services))
}

fn audited(v: &Value) -> Result<Audited> {
    let n = |k: &str| {
        v[k].as_u64()
            .with_context(|| format!("audit field {k} in {v}"))
    };
    Ok(Audited {
        service: v["service"].as_str().context("audit service")?.to_string(),
        published: n("published")?,
        effects: n("effects")?,
        dead_lettered: n("dead_lettered")?,
        pending: n("pending")?,
        duplicates: n("duplicates")?,
        unaccounted: n("unaccounted")?,
        holds: v["holds"].as_bool().context("audit holds")?,
        examples: v["examples"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Every `RideMatched` stored: ride id → driver id.
pub async fn matched_drivers(js: &jetstream::Context) -> Result<Vec<(String, String)>> {
    let messages = rides::stored(js, subjects::RIDES_STREAM, subjects::RIDES_MATCHED_ALL).await?;
    messages
        .iter()
        .map(|msg| {
            let m: RideMatched = codec::decode(&msg.payload)?;
            Ok((m.ride_id.to_string(), m.driver_id.to_string()))
        })
        .collect()
}

/// Drains, audits and checks one scenario's outcome; prints its report.
pub async fn verify(
    scenario: &str,
    js: &jetstream::Context,
    nats_url: &str,
    load: &LoadReport,
    drain: Duration,
) -> Result<()> {
    wait_all_drained(js, drain).await?;
    let (exit_ok, holds, audit) = hail_audit(nats_url).await?;
    let (stored, stored_ids) =
        rides::read_subject(js, subjects::RIDES_STREAM, subjects::RIDES_REQUESTED_ALL).await?;
    let lost: Vec<&String> = load.acked.difference(&stored_ids).collect();
    let phantom: Vec<&String> = stored_ids
        .iter()
        .filter(|r| !load.acked.contains(*r) && !load.failed.contains(*r))
        .collect();
    let stored_failed = load.failed.intersection(&stored_ids).count();
    print_report(scenario, load, stored, stored_failed, &audit, lost.len());
    for a in &audit {
        ensure!(
            a.duplicates == 0 && a.unaccounted == 0 && a.pending == 0,
            "[{scenario}] {}: {a:?}",
            a.service
        );
        ensure!(
            a.published == a.effects + a.dead_lettered + a.pending && a.holds,
            "[{scenario}] {} does not add up: {a:?}",
            a.service
        );
        ensure!(
            a.published == stored as u64,
            "[{scenario}] {} audited {} requests, the stream holds {stored}",
            a.service,
            a.published
        );
    }
    ensure!(holds && exit_ok, "[{scenario}] hail audit does not hold");
    ensure!(
        audit.len() == SERVICES.len(),
        "[{scenario}] audit covers {audit:?}"
    );
    ensure!(
        lost.is_empty(),
        "[{scenario}] {} acknowledged rides are not in RIDES, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    ensure!(
        stored == stored_ids.len() && phantom.is_empty(),
        "[{scenario}] {stored} requests stored for {} rides; not published by the load: {:?}",
        stored_ids.len(),
        &phantom[..phantom.len().min(5)]
    );
    print_redeliveries(scenario, js, stored as u64).await?;
    no_driver_twice(scenario, js).await
}

/// Deliveries beyond the first, per durable: how hard the faults hit.
async fn print_redeliveries(scenario: &str, js: &jetstream::Context, requests: u64) -> Result<()> {
    let mut stream = js.get_stream(subjects::RIDES_STREAM).await?;
    let messages = stream.info().await?.state.messages;
    let mut line = format!("[{scenario}] redeliveries:");
    for service in Service::ALL {
        let durable = service.durable();
        let info = stream.consumer_info(durable).await?;
        // analytics reads all of RIDES; the others only the requests (no completions here).
        let read = if service == Service::Analytics {
            messages
        } else {
            requests
        };
        let extra = info.delivered.consumer_sequence.saturating_sub(read);
        line.push_str(&format!(" {durable} {extra}"));
    }
    println!("{line}");
    Ok(())
}

/// Two rides never got the same driver (no completions are published here).
async fn no_driver_twice(scenario: &str, js: &jetstream::Context) -> Result<()> {
    let matched = matched_drivers(js).await?;
    let mut by_driver: HashMap<&str, &str> = HashMap::new();
    for (ride, driver) in &matched {
        if let Some(other) = by_driver.insert(driver, ride) {
            ensure!(
                other == ride,
                "[{scenario}] driver {driver} given to rides {other} and {ride}"
            );
        }
    }
    println!(
        "[{scenario}] {} rides matched to {} distinct drivers",
        matched.len(),
        by_driver.len()
    );
    Ok(())
}

fn print_report(
    scenario: &str,
    load: &LoadReport,
    stored: usize,
    stored_failed: usize,
    audit: &[Audited],
    lost: usize,
) {
    println!(
        "[{scenario}] rides acknowledged {}, publishes failed {} (of which JetStream stored {stored_failed}), requests in RIDES {stored}, lost {lost}",
        load.acked.len(),
        load.failed.len(),
    );
    for a in audit {
        println!(
            "[{scenario}] {:<9} published {:>6}  effects {:>6}  dead-lettered {:>3}  pending {}  duplicates {}  unaccounted {}  holds {}{}",
            a.service,
            a.published,
            a.effects,
            a.dead_lettered,
            a.pending,
            a.duplicates,
            a.unaccounted,
            a.holds,
            if a.examples.is_empty() {
                String::new()
            } else {
                format!("  e.g. {:?}", a.examples)
            }
        );
    }
}
