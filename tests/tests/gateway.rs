//! hail-gateway as a process against a real nats-server: schemathesis with
//! every check against its OpenAPI document, and an Idempotency-Key that
//! still gives the same ride after the gateway restarts.

use std::time::Duration;

use hail_e2e::gateway::{Gateway, run_tool, schemathesis_bin};
use hail_events::{AnyEvent, subjects};
use hail_runtime::provision;
use hail_testkit::NatsServer;

async fn nats_with_streams() -> (NatsServer, async_nats::jetstream::Context) {
    let nats = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    provision::ensure_streams(&js, &provision::StreamSettings::default())
        .await
        .unwrap();
    (nats, js)
}

/// Every request RIDES holds.
async fn requests(js: &async_nats::jetstream::Context) -> Vec<String> {
    let mut stream = js.get_stream(subjects::RIDES_STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let msg = stream.get_raw_message(seq).await.unwrap();
        match AnyEvent::decode(&msg.subject, &msg.payload) {
            Ok(AnyEvent::Requested(r)) => out.push(r.ride_id.to_string()),
            Ok(_) => {}
            Err(e) => panic!("RIDES seq {seq} is not a valid event: {e}"),
        }
    }
    out
}

#[tokio::test]
async fn schemathesis_passes_every_check() {
    let _serial = hail_e2e::serial().await;
    let st = schemathesis_bin().unwrap();
    let (nats, js) = nats_with_streams().await;
    let gw = Gateway::start(&nats.url(), &[]).await.unwrap();
    let config = hail_e2e::gateway::repo_root().join("tests/schemathesis.toml");
    let report = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--config-file",
        &config.display().to_string(),
        "--no-color",
        "run",
        &format!("{}/openapi.json", gw.url()),
        "--checks",
        "all",
        "--max-examples",
        "60",
        "--seed",
        "20261206",
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--report-dir",
        &report.path().display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let (ok, out) = run_tool(&st, &args, &[], Duration::from_secs(600))
        .await
        .unwrap();
    assert!(
        ok,
        "schemathesis failed:\n{out}\ngateway log:\n{}",
        gw.process.log_tail()
    );
    // It did test: its summary names the three operations, and rides went in.
    assert!(
        out.contains("3 selected") || out.contains("3 total"),
        "{out}"
    );
    assert!(
        !requests(&js).await.is_empty(),
        "no ride was accepted:\n{out}"
    );
    eprintln!("{out}");
}

#[tokio::test]
async fn an_idempotency_key_survives_a_gateway_restart() {
    let _serial = hail_e2e::serial().await;
    let (nats, js) = nats_with_streams().await;
    let mut gw = Gateway::start(&nats.url(), &[]).await.unwrap();
    let body = r#"{"rider":"r-1","city":"paris","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.86,"lng":2.29},"device":"d-1","card":"c-1"}"#;
    let post = |url: String| async move {
        let client = reqwest::Client::new();
        let res = client
            .post(format!("{url}/v1/rides"))
            .header("content-type", "application/json")
            .header("idempotency-key", "order-77")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let json: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        (status, location, json)
    };
    let (s1, loc1, b1) = post(gw.url()).await;
    assert_eq!(s1, 202, "{b1}");
    gw.restart().await.unwrap();
    let (s2, loc2, b2) = post(gw.url()).await;
    assert_eq!(s2, 202, "{b2}");
    assert_eq!(b1["ride_id"], b2["ride_id"]);
    assert_eq!(loc1, loc2);
    assert_eq!(requests(&js).await, [b1["ride_id"].as_str().unwrap()]);
}

/// examples/python against the real stack: one client publishes through NATS
/// and reads matching's answer, the other goes through the gateway.
#[tokio::test]
async fn the_python_examples_request_rides() {
    let _serial = hail_e2e::serial().await;
    let python = hail_e2e::gateway::python_bin().unwrap();
    let (nats, js) = nats_with_streams().await;
    let matching = hail_e2e::services::Service::spawn("matching", &nats.url()).unwrap();
    matching.wait_ready(Duration::from_secs(30)).await.unwrap();
    let gw = Gateway::start(&nats.url(), &[]).await.unwrap();
    let examples = hail_e2e::gateway::repo_root().join("examples/python");

    let script = examples.join("request_via_nats.py").display().to_string();
    let args = [
        script,
        "--city".into(),
        "paris".into(),
        "--wait".into(),
        "30".into(),
    ];
    let (ok, out) = run_tool(
        &python,
        &args,
        &[("NATS_URL", nats.url())],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(ok, "request_via_nats.py failed:\n{out}");
    let line: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let ride = line["ride_id"].as_str().unwrap().to_string();
    assert_eq!(line["stream"], "RIDES", "{line}");
    assert_eq!(line["duplicate"], false, "{line}");
    // matching has no driver: its answer, decoded by the Python client.
    assert_eq!(line["answer"]["event"], "RideUnmatched", "{line}");
    assert_eq!(line["answer"]["reason"], "no_driver_in_radius", "{line}");
    assert_eq!(line["answer"]["ride_id"], ride.as_str(), "{line}");

    let script = examples
        .join("request_via_gateway.py")
        .display()
        .to_string();
    let args = [script, "--gateway-url".into(), gw.url()];
    let (ok, out) = run_tool(&python, &args, &[], Duration::from_secs(60))
        .await
        .unwrap();
    assert!(ok, "request_via_gateway.py failed:\n{out}");
    let line: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let via_gateway = line["ride_id"].as_str().unwrap().to_string();
    assert_eq!(line["status"]["state"], "requested", "{line}");
    assert_eq!(
        line["location"],
        format!("/v1/rides/{via_gateway}").as_str()
    );

    let stored = requests(&js).await;
    assert!(
        stored.contains(&ride) && stored.contains(&via_gateway),
        "{stored:?}"
    );
}
