//! A publish whose PubAck never came is "outcome unknown", not "failed": the
//! broker may have stored it. With nats-server frozen for longer than the
//! PubAck timeout, the run reads RIDES before it reports, and the report's
//! published count is exactly what RIDES holds.

use std::time::Duration;

use async_nats::jetstream;
use hail_events::subjects;
use hail_testkit::{NatsServer, wait_until};
use serde_json::Value;

/// Longer than async-nats' PubAck timeout (5 s).
const FROZEN_FOR: Duration = Duration::from_secs(8);

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rides_whose_pub_ack_timed_out_are_reconciled_against_rides() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_hail-loadgen"))
        .args([
            "run",
            "--nats-url",
            &url,
            "--rate",
            "200",
            "--duration",
            "16s",
            "--cities",
            "berlin",
            "--drivers-per-city",
            "5",
            "--run-id",
            "frozen",
            "--settle",
            "2s",
            "--json",
        ])
        .env_remove("NATS_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    let requests = |js: jetstream::Context| async move {
        match js.get_stream(subjects::RIDES_STREAM).await {
            Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        }
    };
    wait_until(
        Duration::from_secs(60),
        "the run to store 300 rides",
        || {
            let js = js.clone();
            async move { requests(js).await >= 300 }
        },
    )
    .await
    .unwrap();
    // The fault itself: the broker frozen for longer than the PubAck timeout.
    nats.pause().unwrap();
    tokio::time::sleep(FROZEN_FOR).await;
    nats.resume().unwrap();
    let out = run.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr:\n{stderr}"));

    let unknown = &r["rides"]["outcome_unknown"];
    assert!(n(&unknown["count"]) > 0, "nothing timed out: {stderr}");
    assert_eq!(unknown["reconciled"], true, "{stderr}");
    assert_eq!(
        n(&unknown["stored"]) + n(&unknown["not_stored"]),
        n(&unknown["count"])
    );
    // The broker got the frozen publishes once it woke: most were stored.
    assert!(n(&unknown["stored"]) > 0, "{unknown}");
    // The report's published count is what RIDES holds (no service answers here,
    // so RIDES holds the requests only), and none counts as failed for a timeout.
    let stored = requests(js.clone()).await;
    assert_eq!(n(&r["rides"]["published"]), stored, "{stderr}");
    assert!(
        r["rides"]["failed_by_kind"].get("timed_out").is_none(),
        "{stderr}"
    );
    assert!(stderr.contains("outcome unknown"), "{stderr}");
}
