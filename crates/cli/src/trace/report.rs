//! One ride's trace as `hail trace` shows it, built from what was read
//! ([`super::read`]) by pure functions: who produced each step, its latency
//! from the request, and whether each durable has read the ride's steps.

use hail_events::{
    ride_view::{RideState, Step},
    subjects,
};
use hail_runtime::service::Service;
use serde::Serialize;
use time::OffsetDateTime;

/// Everything `hail trace` prints (and `--json` serializes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub ride_id: String,
    /// The trace id of the request (its `traceparent`), if it carries one.
    pub trace_id: Option<String>,
    pub state: RideState,
    /// Every event of the ride, in stream order.
    pub steps: Vec<StepLine>,
    /// Dead letters of the ride's messages, any service.
    pub dead_letters: Vec<DeadLetterLine>,
    /// Answers stored through the answer fence's careful path: the ride was
    /// answered by a redelivery, a replay or a late first delivery.
    pub redeliveries: Vec<Redelivery>,
    /// Where each durable stands with this ride.
    pub consumers: Vec<ConsumerLine>,
}

/// One event of the ride.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepLine {
    pub seq: u64,
    pub subject: String,
    pub event: String,
    /// The service that publishes this kind of event, or `intake` (the rider's
    /// or driver's side: the gateway, `hail request`, the load generator).
    pub producer: &'static str,
    pub stored_at: String,
    pub stored_at_ms: u64,
    /// Milliseconds from the request's storage to this step's.
    pub latency_ms: Option<i64>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// False when RIDES no longer holds it (aged out): what ride-view
    /// recorded is all that is left.
    pub in_stream: bool,
}

/// A dead letter of one of the ride's messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterLine {
    pub service: String,
    /// The RIDES sequence of the message it holds.
    pub seq: u64,
    pub dlq_seq: u64,
    pub stored_at: String,
    pub kind: String,
    pub reason: String,
    pub deliveries: Option<i64>,
}

/// A service's answer fence marker for the ride.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redelivery {
    pub service: String,
    pub marker_seq: u64,
    pub stored_at: String,
}

/// One durable and the ride's steps its filters select.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerLine {
    pub durable: String,
    pub ack_floor: u64,
    /// How many of the ride's steps it reads.
    pub reads: usize,
    /// Whether all of those are at or below its ack floor (handled).
    pub done: bool,
}

/// Who publishes events on `subject`: the service whose outputs it is on, or
/// `intake` for what riders and drivers do.
pub fn producer(subject: &str) -> &'static str {
    Service::EVERY
        .into_iter()
        .find(|s| s.outputs().iter().any(|f| subjects::matches(f, subject)))
        .map_or("intake", Service::name)
}

/// RFC 3339 of a time in ms since the epoch.
pub fn rfc3339_ms(ms: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    rfc3339(t)
}

/// RFC 3339 of a time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The lines of `steps`, with each one's latency from the (first) request.
/// `context` gives a step's trace and span id and whether RIDES still holds it.
pub fn step_lines(
    steps: &[Step],
    context: impl Fn(u64) -> (Option<String>, Option<String>, bool),
) -> Vec<StepLine> {
    let requested = steps
        .iter()
        .find(|s| s.event == "RideRequested")
        .map(|s| s.stored_at_ms);
    steps
        .iter()
        .map(|s| {
            let (trace_id, span_id, in_stream) = context(s.seq);
            StepLine {
                seq: s.seq,
                subject: s.subject.clone(),
                event: s.event.clone(),
                producer: producer(&s.subject),
                stored_at: rfc3339_ms(s.stored_at_ms),
                stored_at_ms: s.stored_at_ms,
                latency_ms: requested.map(|r| s.stored_at_ms as i64 - r as i64),
                trace_id,
                span_id,
                in_stream,
            }
        })
        .collect()
}

/// A durable with `filters` and ack floor `ack_floor` against the ride's steps.
pub fn consumer_line(
    durable: &str,
    filters: &[String],
    ack_floor: u64,
    steps: &[Step],
) -> ConsumerLine {
    let read: Vec<u64> = steps
        .iter()
        .filter(|s| filters.iter().any(|f| subjects::matches(f, &s.subject)))
        .map(|s| s.seq)
        .collect();
    ConsumerLine {
        durable: durable.to_string(),
        ack_floor,
        reads: read.len(),
        done: read.iter().all(|seq| *seq <= ack_floor),
    }
}

/// The table `hail trace` prints.
pub fn render(t: &Trace) -> String {
    let mut out = format!(
        "ride {}  state {}  trace {}\n\n",
        t.ride_id,
        serde_json::to_value(t.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        t.trace_id.as_deref().unwrap_or("-")
    );
    out.push_str(&format!(
        "{:>8}  {:<30} {:<28} {:<15} {:<10} {:>10}  {}\n",
        "seq", "stored at", "subject", "event", "producer", "+ms", "span"
    ));
    for s in &t.steps {
        let latency = s.latency_ms.map_or_else(|| "-".into(), |l| l.to_string());
        let mut span = s.span_id.clone().unwrap_or_else(|| "-".into());
        if s.trace_id.is_some() && s.trace_id != t.trace_id {
            span.push_str(" (other trace)");
        }
        if !s.in_stream {
            span.push_str(" (no longer in RIDES)");
        }
        out.push_str(&format!(
            "{:>8}  {:<30} {:<28} {:<15} {:<10} {:>10}  {}\n",
            s.seq, s.stored_at, s.subject, s.event, s.producer, latency, span
        ));
    }
    if t.dead_letters.is_empty() {
        out.push_str("\ndead letters: none\n");
    } else {
        out.push_str("\ndead letters:\n");
        for d in &t.dead_letters {
            let deliveries = d.deliveries.map_or_else(|| "-".into(), |n| n.to_string());
            out.push_str(&format!(
                "  {} gave up on #{} after {} deliveries ({}, DLQ #{} at {}): {}\n",
                d.service, d.seq, deliveries, d.kind, d.dlq_seq, d.stored_at, d.reason
            ));
        }
    }
    if t.redeliveries.is_empty() {
        out.push_str("redeliveries: none (every answer was a young first delivery)\n");
    } else {
        out.push_str("redeliveries:\n");
        for r in &t.redeliveries {
            out.push_str(&format!(
                "  {} answered through its careful path (a redelivery, replay or late delivery; fence marker #{} at {})\n",
                r.service, r.marker_seq, r.stored_at
            ));
        }
    }
    out.push_str("\nconsumers:\n");
    for c in &t.consumers {
        let how = if c.reads == 0 {
            "reads none of its events".to_string()
        } else if c.done {
            format!(
                "handled its {} event(s) (ack floor #{})",
                c.reads, c.ack_floor
            )
        } else {
            format!(
                "not yet past all its {} event(s) (ack floor #{})",
                c.reads, c.ack_floor
            )
        };
        out.push_str(&format!("  {:<10} {how}\n", c.durable));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(seq: u64, subject: &str, event: &str, ms: u64) -> Step {
        Step {
            seq,
            subject: subject.into(),
            event: event.into(),
            stored_at_ms: ms,
        }
    }

    fn steps() -> Vec<Step> {
        vec![
            step(10, "rides.requested.berlin", "RideRequested", 1_000),
            step(12, "rides.priced.berlin", "FareQuoted", 1_004),
            step(13, "rides.matched.berlin", "RideMatched", 1_007),
            step(15, "rides.screened.berlin", "RideScreened", 1_011),
            step(90, "rides.completed.berlin", "RideCompleted", 600_000),
        ]
    }

    #[test]
    fn each_kind_has_its_producer() {
        let got: Vec<&str> = steps().iter().map(|s| producer(&s.subject)).collect();
        assert_eq!(got, ["intake", "pricing", "matching", "fraud", "intake"]);
        assert_eq!(producer("rides.unmatched.paris"), "matching");
        assert_eq!(producer("rides.cancelled.paris"), "intake");
    }

    #[test]
    fn latencies_run_from_the_request() {
        let lines = step_lines(&steps(), |seq| (None, None, seq != 90));
        let ms: Vec<Option<i64>> = lines.iter().map(|l| l.latency_ms).collect();
        assert_eq!(ms, [Some(0), Some(4), Some(7), Some(11), Some(599_000)]);
        assert!(!lines[4].in_stream && lines[0].in_stream);
        assert_eq!(lines[0].stored_at, "1970-01-01T00:00:01Z");
        let no_request = step_lines(&steps()[1..], |_| (None, None, true));
        assert!(no_request.iter().all(|l| l.latency_ms.is_none()));
    }

    #[test]
    fn a_durable_is_done_when_its_floor_passed_every_step_it_reads() {
        let s = steps();
        let pricing = ["rides.requested.>".to_string()];
        assert_eq!(consumer_line("pricing", &pricing, 10, &s).reads, 1);
        assert!(consumer_line("pricing", &pricing, 10, &s).done);
        assert!(!consumer_line("pricing", &pricing, 9, &s).done);
        let all = ["rides.>".to_string()];
        assert!(!consumer_line("analytics", &all, 50, &s).done);
        assert!(consumer_line("analytics", &all, 90, &s).done);
        let none = consumer_line("x", &["rides.cancelled.>".to_string()], 0, &s);
        assert_eq!((none.reads, none.done), (0, true));
    }

    #[test]
    fn the_table_names_the_trace_and_each_step() {
        let t = Trace {
            ride_id: "r1".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            state: RideState::Completed,
            steps: step_lines(&steps(), |_| {
                (
                    Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                    Some("00f067aa0ba902b7".into()),
                    true,
                )
            }),
            dead_letters: vec![DeadLetterLine {
                service: "fraud".into(),
                seq: 10,
                dlq_seq: 3,
                stored_at: "2026-01-01T00:00:00Z".into(),
                kind: "max_deliveries".into(),
                reason: "gave up after 5 deliveries: boom".into(),
                deliveries: Some(5),
            }],
            redeliveries: Vec::new(),
            consumers: vec![consumer_line(
                "pricing",
                &["rides.requested.>".into()],
                10,
                &steps(),
            )],
        };
        let out = render(&t);
        assert!(
            out.starts_with("ride r1  state completed  trace 4bf92f3577b34da6a3ce929d0e0e4736"),
            "{out}"
        );
        assert!(out.contains("rides.matched.berlin"), "{out}");
        assert!(
            out.contains("fraud gave up on #10 after 5 deliveries (max_deliveries"),
            "{out}"
        );
        assert!(out.contains("pricing    handled its 1 event(s)"), "{out}");
    }
}
