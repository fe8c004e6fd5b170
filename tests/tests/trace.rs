//! A ride's trace: the request's W3C trace id is on every answer (each with
//! a span of its own) and in every service's log lines for it, and `hail
//! trace` shows the ride's events, its trace id, its dead letters and says
//! clearly when a ride is unknown or ride-view is not running.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_e2e::{SERVICES, rides, serial, services::launch};
use hail_events::{Event, codec, headers, sample, subjects, trace::TraceContext};
use hail_runtime::provision::{StreamSettings, ensure_streams};
use hail_testkit::{NatsServer, Process, bin_path, free_port, wait_until};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// `hail-<name>` logging each message it handles (debug), ready.
async fn spawn(name: &str, url: &str, extra: &[&str]) -> Result<Process> {
    let service: hail_runtime::service::Service = name.parse()?;
    let port = free_port();
    let p = launch(service.binary(), url, &format!("127.0.0.1:{port}"))?
        .args(extra)
        .envs([("RUST_LOG", "info,hail_runtime=debug")])
        .spawn()?;
    p.wait_ready(&format!("http://127.0.0.1:{port}/readyz"), WAIT)
        .await?;
    Ok(p)
}

/// Publishes one request in the trace `root`.
async fn request(js: &jetstream::Context, ride: &str, root: &TraceContext) -> Result<()> {
    let r = sample::ride_requested(ride, "berlin");
    let h = headers::for_event_in(&r, root);
    js.publish_with_headers(r.subject(), h, codec::encode(&r)?)
        .await?
        .await?;
    Ok(())
}

async fn wait_drained(js: &jetstream::Context, durables: &[&str]) -> Result<()> {
    for d in durables {
        wait_until(WAIT, &format!("{d} drained"), || rides::drained(js, d)).await?;
    }
    Ok(())
}

/// `hail` with its exit status, stdout and stderr.
async fn hail(url: &str, args: &[&str]) -> Result<(Option<i32>, String, String)> {
    let out = tokio::process::Command::new(bin_path("hail")?)
        .args(["--nats-url", url])
        .args(args)
        .output()
        .await?;
    Ok((
        out.status.code(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_trace_runs_through_every_service_and_hail_trace_shows_it() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let url = server.url();
    let js = rides::streams(&url).await?;
    let mut procs = Vec::new();
    for name in SERVICES.into_iter().chain(["ride-view"]) {
        procs.push((name, spawn(name, &url, &[]).await?));
    }
    let root = TraceContext::root();
    request(&js, "tr-1", &root).await?;
    // A second ride in another trace, so a wrong trace id would show.
    request(&js, "tr-2", &TraceContext::root()).await?;
    let all: Vec<&str> = SERVICES.into_iter().chain(["ride-view"]).collect();
    wait_drained(&js, &all).await?;

    // Every answer to tr-1 continues its trace, each with a span of its own.
    let answers: Vec<_> = rides::stored(&js, subjects::RIDES_STREAM, subjects::RIDES_ALL)
        .await?
        .into_iter()
        .filter(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(headers::RIDE_ID))
                .map(|v| v.as_str())
                == Some("tr-1")
                && !m.subject.starts_with("rides.requested.")
        })
        .collect();
    let mut spans = vec![root.span_id()];
    for m in &answers {
        let t = TraceContext::from_headers(m.headers.as_ref())
            .with_context(|| format!("no valid traceparent on {}", m.subject))?;
        assert_eq!(t.trace_id(), root.trace_id(), "{}", m.subject);
        assert!(!spans.contains(&t.span_id()), "{}: span reused", m.subject);
        spans.push(t.span_id());
    }
    let mut kinds: Vec<&str> = answers
        .iter()
        .map(|m| m.subject.split('.').nth(1).unwrap_or(""))
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["priced", "screened", "unmatched"]);

    // Every service's log lines about it name the trace.
    let trace_id = root.trace_id_hex();
    for (name, p) in &procs {
        wait_until(
            Duration::from_secs(10),
            &format!("{name} logs the trace id"),
            || async { p.log().contains(&trace_id) },
        )
        .await?;
    }

    // hail trace: the table and the JSON.
    let (code, table, err) = hail(&url, &["trace", "tr-1"]).await?;
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains(&format!("trace {trace_id}")), "{table}");
    for producer in ["intake", "matching", "pricing", "fraud"] {
        assert!(table.contains(producer), "{producer}: {table}");
    }
    let (code, json, err) = hail(&url, &["trace", "tr-1", "--json"]).await?;
    assert_eq!(code, Some(0), "{err}");
    let t: Value = serde_json::from_str(&json).with_context(|| json.clone())?;
    assert_eq!(t["trace_id"], trace_id.as_str(), "{t}");
    assert_eq!(t["state"], "unmatched", "{t}");
    let steps = t["steps"].as_array().context("steps")?;
    assert_eq!(steps.len(), 4, "{t}");
    assert_eq!(steps[0]["event"], "RideRequested");
    assert_eq!(steps[0]["latency_ms"], 0);
    let mut seqs = Vec::new();
    for s in steps {
        assert_eq!(s["trace_id"], trace_id.as_str(), "{s}");
        assert!(s["latency_ms"].as_i64().is_some_and(|l| l >= 0), "{s}");
        assert_eq!(s["in_stream"], true, "{s}");
        seqs.push(s["seq"].as_u64().context("seq")?);
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in stream order: {seqs:?}"
    );
    let consumers = t["consumers"].as_array().context("consumers")?;
    assert_eq!(consumers.len(), 5, "{t}");
    assert!(consumers.iter().all(|c| c["done"] == true), "{t}");
    assert_eq!(t["dead_letters"].as_array().map(Vec::len), Some(0), "{t}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hail_trace_shows_dead_letters_redeliveries_and_names_what_is_missing() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let url = server.url();
    // A 2 s duplicate window: a request older than 1 s takes the careful path.
    let js = jetstream::new(async_nats::connect(&url).await?);
    let settings = StreamSettings {
        duplicate_window: Duration::from_secs(2),
        ..StreamSettings::default()
    };
    ensure_streams(&js, &settings).await?;
    let window = ["--duplicate-window", "2s"];

    // No ride-view has ever run: said so, exit 2.
    let (code, _, err) = hail(&url, &["trace", "tr-9"]).await?;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ride-view is not running"), "{err}");
    let (code, _, err) = hail(&url, &["trace", "not a ride"]).await?;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"not a ride\" is not a ride id"), "{err}");

    // pricing fails every delivery: its second is its last, dead-lettered.
    let faulty = [
        "--fault-retry-rate",
        "1",
        "--max-deliver",
        "2",
        "--backoff",
        "1s",
        "--duplicate-window",
        "2s",
    ];
    let _pricing = spawn("pricing", &url, &faulty).await?;
    let _view = spawn("ride-view", &url, &window).await?;
    request(&js, "tr-9", &TraceContext::root()).await?;
    wait_drained(&js, &["pricing", "ride-view"]).await?;
    let (code, table, err) = hail(&url, &["trace", "tr-9"]).await?;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        table.contains("pricing gave up on #1 after 2 deliveries (max_deliveries"),
        "{table}"
    );
    let (_, json, _) = hail(&url, &["trace", "tr-9", "--json"]).await?;
    let t: Value = serde_json::from_str(&json).with_context(|| json.clone())?;
    let letters = t["dead_letters"].as_array().context("dead_letters")?;
    assert_eq!(letters.len(), 1, "{t}");
    assert_eq!(letters[0]["service"], "pricing");
    assert_eq!(letters[0]["seq"], 1);
    assert_eq!(letters[0]["deliveries"], 2);
    assert!(
        letters[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("gave up")),
        "{t}"
    );

    // fraud starts after a request is older than half the window: its answer
    // takes the careful path and leaves the fence marker `hail trace` reports.
    request(&js, "tr-late", &TraceContext::root()).await?;
    let published = tokio::time::Instant::now();
    wait_drained(&js, &["ride-view"]).await?;
    let (code, json, err) = hail(&url, &["trace", "tr-late", "--json"]).await?;
    assert_eq!(code, Some(0), "{err}");
    let t: Value = serde_json::from_str(&json).with_context(|| json.clone())?;
    assert_eq!(t["redeliveries"].as_array().map(Vec::len), Some(0), "{t}");
    tokio::time::sleep_until(published + Duration::from_millis(1500)).await;
    let _fraud = spawn("fraud", &url, &window).await?;
    wait_drained(&js, &["fraud", "pricing", "ride-view"]).await?;
    let (code, json, err) = hail(&url, &["trace", "tr-late", "--json"]).await?;
    assert_eq!(code, Some(0), "{err}");
    let t: Value = serde_json::from_str(&json).with_context(|| json.clone())?;
    let redeliveries = t["redeliveries"].as_array().context("redeliveries")?;
    assert_eq!(redeliveries.len(), 1, "{t}");
    assert_eq!(redeliveries[0]["service"], "fraud", "{t}");
    let steps = t["steps"].as_array().context("steps")?;
    assert!(steps.iter().any(|s| s["event"] == "RideScreened"), "{t}");
    let (_, table, _) = hail(&url, &["trace", "tr-late"]).await?;
    assert!(
        table.contains("fraud answered through its careful path"),
        "{table}"
    );

    // A ride RIDES never held, with ride-view running and caught up.
    let (code, _, err) = hail(&url, &["trace", "tr-nope"]).await?;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown ride tr-nope"), "{err}");
    assert!(err.contains("running and caught up"), "{err}");
    Ok(())
}
