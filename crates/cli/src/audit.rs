//! `hail audit [--json]`: takes one snapshot of RIDES, DLQ, each durable and
//! analytics' checkpoint, bounded by RIDES' last sequence at the start, and
//! checks per service that every request in it is accounted for exactly once
//! and that RIDES' limits dropped nothing a service still owed; analytics is
//! checked per kind it counts. Exit 1 when that does not hold, 2 when the
//! audit cannot run (`hail audit --help`).
//!
//! - [`snapshot`]: what is read, in which order, and why that is consistent.
//! - [`crate::audit_check`]: matching, pricing and fraud against their outputs.
//! - [`kinds`]: analytics' totals per kind against the messages it covers.
//! - [`loss`]: what RIDES dropped above a durable's ack floor.

pub mod kinds;
pub mod loss;
pub mod snapshot;

use anyhow::Result;
use async_nats::jetstream;
use hail_runtime::service::Service;

use crate::audit_check::{Report, check};

/// Flags of `hail audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Audits every service; `Ok(false)` when the audit does not hold.
pub async fn run(js: &jetstream::Context, args: AuditArgs) -> Result<bool> {
    let snap = snapshot::take(js).await?;
    let reports = judge(&snap);
    let holds = reports.iter().all(|r| r.holds);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "holds": holds,
                "snapshot": { "first_seq": snap.first_seq, "last_seq": snap.last_seq },
                "services": reports,
            }))?
        );
    } else {
        print_table(&reports, holds);
    }
    Ok(holds)
}

/// One report per service, from a fresh snapshot.
pub async fn audit(js: &jetstream::Context) -> Result<Vec<Report>> {
    Ok(judge(&snapshot::take(js).await?))
}

/// One report per service, from `snap`.
fn judge(snap: &snapshot::Snapshot) -> Vec<Report> {
    Service::ALL
        .into_iter()
        .map(|service| match service {
            Service::Analytics => kinds::check(snap),
            _ => check(snap, service),
        })
        .collect()
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
        "{:<10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>11} {:>8}  holds",
        "service", "published", "effects", "dlq", "pending", "duplicates", "unaccounted", "lost"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>11} {:>8}  {}",
            r.service,
            r.published,
            r.effects,
            r.dead_lettered,
            r.pending,
            r.duplicates,
            r.unaccounted,
            r.lost,
            if r.holds { "yes" } else { "NO" }
        );
        for k in &r.kinds {
            let _ = writeln!(
                out,
                "    {:<14} counted {:>9}  covered {:>9}  in flight {:>7}",
                k.kind, k.counted, k.covered, k.in_flight
            );
        }
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
