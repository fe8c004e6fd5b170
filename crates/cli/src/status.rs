//! `hail status`: per service, lag in messages and seconds, processing rate,
//! status and instances. Lag comes from JetStream (so a service that is down still
//! shows its lag); lag in seconds and status from hail-monitor when it runs; rate
//! from each service's /metrics; instances from the NATS services API.

use std::time::{Duration, Instant};

use anyhow::Result;
use async_nats::jetstream;
use futures::StreamExt;
use hail_events::subjects;
use hail_runtime::{http_get::http_get, prom_text::metric_sum};
use serde::Serialize;

use crate::stack::{SERVICES, component::metrics_port};

/// Flags of `hail status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One service's line.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub lag_messages: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub rate_per_second: Option<f64>,
    pub status: Option<String>,
    pub instances: usize,
}

/// Reads the status of every service.
pub async fn read(js: &jetstream::Context) -> Result<Vec<ServiceStatus>> {
    let before = processed_all().await;
    let started = Instant::now();
    let mut rows = Vec::new();
    for s in SERVICES {
        rows.push(ServiceStatus {
            service: s.to_string(),
            lag_messages: lag(js, s).await,
            lag_seconds: None,
            rate_per_second: None,
            status: None,
            instances: instances(js.client(), s).await,
        });
    }
    if let Ok((200, body)) = http_get(&format!(
        "http://127.0.0.1:{}/metrics",
        metrics_port("monitor").unwrap_or(9105)
    ))
    .await
    {
        for r in &mut rows {
            let c = [("consumer_name", r.service.as_str())];
            r.lag_seconds = metric_sum(&body, "hail_consumer_lag_seconds", &c);
            r.status = status_of(&body, &r.service);
        }
    }
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
    let after = processed_all().await;
    let secs = started.elapsed().as_secs_f64();
    for ((r, b), a) in rows.iter_mut().zip(before).zip(after) {
        r.rate_per_second = b.zip(a).map(|(b, a)| ((a - b) / secs).max(0.0));
    }
    Ok(rows)
}

/// Prints the table or JSON.
pub async fn run(js: &jetstream::Context, args: StatusArgs) -> Result<()> {
    let rows = read(js).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<10} {:>12} {:>10} {:>10} {:<24} {:>9}",
        "service", "lag (msgs)", "lag (s)", "rate/s", "status", "instances"
    );
    let dash = || "-".to_string();
    for r in rows {
        println!(
            "{:<10} {:>12} {:>10} {:>10} {:<24} {:>9}",
            r.service,
            r.lag_messages.map_or_else(dash, |v| v.to_string()),
            r.lag_seconds.map_or_else(dash, |v| format!("{v:.1}")),
            r.rate_per_second.map_or_else(dash, |v| format!("{v:.0}")),
            r.status.unwrap_or_else(|| if r.instances == 0 {
                "down".into()
            } else {
                dash()
            }),
            r.instances
        );
    }
    Ok(())
}

async fn lag(js: &jetstream::Context, durable: &str) -> Option<u64> {
    let stream = js.get_stream(subjects::RIDES_STREAM).await.ok()?;
    let info = stream.consumer_info(durable).await.ok()?;
    Some(info.num_pending + info.num_ack_pending as u64)
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

/// Each service's processed counter, None when its /metrics does not answer.
async fn processed_all() -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for s in SERVICES {
        let url = format!("http://127.0.0.1:{}/metrics", metrics_port(s).unwrap_or(0));
        out.push(match http_get(&url).await {
            Ok((200, body)) => {
                Some(metric_sum(&body, hail_runtime::metrics::names::PROCESSED, &[]).unwrap_or(0.0))
            }
            _ => None,
        });
    }
    out
}

/// How many instances answer `$SRV.PING.<service>` within 300 ms.
async fn instances(client: async_nats::Client, service: &str) -> usize {
    let inbox = client.new_inbox();
    let Ok(mut sub) = client.subscribe(inbox.clone()).await else {
        return 0;
    };
    if client
        .publish_with_reply(format!("$SRV.PING.{service}"), inbox, "".into())
        .await
        .is_err()
    {
        return 0;
    }
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, sub.next()).await {
        n += 1;
    }
    n
}
