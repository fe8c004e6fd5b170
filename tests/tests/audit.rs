//! `hail audit` sees every loss and reports no false one, against a real
//! nats-server and the real services: requests RIDES dropped by its limits
//! before a service read them are lost for that service (exit 1, the rides
//! named); analytics' dead letters replayed, then aged out of RIDES, leave the
//! audit holding; an audit run while 2,000 rides/s flow holds.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream;
use hail_e2e::{SERVICES, chaos::Load, rides, serial, services::Service};
use hail_events::subjects;
use hail_runtime::provision::{StreamSettings, ensure_streams};
use hail_testkit::{NatsServer, bin_path, wait_until};
use serde_json::Value;

const DRAIN: Duration = Duration::from_secs(240);
/// RIDES' `max_bytes` in the tests that make it drop messages: a few hundred rides.
const SMALL: i64 = 256 * 1024;
/// Rides published at a time while filling it: their messages fit in it many
/// times over, so a service that keeps up between batches loses none.
const BATCH: usize = 10;

/// RIDES limited to `max_bytes`, made before any service starts.
async fn small_rides(server: &NatsServer, max_bytes: i64) -> Result<jetstream::Context> {
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let settings = StreamSettings {
        rides_max_age: Duration::from_secs(3600),
        rides_max_bytes: max_bytes,
        ..StreamSettings::default()
    };
    ensure_streams(&js, &settings).await?;
    Ok(js)
}

/// `hail audit --json`: (exit code, its JSON).
async fn audit(server: &NatsServer) -> Result<(i32, Value)> {
    let out = tokio::process::Command::new(bin_path("hail")?)
        .args(["--nats-url", &server.url(), "audit", "--json"])
        .output()
        .await
        .context("running hail audit")?;
    let json = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "hail audit printed no JSON (status {}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), json))
}

/// The line of `service` in an audit's JSON.
fn line<'a>(audit: &'a Value, service: &str) -> Result<&'a Value> {
    audit["services"]
        .as_array()
        .context("no services in the audit")?
        .iter()
        .find(|s| s["service"] == service)
        .with_context(|| format!("no {service} in {audit}"))
}

fn n(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or(u64::MAX)
}

/// (first, last) sequence of RIDES.
async fn bounds(js: &jetstream::Context) -> Result<(u64, u64)> {
    let info = js
        .get_stream(subjects::RIDES_STREAM)
        .await?
        .get_info()
        .await?;
    Ok((info.state.first_sequence, info.state.last_sequence))
}

async fn ack_floor(js: &jetstream::Context, durable: &str) -> Result<u64> {
    let info = js
        .get_stream(subjects::RIDES_STREAM)
        .await?
        .consumer_info(durable)
        .await?;
    Ok(info.ack_floor.stream_sequence)
}

/// Rides of `rides` whose request RIDES no longer holds and that matching's
/// answer, still in RIDES, names: a loss the audit can name.
async fn must_name(js: &jetstream::Context, rides: &HashSet<String>) -> Result<Vec<String>> {
    let (_, requested) =
        rides::read_subject(js, subjects::RIDES_STREAM, subjects::RIDES_REQUESTED_ALL).await?;
    let mut answered = HashSet::new();
    for filter in [subjects::RIDES_MATCHED_ALL, subjects::RIDES_UNMATCHED_ALL] {
        answered.extend(
            rides::read_subject(js, subjects::RIDES_STREAM, filter)
                .await?
                .1,
        );
    }
    Ok(rides
        .iter()
        .filter(|r| !requested.contains(*r) && answered.contains(*r))
        .cloned()
        .collect())
}

async fn wait_drained(js: &jetstream::Context, durables: &[&str]) -> Result<()> {
    for durable in durables {
        let what = format!("{durable} drained");
        wait_until(DRAIN, &what, || rides::drained(js, durable)).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_rides_dropped_before_a_service_read_them_are_lost_for_it() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = small_rides(&server, SMALL).await?;
    let max_bytes = SMALL.to_string();
    let limits = ["--rides-max-bytes", max_bytes.as_str()];
    let mut svcs = Vec::new();
    for name in SERVICES {
        svcs.push(Service::spawn_with(name, &server.url(), &limits)?);
    }
    for s in &svcs {
        s.wait_ready(Duration::from_secs(30)).await?;
    }
    rides::publish(&js, "early", 0, 50).await?;
    wait_drained(&js, &SERVICES).await?;
    let (code, before) = audit(&server).await?;
    ensure!(
        code == 0 && before["holds"] == true,
        "before the stop: {before}"
    );

    // pricing stops; rides go on until RIDES has dropped requests it owed.
    svcs[1].process.terminate(Duration::from_secs(15))?;
    let floor = ack_floor(&js, "pricing").await?;
    let mut late = HashSet::new();
    // Small batches, so that RIDES' front comes to rest, at some batch, among
    // requests whose answers (stored after them) it still holds.
    let mut round = 0;
    while bounds(&js).await?.0 <= floor + 100 || must_name(&js, &late).await?.is_empty() {
        ensure!(
            round < 200,
            "RIDES never dropped past pricing's floor {floor} with answers left"
        );
        let prefix = format!("late{round}");
        rides::publish(&js, &prefix, 0, BATCH).await?;
        late.extend((0..BATCH).map(|i| format!("{prefix}-{i}")));
        round += 1;
        // The others keep up, so RIDES drops nothing they still owe.
        wait_drained(&js, &["matching", "fraud", "analytics"]).await?;
    }

    let (code, after) = audit(&server).await?;
    ensure!(code == 1 && after["holds"] == false, "exit {code}: {after}");
    let pricing = line(&after, "pricing")?;
    let first_seq = n(&after["snapshot"], "first_seq");
    ensure!(
        n(pricing, "lost") == first_seq - 1 - floor && pricing["holds"] == false,
        "pricing stopped at {floor}, RIDES starts at {first_seq}: {pricing}"
    );
    let named: Vec<&str> = pricing["lost_rides"]
        .as_array()
        .context("lost_rides")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Every late ride whose request is gone and that matching answered is named.
    let must = must_name(&js, &late).await?;
    let (_, requested) =
        rides::read_subject(&js, subjects::RIDES_STREAM, subjects::RIDES_REQUESTED_ALL).await?;
    let (_, priced) =
        rides::read_subject(&js, subjects::RIDES_STREAM, subjects::RIDES_PRICED_ALL).await?;
    ensure!(
        must.iter().all(|r| named.contains(&r.as_str())),
        "named {named:?}, must name {must:?}"
    );
    ensure!(
        named
            .iter()
            .all(|r| !priced.contains(*r) && !requested.contains(*r)),
        "a named ride has its request or a quote in RIDES: {named:?}"
    );
    ensure!(
        pricing["examples"][0]
            .as_str()
            .is_some_and(|e| e.contains("dropped")),
        "{pricing}"
    );
    for other in ["matching", "fraud", "analytics"] {
        let l = line(&after, other)?;
        ensure!(
            l["holds"] == true && n(l, "lost") == 0,
            "{other} kept up: {l}"
        );
    }
    println!(
        "pricing lost {} sequences, {} rides named, {} of them published while it was down",
        n(pricing, "lost"),
        named.len(),
        named.iter().filter(|r| late.contains(**r)).count()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_dead_letters_replayed_then_aged_out_leave_the_audit_holding() -> Result<()> {
    const DOOMED: usize = 50;
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = small_rides(&server, SMALL).await?;
    let max_bytes = SMALL.to_string();
    let limits = ["--rides-max-bytes", max_bytes.as_str()];
    let mut svcs = Vec::new();
    for name in SERVICES {
        let faulty: &[&str] = if name == "analytics" {
            // Every delivery fails; after two, analytics gives up on each message.
            &[
                "--fault-retry-rate",
                "1",
                "--max-deliver",
                "2",
                "--backoff",
                "5s",
            ]
        } else {
            &[]
        };
        svcs.push(Service::spawn_with(
            name,
            &server.url(),
            &[&limits[..], faulty].concat(),
        )?);
    }
    for s in &svcs {
        s.wait_ready(Duration::from_secs(30)).await?;
    }
    rides::publish(&js, "doomed", 0, DOOMED).await?;
    wait_drained(&js, &SERVICES).await?;
    let (_, stored) = bounds(&js).await?;
    let letters = rides::dead_letters(&js, "analytics").await?;
    ensure!(
        letters.len() as u64 == stored,
        "analytics dead-lettered {} of {stored} messages",
        letters.len()
    );
    let (code, dead) = audit(&server).await?;
    let a = line(&dead, "analytics")?;
    ensure!(
        code == 0 && n(a, "dead_lettered") == DOOMED as u64 && n(a, "effects") == 0,
        "dead letters are accounted for: exit {code}, {a}"
    );

    svcs[3].restart_with(&limits)?; // without the faults
    svcs[3].wait_ready(Duration::from_secs(30)).await?;
    hail_e2e::cli::hail(
        &server.url(),
        &["dlq", "replay", "--all", "--service", "analytics"],
    )
    .await?;
    wait_until(DRAIN, "analytics counted the replayed requests", || async {
        audit(&server).await.is_ok_and(|(_, v)| {
            line(&v, "analytics").is_ok_and(|a| n(a, "effects") == DOOMED as u64)
        })
    })
    .await?;
    wait_drained(&js, &SERVICES).await?;
    let (code, replayed) = audit(&server).await?;
    let a = line(&replayed, "analytics")?;
    ensure!(
        code == 0 && replayed["holds"] == true,
        "after the replay: exit {code}, {replayed}"
    );
    ensure!(
        (n(a, "effects"), n(a, "dead_lettered"), n(a, "duplicates")) == (DOOMED as u64, 0, 0),
        "{a}"
    );

    // More rides push the originals (and their dead letters' requests) out of RIDES.
    let (_, last) = bounds(&js).await?;
    let mut round = 0;
    while bounds(&js).await?.0 <= stored {
        ensure!(
            round < 100,
            "RIDES never dropped the dead-lettered originals"
        );
        rides::publish(&js, &format!("later{round}"), 0, 5 * BATCH).await?;
        round += 1;
        // Every service keeps up, so RIDES drops nothing one still owes.
        wait_drained(&js, &SERVICES).await?;
    }
    let (code, aged) = audit(&server).await?;
    ensure!(
        code == 0 && aged["holds"] == true,
        "after the originals aged out of RIDES (it held up to {last}): exit {code}, {aged}"
    );
    for s in SERVICES {
        let l = line(&aged, s)?;
        ensure!(
            n(l, "duplicates") == 0 && n(l, "unaccounted") == 0 && n(l, "lost") == 0,
            "{l}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_while_2000_rides_per_second_flow_holds() -> Result<()> {
    const RATE: usize = 2_000;
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = rides::streams(&server.url()).await?;
    let _svcs = hail_e2e::services::spawn_all(&server.url()).await?;
    let load = Load::start(js.clone(), "flow", RATE);
    load.wait_acked_more(2 * RATE, DRAIN, "two seconds of load")
        .await?;
    let mut in_flight = 0;
    for run in 0..2 {
        let acked_before = load.acked();
        let (code, during) = audit(&server).await?;
        let published_meanwhile = load.acked() - acked_before;
        for s in SERVICES {
            let l = line(&during, s)?;
            ensure!(
                n(l, "duplicates") == 0 && n(l, "unaccounted") == 0 && n(l, "lost") == 0,
                "audit {run} under load, {s}: {l}"
            );
            in_flight += n(l, "pending");
        }
        ensure!(
            code == 0 && during["holds"] == true,
            "audit {run} under load: exit {code}, {during}"
        );
        ensure!(
            published_meanwhile >= RATE / 2,
            "the audit must run while rides flow: {published_meanwhile} published meanwhile"
        );
    }
    let report = load.stop().await?;
    println!(
        "{} rides acknowledged, {in_flight} requests in flight over 2 audits",
        report.acked.len()
    );
    Ok(())
}
