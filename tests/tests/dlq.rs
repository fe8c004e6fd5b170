//! `hail dlq`, run as the real binary against dead letters made for real by the
//! real services: poison every service refuses, and valid requests fraud gave up
//! on under injected faults. Listing, showing, replaying (once in effect, only for
//! fraud) and purging them; the audit holds afterwards.

use std::{collections::HashSet, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_e2e::{
    SERVICES, rides, serial,
    services::{self, Service},
};
use hail_events::{sample, subjects};
use hail_runtime::metrics::names::SKIPPED;
use hail_testkit::{NatsServer, bin_path, wait_until};
use serde_json::Value;

const DRAIN: Duration = Duration::from_secs(120);
/// Valid requests fraud dead-letters while it fails every delivery.
const DOOMED: usize = 10;

async fn jetstream_of(server: &NatsServer) -> Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(server.url()).await?))
}

async fn wait_drained(js: &jetstream::Context, durable: &str) -> Result<()> {
    wait_until(DRAIN, &format!("durable {durable} drained"), || {
        rides::drained(js, durable)
    })
    .await
}

async fn wait_letters(js: &jetstream::Context, service: &str, n: usize) -> Result<()> {
    let what = format!("{n} dead letters of {service}");
    wait_until(DRAIN, &what, || async {
        rides::dead_letters(js, service)
            .await
            .is_ok_and(|l| l.len() >= n)
    })
    .await?;
    assert_eq!(
        rides::dead_letters(js, service).await?.len(),
        n,
        "{service}"
    );
    Ok(())
}

/// The output of `hail --nats-url <server> <args>`.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn hail(server: &NatsServer, args: &[&str]) -> Result<Run> {
    let out = tokio::process::Command::new(bin_path("hail")?)
        .args(["--nats-url", &server.url()])
        .args(args)
        .output()
        .await
        .with_context(|| format!("cannot run hail {args:?}"))?;
    Ok(Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `hail <args>`, which must succeed.
async fn hail_ok(server: &NatsServer, args: &[&str]) -> Result<String> {
    let run = hail(server, args).await?;
    anyhow::ensure!(
        run.ok,
        "hail {args:?} failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    Ok(run.stdout)
}

async fn hail_json(server: &NatsServer, args: &[&str]) -> Result<Value> {
    let out = hail_ok(server, args).await?;
    serde_json::from_str(&out).with_context(|| format!("hail {args:?} printed {out}"))
}

/// (service, kind) of every row of `hail dlq ls --json`, sorted.
fn kinds(rows: &Value) -> Vec<(String, String)> {
    let mut out: Vec<_> = rows
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|r| (text(&r["service"]), text(&r["kind"])))
        .collect();
    out.sort();
    out
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn rows_where<'a>(rows: &'a Value, key: &str, value: &str) -> Vec<&'a Value> {
    rows.as_array()
        .map(|a| a.iter().filter(|r| r[key] == value).collect())
        .unwrap_or_default()
}

fn dlq_seq(row: &Value) -> String {
    row["dlq_seq"].as_u64().unwrap_or(0).to_string()
}

/// Waits until `svc` acked `n` replays meant for another service without handling them.
async fn wait_skipped(svc: &Service, n: f64) -> Result<()> {
    let why = [("why", "replay_for_another_service")];
    let what = format!("{} skipped {n} replays for fraud", svc.name);
    wait_until(Duration::from_secs(10), &what, || async {
        svc.metric(SKIPPED, &why).await.is_ok_and(|v| v >= n)
    })
    .await?;
    assert_eq!(svc.metric(SKIPPED, &why).await?, n, "{}", svc.name);
    Ok(())
}

/// Messages in RIDES (replays included).
async fn rides_messages(js: &jetstream::Context) -> Result<u64> {
    let mut s = js.get_stream(subjects::RIDES_STREAM).await?;
    Ok(s.info().await?.state.messages)
}

/// Poison for every service, then valid requests that only fraud dead-letters;
/// fraud is restarted without faults at the end. Returns the four services.
async fn make_dead_letters(server: &NatsServer, js: &jetstream::Context) -> Result<Vec<Service>> {
    let mut svcs = services::spawn_all(&server.url()).await?;
    let garbage = b"\xc1 this is not msgpack".to_vec();
    let berlin = "rides.requested.berlin";
    rides::publish_raw(js, berlin, garbage, Some("RideRequested")).await?;
    let bad = sample::ride_requested_raw("bad-lat", "berlin", 95.5, 13.4);
    rides::publish_raw(js, berlin, bad, Some("RideRequested")).await?;
    for s in SERVICES {
        wait_letters(js, s, 2).await?;
        wait_drained(js, s).await?;
    }

    // Fraud now fails every delivery: after two it gives up on each request.
    svcs[2].process.kill();
    let faults = [
        "--fault-retry-rate",
        "1",
        "--max-deliver",
        "2",
        "--backoff",
        "200ms",
    ];
    let failing = Service::spawn_with("fraud", &server.url(), &faults)?;
    failing.wait_ready(Duration::from_secs(30)).await?;
    svcs[2] = failing;
    rides::publish(js, "doomed", 0, DOOMED).await?;
    wait_letters(js, "fraud", 2 + DOOMED).await?;
    for s in SERVICES {
        wait_drained(js, s).await?;
    }
    svcs[2].restart()?; // without the faults
    svcs[2].wait_ready(Duration::from_secs(30)).await?;
    Ok(svcs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_replayed_once_and_purged() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = jetstream_of(&server).await?;
    let svcs = make_dead_letters(&server, &js).await?;

    // ls: every dead letter, with its service and kind.
    let rows = hail_json(&server, &["dlq", "ls", "--json"]).await?;
    let mut want = Vec::new();
    for s in SERVICES {
        want.push((s.to_string(), "invalid_coordinate".to_string()));
        want.push((s.to_string(), "not_an_event".to_string()));
    }
    want.extend((0..DOOMED).map(|_| ("fraud".to_string(), "max_deliveries".to_string())));
    want.sort();
    assert_eq!(kinds(&rows), want);
    let fraud_rows = hail_json(&server, &["dlq", "ls", "--service", "fraud", "--json"]).await?;
    assert_eq!(fraud_rows.as_array().map(Vec::len), Some(2 + DOOMED));
    let table = hail_ok(&server, &["dlq", "ls"]).await?;
    assert!(
        table.contains(&format!("{} dead letters", 8 + DOOMED)),
        "{table}"
    );

    // show: the reason and the decoded body of a valid request fraud gave up on.
    let doomed = rows_where(&rows, "kind", "max_deliveries");
    let shown = hail_json(&server, &["dlq", "show", &dlq_seq(doomed[0]), "--json"]).await?;
    let reason = shown["letter"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("gave up after 2 deliveries"), "{shown}");
    // The original subject, the one of the request's own city (dead letters of
    // concurrent deliveries land in any order, so which ride this is varies).
    let city = shown["body"]["value"]["city"].as_str().unwrap_or_default();
    assert_eq!(
        shown["letter"]["subject"],
        format!("rides.requested.{city}"),
        "{shown}"
    );
    assert_eq!(shown["body"]["status"], "decoded", "{shown}");
    assert_eq!(shown["body"]["event"], "RideRequested", "{shown}");
    let ride = shown["body"]["value"]["ride_id"]
        .as_str()
        .unwrap_or_default();
    assert!(ride.starts_with("doomed-"), "{shown}");
    assert!(shown["headers"]["Hail-Ride-Id"][0] == ride, "{shown}");
    let text = hail_ok(&server, &["dlq", "show", &dlq_seq(doomed[0])]).await?;
    assert!(
        text.contains("RideRequested v1") && text.contains(ride),
        "{text}"
    );

    // show: the decode error and a preview of garbage.
    let garbage = rows_where(&rows, "kind", "not_an_event");
    let shown = hail_json(&server, &["dlq", "show", &dlq_seq(garbage[0]), "--json"]).await?;
    assert_eq!(shown["body"]["status"], "undecodable", "{shown}");
    let error = shown["body"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("not a hail event"), "{shown}");
    let escaped = shown["body"]["escaped"].as_str().unwrap_or_default();
    assert!(escaped.contains("this is not msgpack"), "{shown}");
    let missing = hail(&server, &["dlq", "show", "9999"]).await?;
    assert!(
        !missing.ok && missing.stderr.contains("9999"),
        "{}",
        missing.stderr
    );

    replay_and_audit(&server, &js, &svcs).await?;
    purge(&server, &js).await
}

/// `replay --all --service fraud`: one RideScreened per doomed ride, no second
/// output anywhere else; again: nothing new; the audit holds.
async fn replay_and_audit(
    server: &NatsServer,
    js: &jetstream::Context,
    svcs: &[Service],
) -> Result<()> {
    let (priced_before, _) = rides::read_subject(js, "RIDES", "rides.priced.>").await?;
    assert_eq!(priced_before, DOOMED);
    let (screened_before, _) = rides::read_subject(js, "RIDES", "rides.screened.>").await?;
    assert_eq!(screened_before, 0);

    let out = hail_ok(server, &["dlq", "replay", "--all", "--service", "fraud"]).await?;
    assert!(
        out.contains(&format!("{DOOMED} replayed, 0 already replayed, 2 skipped")),
        "{out}"
    );
    let what = format!("{DOOMED} rides screened after the replay");
    wait_until(DRAIN, &what, || async {
        rides::read_subject(js, "RIDES", "rides.screened.>")
            .await
            .is_ok_and(|(n, _)| n >= DOOMED)
    })
    .await?;
    for s in SERVICES {
        wait_drained(js, s).await?;
    }
    let (screened, ids) = rides::read_subject(js, "RIDES", "rides.screened.>").await?;
    let want: HashSet<String> = (0..DOOMED).map(|i| format!("doomed-{i}")).collect();
    assert_eq!(
        (screened, &ids),
        (DOOMED, &want),
        "one RideScreened per ride"
    );
    let (priced, _) = rides::read_subject(js, "RIDES", "rides.priced.>").await?;
    assert_eq!(priced, DOOMED, "pricing must not quote a replay for fraud");
    let (matched, _) = rides::read_subject(js, "RIDES", "rides.matched.>").await?;
    let (unmatched, _) = rides::read_subject(js, "RIDES", "rides.unmatched.>").await?;
    assert_eq!(
        matched + unmatched,
        DOOMED,
        "matching must not match a replay"
    );
    let analytics = &svcs[3];
    let counted = analytics
        .metric("hail_analytics_events_total", &[("event", "RideRequested")])
        .await?;
    assert_eq!(counted, DOOMED as f64, "analytics must not count a replay");
    // Outputs are de-duplicated by message id anyway: check the others did not
    // even handle the replays.
    for svc in svcs.iter().filter(|s| s.name != "fraud") {
        wait_skipped(svc, DOOMED as f64).await?;
        let processed = svc.processed("RideRequested").await?;
        assert_eq!(processed, DOOMED as f64, "{} handled a replay", svc.name);
    }

    let before = rides_messages(js).await?;
    let again = hail_ok(server, &["dlq", "replay", "--all", "--service", "fraud"]).await?;
    assert!(
        again.contains(&format!("0 replayed, {DOOMED} already replayed, 2 skipped")),
        "{again}"
    );
    assert_eq!(
        again.matches(": already replayed as RIDES #").count(),
        DOOMED
    );
    assert_eq!(
        rides_messages(js).await?,
        before,
        "a second replay stores nothing"
    );

    let audit = hail_json(server, &["audit", "--json"]).await?;
    assert_eq!(audit["holds"], true, "{audit}");
    Ok(())
}

/// The garbage cannot be replayed by accident; purge asks first, then empties dlq.fraud.
async fn purge(server: &NatsServer, js: &jetstream::Context) -> Result<()> {
    let fraud = hail_json(server, &["dlq", "ls", "--service", "fraud", "--json"]).await?;
    let garbage = rows_where(&fraud, "kind", "not_an_event");
    let seq = dlq_seq(garbage[0]);
    let refused = hail(server, &["dlq", "replay", &seq]).await?;
    assert!(
        !refused.ok
            && refused
                .stderr
                .contains(&format!("dead letter {seq} does not decode")),
        "{}",
        refused.stderr
    );

    let total = 8 + DOOMED;
    let asked = hail(server, &["dlq", "purge"]).await?;
    assert!(
        !asked.ok
            && asked
                .stderr
                .contains(&format!("would purge {total} dead letters")),
        "{}",
        asked.stderr
    );
    let rows = hail_json(server, &["dlq", "ls", "--json"]).await?;
    assert_eq!(
        rows.as_array().map(Vec::len),
        Some(total),
        "nothing purged without --yes"
    );

    let out = hail_ok(server, &["dlq", "purge", "--yes", "--service", "fraud"]).await?;
    assert!(
        out.contains(&format!("purged {} dead letters of fraud", 2 + DOOMED)),
        "{out}"
    );
    assert!(rides::dead_letters(js, "fraud").await?.is_empty());
    let rest = hail_json(server, &["dlq", "ls", "--json"]).await?;
    assert_eq!(rest.as_array().map(Vec::len), Some(6), "{rest}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dlq_stream_hail_dlq_says_no_service_has_started() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let run = hail(&server, &["dlq", "ls"]).await?;
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains("no hail service has started"),
        "{}",
        run.stderr
    );
    let bad = hail(&server, &["dlq", "ls", "--service", "billing"]).await?;
    assert!(!bad.ok && bad.stderr.contains("billing"), "{}", bad.stderr);
    Ok(())
}
