//! `hail-loadgen run` against a real nats-server, alone and with real services.

use std::{process::Output, time::Duration};

use async_nats::jetstream;
use hail_e2e::services::Service;
use hail_events::subjects;
use hail_testkit::{NatsServer, Process, free_port, http_get, metric_sum, wait_until};
use serde_json::Value;

/// Runs the generator to the end; its JSON report (stdout) and its stderr.
async fn loadgen(args: &[&str]) -> (Output, Value, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hail-loadgen"))
        .arg("run")
        .args(args)
        .env_remove("NATS_URL")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}); stderr:\n{stderr}"));
    (out, report, stderr)
}

/// The service `name` (`pricing`…) against `url`, once its `/readyz` answers 200.
async fn service(name: &'static str, url: &str) -> Service {
    let service = Service::spawn(name, url).unwrap();
    service.wait_ready(Duration::from_secs(30)).await.unwrap();
    service
}

async fn stream_state(url: &str, stream: &str) -> jetstream::stream::State {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let mut stream = js.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.clone()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_it_keeps_the_rate_and_reports_every_answer_missing() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let file = tempfile::NamedTempFile::new().unwrap();
    let (out, r, stderr) = loadgen(&[
        "--nats-url",
        &url,
        "--rate",
        "200",
        "--duration",
        "3s",
        "--cities",
        "berlin,paris",
        "--drivers-per-city",
        "25",
        "--driver-interval",
        "1s",
        "--idle-every",
        "1",
        "--offline-chance",
        "0",
        "--run-id",
        "alone",
        "--settle",
        "10s",
        "--json",
        "--report",
        file.path().to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{stderr}");

    // About rate x duration rides, all stored (600 expected, sd about 25).
    let published = n(&r["rides"]["published"]);
    assert!((450..=750).contains(&published), "{published}");
    assert_eq!(n(&r["rides"]["scheduled"]), published);
    assert_eq!(n(&r["rides"]["failed"]), 0);
    assert_eq!(r["stopped_by"], "duration");
    assert_eq!(
        stream_state(&url, subjects::RIDES_STREAM).await.messages,
        published
    );

    // 50 drivers, one report per second each for 3 s; DRIVERS keeps the last of each.
    assert_eq!(n(&r["fleet"]["drivers"]), 50);
    assert_eq!(n(&r["fleet"]["updates_published"]), 150);
    let drivers = stream_state(&url, subjects::DRIVERS_STREAM).await;
    assert_eq!((drivers.messages, drivers.last_sequence), (50, 150));

    // Nothing answers, and with no durable to answer the run did not wait for it.
    for kind in ["match_answer", "priced", "screened"] {
        assert_eq!(n(&r["missing"][kind]), published, "{kind}");
    }
    assert!(r["settle_s"].as_f64().unwrap() < 2.0, "{}", r["settle_s"]);
    assert_eq!(n(&r["answers"]["matched"]), 0);

    let publish = &r["latency_ms"]["publish"];
    assert_eq!(n(&publish["count"]), published);
    for q in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(publish[q].as_f64().unwrap() > 0.0, "{q}: {publish}");
        assert!(r["latency_ms"]["priced"][q].is_null(), "{q}");
    }
    assert_eq!(n(&r["latency_ms"]["priced"]["count"]), 0);
    let series = r["series"].as_array().unwrap();
    let per_second: u64 = series.iter().map(|s| n(&s["published"])).sum();
    assert_eq!(per_second, published);
    assert!((3..=4).contains(&series.len()), "{series:?}");

    let written: Value = serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
    assert_eq!(written, r);
    assert!(stderr.contains("missing   match answer"), "{stderr}");
    assert!(
        stderr.contains("] published "),
        "no progress line: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ride_count_ends_the_run() {
    let nats = NatsServer::start().unwrap();
    let (out, r, stderr) = loadgen(&[
        "--nats-url",
        &nats.url(),
        "--rate",
        "500",
        "--rides",
        "120",
        "--drivers-per-city",
        "2",
        "--run-id",
        "count",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{stderr}");
    assert_eq!(r["stopped_by"], "rides");
    assert_eq!(n(&r["rides"]["published"]), 120);
    assert_eq!(n(&r["rides_limit"]), 120);
    assert!(r["duration_s"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_window_refuses_rides_instead_of_slowing_the_schedule() {
    let nats = NatsServer::start().unwrap();
    // One ride in flight at a time at 5 000 rides/s: about 5 rides fall due per
    // millisecond tick, and all but the first find the window full.
    let (out, r, stderr) = loadgen(&[
        "--nats-url",
        &nats.url(),
        "--rate",
        "5000",
        "--duration",
        "2s",
        "--window",
        "1",
        "--drivers-per-city",
        "2",
        "--run-id",
        "full",
        "--json",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed publishes fail the run: {stderr}"
    );
    let scheduled = n(&r["rides"]["scheduled"]);
    assert!(
        (7_500..=12_500).contains(&scheduled),
        "the schedule slowed: {scheduled}"
    );
    let refused = n(&r["rides"]["failed_by_kind"]["backpressure"]["count"]);
    assert!(refused > scheduled / 4, "{refused} of {scheduled}");
    assert_eq!(
        n(&r["rides"]["published"]) + n(&r["rides"]["failed"]),
        scheduled
    );
    assert!(
        stderr.contains("backpressure, e.g.: 1 rides already awaiting their PubAck"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pricing_running_every_ride_is_priced() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _pricing = service("pricing", &url).await;
    let (out, r, stderr) = loadgen(&[
        "--nats-url",
        &url,
        "--rate",
        "200",
        "--duration",
        "3s",
        "--drivers-per-city",
        "10",
        "--run-id",
        "priced",
        "--settle",
        "30s",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{stderr}");
    let published = n(&r["rides"]["published"]);
    assert!((450..=750).contains(&published), "{published}");
    assert_eq!(n(&r["latency_ms"]["priced"]["count"]), published);
    assert_eq!(n(&r["answers"]["priced"]), published);
    assert_eq!(n(&r["missing"]["priced"]), 0);
    // matching and fraud never ran: their answers are missing, and not waited for.
    assert_eq!(n(&r["missing"]["match_answer"]), published);
    assert_eq!(n(&r["missing"]["screened"]), published);
    assert!(r["settle_s"].as_f64().unwrap() < 25.0, "{}", r["settle_s"]);
    let p50 = r["latency_ms"]["priced"]["p50"].as_f64().unwrap();
    let max = r["latency_ms"]["priced"]["max"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= max, "{}", r["latency_ms"]["priced"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matched_rides_become_trips_that_complete_and_release_their_drivers() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let matching = service("matching", &url).await;
    let metrics = matching.url("/metrics");
    let (out, r, stderr) = loadgen(&[
        "--nats-url",
        &url,
        "--rate",
        "20",
        "--duration",
        "4s",
        "--cities",
        "berlin",
        "--drivers-per-city",
        "40",
        "--driver-interval",
        "1s",
        "--trip-seconds",
        "1",
        "--cancel-share",
        "0",
        "--run-id",
        "trips",
        "--settle",
        "30s",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{stderr}");
    let published = n(&r["rides"]["published"]);
    let matched = n(&r["answers"]["matched"]);
    assert_eq!(matched + n(&r["answers"]["unmatched"]), published);
    assert_eq!(n(&r["missing"]["match_answer"]), 0);
    assert!(
        matched > published / 2,
        "{matched} of {published}: {}",
        r["answers"]
    );
    assert_eq!(n(&r["latency_ms"]["matched"]["count"]), matched);
    // Every matched ride was completed, during the run or at its end.
    assert_eq!(n(&r["fleet"]["completions_published"]), matched);
    assert_eq!(n(&r["fleet"]["completions_failed"]), 0);

    // matching saw each completion and released every driver.
    wait_until(
        Duration::from_secs(20),
        "matching to release every driver",
        || async {
            let Ok((200, body)) = http_get(&metrics).await else {
                return false;
            };
            let released = metric_sum(
                &body,
                "hail_matching_completions_total",
                &[("outcome", "released")],
            );
            let held = metric_sum(&body, "hail_matching_drivers_claimed", &[]);
            released == Some(matched as f64) && held.unwrap_or(0.0) == 0.0
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_stops_the_run_early_and_it_still_reports() {
    let nats = NatsServer::start().unwrap();
    let args: Vec<String> = [
        "run",
        "--nats-url",
        &nats.url(),
        "--rate",
        "100",
        "--duration",
        "60s",
        "--drivers-per-city",
        "5",
        "--run-id",
        "sig",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    let path = std::path::PathBuf::from(env!("CARGO_BIN_EXE_hail-loadgen"));
    let mut run = Process::spawn(&path, &args, &[]).unwrap();
    wait_until(Duration::from_secs(20), "two progress lines", || async {
        run.log().contains("[   2.0 s]")
    })
    .await
    .unwrap();
    let status = run.terminate(Duration::from_secs(20)).unwrap();
    let log = run.log();
    assert!(status.success(), "{log}");
    assert!(log.contains("\"stopped_by\": \"signal\""), "{log}");
    assert!(log.contains("stopped by signal after"), "{log}");
}

#[tokio::test]
async fn unreachable_nats_is_named() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hail-loadgen"))
        .args([
            "run",
            "--nats-url",
            &url,
            "--connect-timeout",
            "1s",
            "--duration",
            "1s",
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach NATS at {url}")),
        "{stderr}"
    );
}
