//! `hail-loadgen run --via http`: the city model's rides through a real
//! hail-gateway, answered by a real pricing, and matched to their answers
//! through the gateway's ride ids.

use std::time::Duration;

use hail_e2e::{gateway::Gateway, services::Service};
use hail_testkit::NatsServer;
use serde_json::Value;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rides_go_through_the_gateway_and_their_answers_are_matched() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let pricing = Service::spawn("pricing", &url).unwrap();
    pricing.wait_ready(Duration::from_secs(30)).await.unwrap();
    let gw = Gateway::start(&url, &[]).await.unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hail-loadgen"))
        .args(["run", "--nats-url", &url, "--via", "http", "--gateway-url"])
        .arg(gw.url())
        .args([
            "--rate",
            "100",
            "--duration",
            "3s",
            "--drivers-per-city",
            "5",
        ])
        .args(["--run-id", "viahttp", "--settle", "30s", "--json"])
        .env_remove("NATS_URL")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not the JSON report ({e}): {stderr}"));
    let published = n(&r["rides"]["published"]);
    assert!((200..=400).contains(&published), "{published}: {r}");
    assert_eq!(n(&r["rides"]["failed"]), 0, "{r}");
    // pricing's answers carry the gateway's ride ids: each found its ride.
    assert_eq!(n(&r["answers"]["priced"]), published, "{r}");
    assert_eq!(n(&r["missing"]["priced"]), 0, "{r}");
    // Every ride went through the gateway: it counted each.
    let (_, metrics) = hail_testkit::http_get(&format!("{}/metrics", gw.url()))
        .await
        .unwrap();
    let accepted = hail_testkit::metric_sum(&metrics, "hail_gateway_rides_accepted_total", &[]);
    assert_eq!(accepted, Some(published as f64), "{metrics}");
}
