//! `hail status`: the lag of every consumer group, read from JetStream.

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use futures::TryStreamExt;
use hail_events::subjects;
use serde::Serialize;

/// Flags of `hail status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    consumer: String,
    pending: u64,
    ack_pending: usize,
    redelivered: usize,
    waiting: usize,
    ack_floor: u64,
}

/// Prints one row per durable consumer of RIDES.
pub async fn run(js: &jetstream::Context, args: StatusArgs) -> Result<()> {
    let mut stream = js
        .get_stream(subjects::RIDES_STREAM)
        .await
        .context("no RIDES stream yet: start a service first")?;
    let last = stream.info().await?.state.last_sequence;
    let mut rows: Vec<Row> = stream
        .consumers()
        .map_ok(|c| Row {
            consumer: c.name,
            pending: c.num_pending,
            ack_pending: c.num_ack_pending,
            redelivered: c.num_redelivered,
            waiting: c.num_waiting,
            ack_floor: c.ack_floor.stream_sequence,
        })
        .try_collect()
        .await?;
    rows.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    if args.json {
        let out = serde_json::json!({ "stream": subjects::RIDES_STREAM, "last_seq": last, "consumers": rows });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("RIDES last sequence {last}");
    println!(
        "{:<12} {:>10} {:>12} {:>12} {:>8} {:>12}",
        "consumer", "pending", "ack_pending", "redelivered", "waiting", "ack_floor"
    );
    for r in rows {
        println!(
            "{:<12} {:>10} {:>12} {:>12} {:>8} {:>12}",
            r.consumer, r.pending, r.ack_pending, r.redelivered, r.waiting, r.ack_floor
        );
    }
    Ok(())
}
