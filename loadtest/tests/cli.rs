//! The `hail-loadgen` binary as an operator runs it.

use std::process::Command;

use hail_testkit::{NatsServer, free_port};

fn loadgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hail-loadgen"))
        .args(args)
        .env_remove("NATS_URL")
        .output()
        .unwrap()
}

#[test]
fn publish_reports_and_exits_zero() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let out = loadgen(&[
        "publish",
        "--nats-url",
        &url,
        "--rides",
        "300",
        "--run-id",
        "cli",
        "--cities",
        "paris,nyc",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("published 300 rides (0 duplicates), failed 0"),
        "{stderr}"
    );

    // The same run id again: stored as duplicates, not failures.
    let out = loadgen(&[
        "publish",
        "--nats-url",
        &url,
        "--rides",
        "300",
        "--run-id",
        "cli",
        "--cities",
        "paris,nyc",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(300 duplicates), failed 0"), "{stderr}");
}

#[test]
fn unreachable_nats_is_named_promptly() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let start = std::time::Instant::now();
    let out = loadgen(&[
        "publish",
        "--nats-url",
        &url,
        "--rides",
        "1",
        "--connect-timeout",
        "2s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach NATS at {url}")),
        "{stderr}"
    );
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
}

#[test]
fn unknown_city_is_a_usage_error() {
    let out = loadgen(&["publish", "--rides", "1", "--cities", "berlin,tokyo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("known cities: berlin,paris,london,nyc"),
        "{stderr}"
    );
}
