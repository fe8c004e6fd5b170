//! analytics checked per kind it counts, pure: its stored totals of requests,
//! matched, unmatched, priced, screened, completed and cancelled rides against
//! the messages of the snapshot its checkpoint covers.
//!
//! analytics counts a RIDES message once when its checkpoint covers the
//! message's sequence, unless the message was dead-lettered (then it counts it
//! never); a replay of a dead letter for analytics is counted as its kind, a
//! replay for another service is not. So for each kind, the messages in the
//! snapshot that the checkpoint covers, less analytics' dead letters and the
//! replays for others, are what it must have counted. Messages RIDES dropped
//! before the snapshot may have been counted too: when the stream no longer
//! starts at 1, a kind may be counted more than the snapshot shows, by at most
//! the dropped sequences (less analytics' dead letters among them) over all
//! kinds together, never less.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use hail_events::EventKind;
use hail_runtime::service::Service;
use serde::Serialize;

use crate::{
    audit::{loss::loss, snapshot::Snapshot},
    audit_check::Report,
};

/// One kind: what analytics counted against what the snapshot holds.
#[derive(Debug, Serialize, PartialEq)]
pub struct KindLine {
    /// The event type (`RideRequested`…).
    pub kind: String,
    /// Messages of this kind in the snapshot that analytics must have counted.
    pub covered: u64,
    /// Counted in analytics' checkpoint (dropped messages included).
    pub counted: u64,
    /// Messages of this kind in the snapshot its checkpoint does not cover yet.
    pub in_flight: u64,
}

/// The kinds analytics counts: every ride event.
pub fn counted_kinds() -> impl Iterator<Item = EventKind> {
    EventKind::ALL
        .into_iter()
        .filter(|k| *k != EventKind::DriverLocation)
}

/// Checks analytics against the snapshot.
pub fn check(snap: &Snapshot) -> Report {
    let service = Service::Analytics;
    let mut r = Report {
        service: service.name().to_string(),
        ..Default::default()
    };
    let counted = snap.analytics.clone().unwrap_or_default();
    // Sequences analytics gave up on: never counted.
    let dead: HashSet<u64> = snap
        .letters_of(service)
        .iter()
        .filter_map(|l| l.stream_seq)
        .collect();
    let counts = |m: &&crate::audit::snapshot::Stored| {
        m.replay_for.as_deref().is_none_or(|t| t == service.name()) && !dead.contains(&m.seq)
    };

    let mut covered: BTreeMap<EventKind, u64> = BTreeMap::new();
    let mut in_flight: BTreeMap<EventKind, u64> = BTreeMap::new();
    for m in snap.messages.iter().filter(counts) {
        let Some(kind) = m.kind else { continue };
        let into = if counted.coverage.contains(m.seq) {
            &mut covered
        } else {
            &mut in_flight
        };
        *into.entry(kind).or_default() += 1;
    }

    // Counts that may belong to messages dropped before the snapshot.
    let first = snap.first_visible();
    let dead_below = dead.iter().filter(|s| **s < first).count() as u64;
    let dropped = first.saturating_sub(1).saturating_sub(dead_below);
    let mut excess = 0;
    for kind in counted_kinds() {
        let line = KindLine {
            kind: kind.name().to_string(),
            covered: covered.get(&kind).copied().unwrap_or(0),
            counted: counted.totals.events(kind.name()),
            in_flight: in_flight.get(&kind).copied().unwrap_or(0),
        };
        if line.counted < line.covered {
            let missing = line.covered - line.counted;
            r.unaccounted += missing;
            r.examples.push(format!(
                "{missing} {kind} covered by the checkpoint but not counted ({} of {})",
                line.counted, line.covered
            ));
        } else {
            excess += line.counted - line.covered;
        }
        r.kinds.push(line);
    }
    if excess > dropped {
        r.duplicates += excess - dropped;
        r.examples.push(format!(
            "counted {excess} events more than the snapshot holds, and RIDES dropped only {dropped}"
        ));
    }

    requests_line(snap, &mut r, &counted.coverage, &dead);
    r.with_loss(loss(snap, service)).settle()
}

/// analytics' line over requests, as for the answering services: a request
/// is counted (directly or through its replay), dead-lettered, or in flight.
fn requests_line(
    snap: &Snapshot,
    r: &mut Report,
    coverage: &hail_analytics::coverage::Coverage,
    dead: &HashSet<u64>,
) {
    let service = Service::Analytics.name();
    let recovered: BTreeSet<u64> = snap
        .messages
        .iter()
        .filter(|m| m.replay_for.as_deref() == Some(service))
        .filter(|m| coverage.contains(m.seq) && !dead.contains(&m.seq))
        .filter_map(|m| m.replay_of)
        .collect();
    let dead_originals: BTreeSet<u64> = snap
        .letters_of(Service::Analytics)
        .iter()
        .filter(|l| l.is_request())
        .filter_map(|l| l.original_seq())
        .collect();
    for m in snap.messages.iter().filter(|m| m.is_original_request()) {
        r.published += 1;
        if recovered.contains(&m.seq) || (coverage.contains(m.seq) && !dead.contains(&m.seq)) {
            r.effects += 1;
        } else if dead_originals.contains(&m.seq) {
            r.dead_lettered += 1;
        } else {
            r.pending += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use hail_analytics::{coverage::Coverage, totals::CityTotals};
    use hail_events::subjects;

    use super::*;
    use crate::audit::snapshot::{Counted, Letter, Position, Stored};

    fn city() -> hail_events::City {
        "lisbon".parse().unwrap()
    }

    fn msg(seq: u64, kind: EventKind, ride: u64) -> Stored {
        let subject = match kind {
            EventKind::Requested => subjects::rides_requested(&city()),
            EventKind::Priced => subjects::rides_priced(&city()),
            EventKind::Completed => subjects::rides_completed(&city()),
            _ => subjects::rides_cancelled(&city()),
        };
        Stored {
            seq,
            kind: Some(kind),
            subject,
            ride: Some(format!("r{ride}")),
            replay_for: None,
            replay_of: None,
        }
    }

    fn totals(requests: u64, priced: u64, completed: u64) -> CityTotals {
        CityTotals {
            requests,
            priced,
            completed,
            ..Default::default()
        }
    }

    fn snap(messages: Vec<Stored>, floor: u64, totals: CityTotals) -> Snapshot {
        Snapshot {
            first_seq: messages.first().map_or(1, |m| m.seq),
            last_seq: messages.last().map_or(0, |m| m.seq),
            messages,
            positions: [(
                Service::Analytics,
                Position {
                    ack_floor: floor,
                    delivered: floor,
                    caught_up: false,
                },
            )]
            .into(),
            letters: Default::default(),
            analytics: Some(Counted {
                coverage: Coverage::with_floor(floor),
                totals,
            }),
        }
    }

    fn line(r: &Report, kind: EventKind) -> &KindLine {
        r.kinds.iter().find(|l| l.kind == kind.name()).unwrap()
    }

    #[test]
    fn counts_that_match_the_covered_messages_hold() {
        use EventKind::*;
        let messages = vec![
            msg(1, Requested, 1),
            msg(2, Priced, 1),
            msg(3, Requested, 2),
            msg(4, Completed, 1),
        ];
        // Covered through 3; the completion is in flight.
        let r = check(&snap(messages, 3, totals(2, 1, 0)));
        assert!(r.holds, "{r:?}");
        assert_eq!(
            (line(&r, Completed).covered, line(&r, Completed).in_flight),
            (0, 1)
        );
        assert_eq!((r.published, r.effects, r.pending), (2, 2, 0));
    }

    #[test]
    fn a_kind_counted_twice_or_not_at_all_fails() {
        use EventKind::*;
        let messages = vec![
            msg(1, Requested, 1),
            msg(2, Priced, 1),
            msg(3, Completed, 1),
        ];
        let twice = check(&snap(messages.clone(), 3, totals(1, 2, 1)));
        assert_eq!(twice.duplicates, 1, "{twice:?}");
        assert!(!twice.holds);
        let missing = check(&snap(messages, 3, totals(1, 1, 0)));
        assert_eq!(missing.unaccounted, 1, "{missing:?}");
        assert!(!missing.holds);
    }

    #[test]
    fn counts_of_dropped_messages_are_allowed_up_to_what_was_dropped() {
        use EventKind::*;
        // RIDES starts at 11: up to 10 counted messages are gone.
        let messages = vec![msg(11, Requested, 6), msg(12, Priced, 6)];
        let ok = check(&snap(messages.clone(), 12, totals(6, 5, 0)));
        assert!(ok.holds, "{ok:?}");
        let over = check(&snap(messages, 12, totals(7, 6, 0)));
        assert_eq!(over.duplicates, 1, "{over:?}");
    }

    #[test]
    fn a_dead_letter_is_not_counted_and_its_replay_counts_once() {
        use EventKind::*;
        let replay = Stored {
            replay_for: Some("analytics".into()),
            replay_of: Some(2),
            ..msg(4, Requested, 2)
        };
        let other = Stored {
            replay_for: Some("fraud".into()),
            replay_of: Some(1),
            ..msg(5, Requested, 1)
        };
        let mut s = snap(
            vec![
                msg(1, Requested, 1),
                msg(2, Requested, 2),
                msg(3, Priced, 1),
                replay,
                other,
            ],
            5,
            totals(2, 1, 0),
        );
        s.letters.insert(
            Service::Analytics,
            vec![Letter {
                stream_seq: Some(2),
                subject: subjects::rides_requested(&city()),
                ride: Some("r2".into()),
                replay_of: None,
            }],
        );
        let r = check(&s);
        assert!(r.holds, "{r:?}");
        assert_eq!((r.published, r.effects, r.dead_lettered), (2, 2, 0));
    }

    #[test]
    fn a_dead_letter_whose_message_aged_out_changes_nothing() {
        use EventKind::*;
        let mut s = snap(vec![msg(11, Requested, 6)], 11, totals(5, 0, 0));
        s.letters.insert(
            Service::Analytics,
            vec![Letter {
                stream_seq: Some(3),
                subject: subjects::rides_requested(&city()),
                ride: Some("r0".into()),
                replay_of: None,
            }],
        );
        let r = check(&s);
        assert!(r.holds, "{r:?}");
        assert_eq!(r.dead_lettered, 0);
    }
}
