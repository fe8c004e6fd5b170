//! `hail audit [--json]`: reads RIDES, DLQ and each consumer, and checks that
//! every published request is accounted for exactly once per service. Exit 1
//! when that does not hold, 2 when the audit cannot run (`hail audit --help`).

use std::collections::HashMap;

use anyhow::Result;
use async_nats::jetstream;
use hail_events::{headers, subjects};
use hail_runtime::{replay, service::Service};

use crate::{
    audit_check::{Inputs, Report, check},
    read_all::{info, read_all},
};

/// Flags of `hail audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Audits every service; `Ok(false)` when the audit does not hold.
pub async fn run(js: &jetstream::Context, args: AuditArgs) -> Result<bool> {
    let reports = audit(js).await?;
    let holds = reports.iter().all(|r| r.holds);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "holds": holds, "services": reports })
            )?
        );
    } else {
        print_table(&reports, holds);
    }
    Ok(holds)
}

/// One report per service.
pub async fn audit(js: &jetstream::Context) -> Result<Vec<Report>> {
    let all = read(js, subjects::RIDES_STREAM, subjects::RIDES_REQUESTED_ALL).await?;
    // Replays stand for their original; they are not new requests.
    let (replays, originals): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(_, h)| replay::is_replay(Some(h)));
    let requests: HashMap<u64, Option<String>> = originals
        .into_iter()
        .map(|(seq, h)| (seq, h.get(headers::RIDE_ID).map(|v| v.to_string())))
        .collect();
    let mut reports = Vec::new();
    for service in Service::ALL {
        let mut inp = Inputs {
            requests: requests.clone(),
            ..Default::default()
        };
        for filter in service.outputs() {
            let outputs = read(js, subjects::RIDES_STREAM, filter).await?;
            inp.output_rides.extend(
                outputs
                    .into_iter()
                    .filter_map(|(_, h)| h.get(headers::RIDE_ID).map(|v| v.to_string())),
            );
        }
        if service == Service::Analytics {
            inp.counted = Some(analytics_counted(js).await?);
        }
        inp.dead_lettered = dead_lettered_requests(js, service.name()).await?;
        inp.replayed = replays
            .iter()
            .filter(|(_, h)| replay::target(Some(h)) == Some(service.name()))
            .filter_map(|(_, h)| replay::original_seq(Some(h)))
            .collect();
        let consumer = js
            .get_stream(subjects::RIDES_STREAM)
            .await?
            .consumer_info(service.durable())
            .await;
        if let Ok(c) = consumer {
            inp.ack_floor = c.ack_floor.stream_sequence;
            inp.idle = c.num_pending == 0 && c.num_ack_pending == 0;
        }
        reports.push(check(service.name(), &inp));
    }
    Ok(reports)
}

/// Requests counted in analytics' last checkpoint (0 before its first one).
async fn analytics_counted(js: &jetstream::Context) -> Result<u64> {
    if js
        .get_key_value(hail_analytics::checkpoint::BUCKET)
        .await
        .is_err()
    {
        return Ok(0); // analytics never ran
    }
    let stored = hail_analytics::store::read(js, std::time::Duration::from_secs(5)).await?;
    Ok(stored.map_or(0, |(cp, _)| cp.state.all_cities().requests))
}

/// Stream sequences of the requests `service` dead-lettered; a dead-lettered
/// replay stands for its original request.
async fn dead_lettered_requests(js: &jetstream::Context, service: &str) -> Result<Vec<u64>> {
    let letters = read(js, subjects::DLQ_STREAM, &subjects::dlq(service)).await?;
    // A dead-lettered replay stands for its original; any other for itself.
    let original = |h: &async_nats::HeaderMap| {
        replay::original_seq(Some(h))
            .or_else(|| h.get(headers::dlq::STREAM_SEQ)?.as_str().parse().ok())
    };
    Ok(letters
        .into_iter()
        .filter(|(_, h)| {
            h.get(headers::dlq::SUBJECT)
                .is_some_and(|s| subjects::matches(subjects::RIDES_REQUESTED_ALL, s.as_str()))
        })
        .filter_map(|(_, h)| original(&h))
        .collect())
}

/// (stream sequence, headers) of every message on `filter`; none when `stream`
/// does not exist.
async fn read(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<Vec<(u64, async_nats::HeaderMap)>> {
    let Ok(s) = js.get_stream(stream).await else {
        return Ok(Vec::new());
    };
    read_all(&s, filter, true, |msg| {
        let seq = info(msg)?.stream_sequence;
        Ok((seq, msg.headers.clone().unwrap_or_default()))
    })
    .await
}

/// The table, on stderr (for `hail demo`, whose stdout may be JSON).
pub fn print_table_to_stderr(reports: &[Report], holds: bool) {
    eprint!("{}", table(reports, holds));
}

fn print_table(reports: &[Report], holds: bool) {
    print!("{}", table(reports, holds));
}

fn table(reports: &[Report], holds: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>11}  holds",
        "service", "published", "effects", "dlq", "pending", "duplicates", "unaccounted"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>11}  {}",
            r.service,
            r.published,
            r.effects,
            r.dead_lettered,
            r.pending,
            r.duplicates,
            r.unaccounted,
            if r.holds { "yes" } else { "NO" }
        );
        for e in &r.examples {
            let _ = writeln!(out, "    {e}");
        }
    }
    let _ = writeln!(
        out,
        "audit {}",
        if holds { "holds" } else { "DOES NOT HOLD" }
    );
    out
}
