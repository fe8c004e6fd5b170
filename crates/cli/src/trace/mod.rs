//! `hail trace <ride>`: every event of one ride, in order, across RIDES and
//! the DLQ — subject, sequence, time, producer, latency from the request,
//! trace and span ids, dead letters with their reasons, redeliveries — without
//! scanning either stream: ride-view's record names the sequences
//! ([`read`] says what is looked up and how), [`report`] builds what is shown.

pub mod read;
pub mod report;

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use hail_events::{RideId, headers, subjects, trace::TraceContext};

use report::{DeadLetterLine, Redelivery, Trace};

/// Flags of `hail trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The ride's id (as in `Hail-Ride-Id` and the gateway's Location).
    pub ride: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Reads and prints one ride's trace.
pub async fn run(js: &jetstream::Context, args: TraceArgs) -> Result<()> {
    let ride = RideId::new(args.ride.as_str())
        .with_context(|| format!("{:?} is not a ride id", args.ride))?;
    let t = trace(js, &ride).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print!("{}", report::render(&t));
    }
    Ok(())
}

/// Everything known about one ride, from its record and bounded lookups.
pub async fn trace(js: &jetstream::Context, ride: &RideId) -> Result<Trace> {
    let view = read::record(js, ride).await?;
    let rides = js
        .get_stream(subjects::RIDES_STREAM)
        .await
        .context("cannot open RIDES")?;
    let seqs: Vec<u64> = view.steps.iter().map(|s| s.seq).collect();
    let messages = read::all_by_seq(&rides, &seqs).await?;
    let context = |seq: u64| {
        let i = seqs.iter().position(|s| *s == seq);
        let msg = i.and_then(|i| messages[i].as_ref());
        let t = msg.and_then(|m| TraceContext::from_headers(Some(&m.headers)));
        (
            t.map(|t| t.trace_id_hex()),
            t.map(|t| t.span_id_hex()),
            msg.is_some(),
        )
    };
    let steps = report::step_lines(&view.steps, context);
    let trace_id = steps
        .iter()
        .find(|s| s.event == "RideRequested")
        .or(steps.first())
        .and_then(|s| s.trace_id.clone());
    let dead_letters = match js.get_stream(subjects::DLQ_STREAM).await {
        Ok(dlq) => read::dead_letters(&dlq, &seqs).await?,
        Err(_) => Vec::new(), // no DLQ stream: nothing was ever dead-lettered
    };
    let dead_letters = dead_letters
        .into_iter()
        .map(|(service, seq, m)| {
            let get = |k: &str| m.headers.get(k).map_or("", |v| v.as_str()).to_string();
            DeadLetterLine {
                service: service.name().to_string(),
                seq,
                dlq_seq: m.sequence,
                stored_at: report::rfc3339(m.time),
                kind: get(headers::dlq::REASON_KIND),
                reason: get(headers::dlq::REASON),
                deliveries: get(headers::dlq::DELIVERIES).parse().ok(),
            }
        })
        .collect();
    let redeliveries = read::fences(&rides, ride)
        .await?
        .into_iter()
        .map(|(service, m)| Redelivery {
            service: service.name().to_string(),
            marker_seq: m.sequence,
            stored_at: report::rfc3339(m.time),
        })
        .collect();
    let consumers = read::durables(&rides)
        .await
        .into_iter()
        .map(|(d, filters, floor)| report::consumer_line(&d, &filters, floor, &view.steps))
        .collect();
    Ok(Trace {
        ride_id: ride.to_string(),
        trace_id,
        state: view.state,
        steps,
        dead_letters,
        redeliveries,
        consumers,
    })
}
