//! What scripts rely on from the real `hail` binary, against a real nats-server:
//! the exit codes (0 the audit holds, 1 it does not, 2 it could not run) and
//! `--json` on the listing commands.

use std::{
    process::Output,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_e2e::{rides, serial};
use hail_events::headers;
use hail_testkit::{NatsServer, bin_path, free_port};
use serde_json::Value;

/// Runs `hail --nats-url <nats_url> <args>`, whatever its exit code.
async fn hail(nats_url: &str, args: &[&str]) -> Result<Output> {
    tokio::process::Command::new(bin_path("hail")?)
        .args(["--nats-url", nats_url])
        .args(args)
        .output()
        .await
        .context("running hail")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `hail audit --json`: (exit code, the JSON it printed).
async fn audit(nats_url: &str) -> Result<(Option<i32>, Value)> {
    let out = hail(nats_url, &["audit", "--json"]).await?;
    let json = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("audit printed no JSON: {}", stderr(&out)))?;
    Ok((out.status.code(), json))
}

async fn streams(server: &NatsServer) -> Result<jetstream::Context> {
    hail_e2e::rides::streams(&server.url()).await
}

/// A pricing output for `ride`, as far as the audit reads it (its headers).
async fn publish_priced(js: &jetstream::Context, ride: &str) -> Result<()> {
    let mut h = async_nats::HeaderMap::new();
    h.insert(headers::RIDE_ID, ride);
    js.publish_with_headers("rides.priced.berlin", h, "{}".into())
        .await?
        .await
        .context("output not acknowledged")?;
    Ok(())
}

#[tokio::test]
async fn audit_exits_2_when_it_cannot_run_naming_the_url() -> Result<()> {
    let _serial = serial().await;
    let url = format!("nats://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = hail(&url, &["audit"]).await?;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot reach NATS at {url}")),
        "{}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );

    let out = hail(&url, &["audit", "--no-such-flag"]).await?;
    assert_eq!(out.status.code(), Some(2), "bad flags: {}", stderr(&out));
    assert!(stderr(&out).contains("--no-such-flag"), "{}", stderr(&out));

    let help = hail(&url, &["audit", "--help"]).await?;
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8(help.stdout)?;
    assert!(
        help.contains("Exit codes:") && help.contains("2  could not run"),
        "{help}"
    );
    Ok(())
}

#[tokio::test]
async fn audit_exits_0_when_it_holds_and_1_when_it_does_not() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let js = streams(&server).await?;
    // One request no service has consumed yet: pending everywhere, which holds.
    rides::publish(&js, "audit", 0, 1).await?;
    let (code, json) = audit(&server.url()).await?;
    assert_eq!(
        (code, &json["holds"]),
        (Some(0), &Value::Bool(true)),
        "{json}"
    );

    // Two outputs of pricing for one request: a duplicate effect.
    let ride = rides::ride("audit", 0).ride_id.to_string();
    publish_priced(&js, &ride).await?;
    publish_priced(&js, &ride).await?;
    let out = hail(&server.url(), &["audit", "--json"]).await?;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the audit does not hold"),
        "{}",
        stderr(&out)
    );
    let json: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["holds"], false, "{json}");
    let pricing = json["services"]
        .as_array()
        .and_then(|s| s.iter().find(|r| r["service"] == "pricing"))
        .with_context(|| format!("no pricing in {json}"))?;
    assert_eq!(
        (&pricing["duplicates"], &pricing["holds"]),
        (&1.into(), &false.into())
    );
    Ok(())
}

#[tokio::test]
async fn fraud_blocklist_lists_as_json() -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let url = server.url();
    let before = hail_runtime::now_ms();
    for args in [
        &["fraud", "block", "card-b"][..],
        &["fraud", "block", "card-a", "--reason", "chargeback"],
    ] {
        let out = hail(&url, args).await?;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = hail(&url, &["fraud", "blocklist", "--json"]).await?;
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Value = serde_json::from_slice(&out.stdout)?;
    let cards: Vec<_> = listed
        .as_array()
        .with_context(|| format!("not a list: {listed}"))?
        .iter()
        .map(|c| (c["card"].as_str(), c["reason"].as_str()))
        .collect();
    assert_eq!(
        cards,
        [
            (Some("card-a"), Some("chargeback")),
            (Some("card-b"), Some(""))
        ]
    );
    let at = listed[0]["blocked_at_ms"]
        .as_u64()
        .context("blocked_at_ms")?;
    assert!((before..=hail_runtime::now_ms()).contains(&at), "{listed}");
    assert!(
        listed[0]["blocked_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    for card in ["card-a", "card-b"] {
        hail(&url, &["fraud", "unblock", card]).await?;
    }
    let out = hail(&url, &["fraud", "blocklist", "--json"]).await?;
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout)?,
        Value::Array(vec![])
    );
    Ok(())
}
