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

/// schemathesis' seed: fixed, so a run is repeatable (`HAIL_SCHEMATHESIS_SEED`
/// picks another, to explore).
const SEED: &str = "20261206";

#[tokio::test]
async fn schemathesis_passes_every_check() {
    let seed = std::env::var("HAIL_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.into());
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
        &seed,
        // One worker: CPython 3.11's ast.parse is not thread-safe ("AST
        // constructor recursion depth mismatch" from hypothesis with two).
        "--workers",
        "1",
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
    let ride_view = hail_e2e::services::Service::spawn("ride-view", &nats.url()).unwrap();
    ride_view.wait_ready(Duration::from_secs(30)).await.unwrap();
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
    // Followed until matching's answer is in the ride view (it has no driver).
    let args = [
        script,
        "--gateway-url".into(),
        gw.url(),
        "--follow".into(),
        "30".into(),
    ];
    let (ok, out) = run_tool(&python, &args, &[], Duration::from_secs(60))
        .await
        .unwrap();
    assert!(ok, "request_via_gateway.py failed:\n{out}");
    let line: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let via_gateway = line["ride_id"].as_str().unwrap().to_string();
    assert_eq!(line["status"]["state"], "unmatched", "{line}");
    assert_eq!(
        line["status"]["unmatched"]["reason"], "no_driver_in_radius",
        "{line}"
    );
    assert!(line["decided_after_s"].as_f64().is_some(), "{line}");
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

/// With deploy/local/auth.conf, the gateway as its own identity (after `hail
/// provision` as the admin) takes, reads and cancels rides with no
/// permission violation, and may not publish what it does not own.
#[tokio::test]
async fn the_gateway_identity_may_do_its_work_and_no_more() {
    let _serial = hail_e2e::serial().await;
    let conf =
        std::fs::read_to_string(hail_e2e::gateway::repo_root().join("deploy/local/auth.conf"))
            .unwrap();
    let nats = NatsServer::start_with_config(&conf, &[]).unwrap();
    let admin = ["--user", "admin", "--password", "hail-local-admin"];
    let mut args = admin.to_vec();
    args.extend(["provision", "--rides-max-bytes", "1073741824"]);
    hail_e2e::cli::hail(&nats.url(), &args).await.unwrap();
    // The ride view bucket, as ride-view would create it, with one record.
    let admin_client = async_nats::ConnectOptions::new()
        .user_and_password("admin".into(), "hail-local-admin".into())
        .connect(nats.url())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(admin_client);
    let kv = js
        .create_key_value(hail_ride_view::store::bucket_config(1))
        .await
        .unwrap();
    let ride = hail_events::RideId::new("r-auth").unwrap();
    let mut view = hail_events::ride_view::RideView::new(ride.clone());
    view.city = Some("berlin".into());
    kv.put(ride.as_str(), serde_json::to_vec(&view).unwrap().into())
        .await
        .unwrap();

    let gw = Gateway::start(
        &nats.url(),
        &["--user", "gateway", "--password", "hail-local-gateway"],
    )
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let body = r#"{"rider":"r-1","city":"berlin","pickup":{"lat":52.52,"lng":13.4},"dropoff":{"lat":52.5,"lng":13.45},"device":"d-1","card":"c-1"}"#;
    for key in ["a-1", "a-1"] {
        let res = http
            .post(format!("{}/v1/rides", gw.url()))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 202, "{}", res.text().await.unwrap());
    }
    let res = http
        .get(format!("{}/v1/rides/r-auth", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let res = http
        .post(format!("{}/v1/rides/r-auth/cancel", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202, "{}", res.text().await.unwrap());
    let metrics = hail_testkit::http_get(&format!("{}/metrics", gw.url()))
        .await
        .unwrap()
        .1;
    let violations =
        hail_testkit::metric_sum(&metrics, "hail_nats_permission_violations_total", &[]);
    assert!(violations.unwrap_or(0.0) == 0.0, "{metrics}");
    assert!(
        !gw.process.log().contains("Permissions Violation"),
        "{}",
        gw.process.log()
    );
    assert_eq!(requests(&js).await.len(), 1);

    // Not its own: an answer.
    let gateway_client = async_nats::ConnectOptions::new()
        .user_and_password("gateway".into(), "hail-local-gateway".into())
        .connect(nats.url())
        .await
        .unwrap();
    let gjs = async_nats::jetstream::new(gateway_client);
    let answer = hail_events::sample::fare_quoted("r-x", "berlin");
    let refused = gjs
        .publish(
            hail_events::Event::subject(&answer),
            hail_events::codec::encode(&answer).unwrap(),
        )
        .await;
    let refused = match refused {
        Ok(ack) => ack.await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "the gateway published a fare");
}
