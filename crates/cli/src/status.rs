//! `hail status`: per service, lag in messages and seconds, share of RIDES'
//! retention its backlog takes, processing rate, status and instances.
//!
//! Lag comes from JetStream (so a service that is down still shows its lag);
//! lag in seconds, retention and status from hail-monitor when it answers at
//! `--monitor-url`; instances and rate from the NATS services API
//! (`$SRV.STATS.<service>`: every instance answers with what it has processed),
//! so the figures cover every instance wherever it runs, not only the local stack.
//! A service catching up (ride-view replaying RIDES after it was added, or
//! any service back after an outage) shows an ETA: its lag over how fast the
//! lag shrank between two readings a second apart.
//! Each instance is listed with its own figures; for analytics, whose group has
//! one active instance at a time, the one the server has pinned is `active`
//! and the others `standby`.

use std::time::{Duration, Instant};

use anyhow::Result;
use async_nats::jetstream;
use futures::StreamExt;
use hail_events::subjects;
use hail_probe::{http_get, metric_sum};
use serde::Serialize;

use hail_runtime::service::Service;

use crate::stack::SERVICES;

/// How long `$SRV.STATS` replies are collected.
const STATS_WAIT: Duration = Duration::from_millis(300);
/// Time between the two readings the rate is computed from.
const RATE_INTERVAL: Duration = Duration::from_secs(1);

/// Flags of `hail status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// hail-monitor's HTTP address, for lag in seconds, retention and status.
    #[arg(
        long,
        env = "HAIL_MONITOR_URL",
        default_value_t = format!("http://127.0.0.1:{}", hail_runtime::service::MONITOR_METRICS_PORT)
    )]
    monitor_url: String,
    #[command(flatten)]
    cluster: crate::cluster_status::ClusterArgs,
}

/// One service's line.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub lag_messages: Option<u64>,
    pub lag_seconds: Option<f64>,
    /// Share (0 to 1) of RIDES' max_age / max_bytes the backlog takes up.
    pub retention_used: Option<f64>,
    pub rate_per_second: Option<f64>,
    /// Seconds until the lag is gone at the rate it shrank during the reading
    /// (0 when there is none; absent while it does not shrink).
    pub eta_seconds: Option<f64>,
    pub status: Option<String>,
    pub instances: usize,
    /// Every instance that answered, by name.
    pub members: Vec<InstanceStatus>,
}

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStatus {
    pub instance: String,
    pub processed: u64,
    pub in_flight: u64,
    /// `active`, `standby` (a group with one active instance) or `sharing`.
    pub role: &'static str,
    #[serde(skip)]
    pin_id: Option<String>,
}

/// What the instances of one service answered to `$SRV.STATS`.
#[derive(Debug, Clone, Default)]
struct Stats {
    instances: usize,
    processed: u64,
    members: Vec<InstanceStatus>,
}

/// Reads the status of every service.
pub async fn read(js: &jetstream::Context, monitor_url: &str) -> Result<Vec<ServiceStatus>> {
    let client = js.client();
    let started = Instant::now();
    let before = stats_all(&client).await;
    let mut lag_before = Vec::new();
    for s in SERVICES {
        lag_before.push(durable_state(js, s).await.map(|d| d.lag));
    }
    let mut rows = Vec::new();
    for s in SERVICES {
        rows.push(ServiceStatus {
            service: s.to_string(),
            lag_messages: None,
            lag_seconds: None,
            retention_used: None,
            rate_per_second: None,
            eta_seconds: None,
            status: None,
            instances: 0,
            members: Vec::new(),
        });
    }
    let metrics = format!("{}/metrics", monitor_url.trim_end_matches('/'));
    if let Ok((200, body)) = http_get(&metrics).await {
        for r in &mut rows {
            let c = [("consumer_name", r.service.as_str())];
            r.lag_seconds = metric_sum(&body, "hail_consumer_lag_seconds", &c);
            r.retention_used = metric_sum(&body, "hail_consumer_retention_used_ratio", &c);
            r.status = status_of(&body, &r.service);
        }
    }
    tokio::time::sleep(RATE_INTERVAL.saturating_sub(started.elapsed())).await;
    let secs = started.elapsed().as_secs_f64();
    let after = stats_all(&client).await;
    for (((r, b), a), lag_b) in rows.iter_mut().zip(before).zip(after).zip(lag_before) {
        r.instances = a.instances;
        // A restarted instance starts from 0: never a negative rate.
        r.rate_per_second =
            (a.instances > 0).then(|| (a.processed.saturating_sub(b.processed)) as f64 / secs);
        let one_active = r.service.parse::<Service>().is_ok_and(Service::one_active);
        let durable = durable_state(js, &r.service).await;
        r.lag_messages = durable.as_ref().map(|d| d.lag);
        r.eta_seconds = lag_b.zip(r.lag_messages).and_then(|(b, a)| eta(b, a, secs));
        let pinned = durable.and_then(|d| d.pinned);
        r.members = a.members;
        for m in &mut r.members {
            m.role = role(one_active, pinned.as_deref(), m.pin_id.as_deref());
        }
    }
    Ok(rows)
}

/// What one read of a durable's info says: its lag, and the pin id the
/// server holds if it is a one-active group with an instance pinned.
struct DurableState {
    lag: u64,
    pinned: Option<String>,
}

async fn durable_state(js: &jetstream::Context, durable: &str) -> Option<DurableState> {
    let stream = js.get_stream(subjects::RIDES_STREAM).await.ok()?;
    let info = stream.consumer_info(durable).await.ok()?;
    Some(DurableState {
        lag: info.num_pending + info.num_ack_pending as u64,
        pinned: info
            .priority_groups
            .into_iter()
            .find_map(|g| g.pinned_client_id),
    })
}

/// Seconds until a lag of `after` is gone, at the rate it shrank from
/// `before` over `secs`: 0 with no lag, `None` while it does not shrink.
fn eta(before: u64, after: u64, secs: f64) -> Option<f64> {
    match after {
        0 => Some(0.0),
        _ if before > after && secs > 0.0 => Some(after as f64 / ((before - after) as f64 / secs)),
        _ => None,
    }
}

/// An instance's role: in a one-active group, `active` if it holds the pin
/// the server names, else `standby`; in any other group every instance shares.
fn role(one_active: bool, pinned: Option<&str>, seen: Option<&str>) -> &'static str {
    match (one_active, pinned, seen) {
        (false, _, _) => "sharing",
        (true, Some(p), Some(s)) if p == s => "active",
        (true, _, _) => "standby",
    }
}

/// Prints the table or JSON.
pub async fn run(js: &jetstream::Context, args: StatusArgs) -> Result<()> {
    let rows = read(js, &args.monitor_url).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<10} {:>12} {:>10} {:>10} {:>10} {:<24} {:>9} {:>9}",
        "service", "lag (msgs)", "lag (s)", "retention", "rate/s", "status", "instances", "eta"
    );
    let dash = || "-".to_string();
    for r in &rows {
        println!(
            "{:<10} {:>12} {:>10} {:>10} {:>10} {:<24} {:>9} {:>9}",
            r.service,
            r.lag_messages.map_or_else(dash, |v| v.to_string()),
            r.lag_seconds.map_or_else(dash, |v| format!("{v:.1}")),
            r.retention_used
                .map_or_else(dash, |v| format!("{:.1}%", v * 100.0)),
            r.rate_per_second.map_or_else(dash, |v| format!("{v:.0}")),
            r.status.clone().unwrap_or_else(|| if r.instances == 0 {
                "down".into()
            } else {
                dash()
            }),
            r.instances,
            r.eta_seconds.map_or_else(dash, |v| format!("{v:.0}s")),
        );
    }
    let members: Vec<_> = rows
        .iter()
        .flat_map(|r| r.members.iter().map(move |m| (&r.service, m)))
        .collect();
    if !members.is_empty() {
        println!();
        println!(
            "{:<40} {:<10} {:>10} {:>10} {:<8}",
            "instance", "service", "processed", "in flight", "role"
        );
        for (service, m) in members {
            println!(
                "{:<40} {:<10} {:>10} {:>10} {:<8}",
                m.instance, service, m.processed, m.in_flight, m.role
            );
        }
    }
    crate::cluster_status::print(js, &args.cluster).await
}

fn status_of(body: &str, consumer: &str) -> Option<String> {
    [
        "ok",
        "warn",
        "stall",
        "stop",
        "stalled_max_ack_pending",
        "not_pulling",
    ]
    .into_iter()
    .find(|s| {
        metric_sum(
            body,
            "hail_consumer_status",
            &[("consumer_name", consumer), ("status", s)],
        ) == Some(1.0)
    })
    .map(str::to_string)
}

/// [`stats`] of every service, asked at once (each waits [`STATS_WAIT`]).
async fn stats_all(client: &async_nats::Client) -> Vec<Stats> {
    futures::future::join_all(SERVICES.iter().map(|s| stats(client, s))).await
}

/// Every instance's `$SRV.STATS` reply within [`STATS_WAIT`]: how many
/// answered and what they processed in all.
async fn stats(client: &async_nats::Client, service: &str) -> Stats {
    let inbox = client.new_inbox();
    let Ok(mut sub) = client.subscribe(inbox.clone()).await else {
        return Stats::default();
    };
    if client
        .publish_with_reply(format!("$SRV.STATS.{service}"), inbox, "".into())
        .await
        .is_err()
    {
        return Stats::default();
    }
    let mut out = Stats::default();
    let deadline = tokio::time::Instant::now() + STATS_WAIT;
    while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, sub.next()).await {
        // With no instance at all the server answers "no responders": a
        // status message, not an instance.
        if reply.status.is_some() {
            continue;
        }
        let member = member_of(&reply.payload);
        out.instances += 1;
        out.processed += member.processed;
        out.members.push(member);
    }
    out.members.sort_by(|a, b| a.instance.cmp(&b.instance));
    out
}

/// One instance's STATS reply: its name, figures and pin (zeros when it has
/// no data).
fn member_of(payload: &[u8]) -> InstanceStatus {
    let v = serde_json::from_slice::<serde_json::Value>(payload).unwrap_or_default();
    let data = v["endpoints"]
        .as_array()
        .and_then(|e| e.iter().map(|e| &e["data"]).find(|d| d.is_object()))
        .cloned()
        .unwrap_or_default();
    InstanceStatus {
        instance: data["instance"]
            .as_str()
            .or(v["id"].as_str())
            .unwrap_or("?")
            .to_string(),
        processed: data["processed"].as_u64().unwrap_or(0),
        in_flight: data["in_flight"].as_u64().unwrap_or(0),
        role: "sharing",
        pin_id: data["pin_id"].as_str().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_read_from_the_stats_data() {
        let reply = br#"{"type":"io.nats.micro.v1.stats_response","name":"analytics","id":"x",
            "endpoints":[{"name":"hail.analytics.status","subject":"hail.analytics.status",
            "num_requests":0,"data":{"durable":"analytics","instance":"analytics-a","lag_messages":3,
            "in_flight":1,"processed":1234,"pin_id":"p1"}}]}"#;
        let m = member_of(reply);
        assert_eq!(
            (
                m.instance.as_str(),
                m.processed,
                m.in_flight,
                m.pin_id.as_deref()
            ),
            ("analytics-a", 1234, 1, Some("p1"))
        );
        let old = br#"{"id":"x","endpoints":[{"data":{"processed":7}}]}"#;
        assert_eq!(
            (member_of(old).instance.as_str(), member_of(old).processed),
            ("x", 7)
        );
        assert_eq!(member_of(br#"{"endpoints":[]}"#).processed, 0);
        assert_eq!(member_of(b"not json").processed, 0);
    }

    #[test]
    fn the_eta_follows_how_fast_the_lag_shrank() {
        assert_eq!(eta(10_000, 8_000, 1.0), Some(4.0));
        assert_eq!(eta(3_000, 2_000, 2.0), Some(4.0));
        assert_eq!(eta(5, 0, 1.0), Some(0.0));
        assert_eq!(eta(0, 0, 1.0), Some(0.0));
        assert_eq!(eta(100, 100, 1.0), None, "not shrinking");
        assert_eq!(eta(100, 150, 1.0), None, "growing");
    }

    #[test]
    fn only_the_instance_holding_the_servers_pin_is_active() {
        assert_eq!(role(true, Some("p1"), Some("p1")), "active");
        assert_eq!(role(true, Some("p1"), Some("p0")), "standby");
        assert_eq!(role(true, None, Some("p1")), "standby");
        assert_eq!(role(true, Some("p1"), None), "standby");
        assert_eq!(role(false, None, None), "sharing");
    }
}
