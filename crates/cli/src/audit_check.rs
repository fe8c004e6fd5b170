//! The audit's arithmetic, pure: for one service that answers requests
//! (matching, pricing, fraud), every request in the snapshot is accounted for
//! exactly once — as an output, a dead letter, or still in flight — and
//! nothing it owed was dropped by RIDES' limits. analytics, which counts rather
//! than answers, is checked per kind in [`crate::audit::kinds`].
//!
//! A request is *due* when its sequence is at or below the service's ack floor
//! taken at the snapshot: the service acknowledged it, so its output or dead
//! letter is in the snapshot. A later one is *in flight*: it may or may not
//! have its answer yet, and is counted as pending, never as unaccounted.

use std::collections::{BTreeMap, HashMap, HashSet};

use hail_events::subjects;
use hail_runtime::service::Service;
use serde::Serialize;

use crate::audit::{
    kinds::KindLine,
    loss::{Loss, loss},
    snapshot::Snapshot,
};

/// How many examples a report carries.
const EXAMPLES: usize = 5;

/// The verdict for one service.
#[derive(Debug, Serialize, PartialEq, Default)]
pub struct Report {
    pub service: String,
    /// Requests in the snapshot (replays are not new requests).
    pub published: u64,
    /// Requests answered (counted, for analytics), a replay's answer included.
    pub effects: u64,
    /// Requests dead-lettered and not recovered by a replay.
    pub dead_lettered: u64,
    /// Requests in flight: above the ack floor (not covered, for analytics) and not answered yet.
    pub pending: u64,
    /// Outputs (or counts) beyond one per request.
    pub duplicates: u64,
    /// Requests acknowledged (covered) with no answer (count) and no dead letter.
    pub unaccounted: u64,
    /// Stream sequences RIDES dropped before the service acknowledged them.
    pub lost: u64,
    /// Rides possibly lost that the audit can name ([`crate::audit::loss::named_rides`]).
    pub lost_rides: Vec<String>,
    /// analytics only: its totals against the snapshot, per kind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<KindLine>,
    /// A few of the unaccounted, duplicated or lost rides, to start looking.
    pub examples: Vec<String>,
    pub holds: bool,
}

impl Report {
    /// Sets `holds` from the counts and cuts the examples down.
    pub fn settle(mut self) -> Report {
        self.examples.truncate(EXAMPLES);
        self.holds = self.duplicates == 0
            && self.unaccounted == 0
            && self.lost == 0
            && self.published == self.effects + self.dead_lettered + self.pending;
        self
    }

    /// Records what the service lost to RIDES' limits.
    pub fn with_loss(mut self, loss: Loss) -> Report {
        if loss.sequences > 0 {
            let named = loss.rides.len();
            let some: Vec<&str> = loss.rides.iter().take(3).map(String::as_str).collect();
            self.examples.insert(
                0,
                format!(
                    "RIDES dropped up to {} sequences above the ack floor before {} read them; \
                     {named} rides possibly lost named by later messages{}",
                    loss.sequences,
                    self.service,
                    if some.is_empty() {
                        String::new()
                    } else {
                        format!(", e.g. {}", some.join(", "))
                    }
                ),
            );
        }
        self.lost = loss.sequences;
        self.lost_rides = loss.rides;
        self
    }
}

/// Checks one answering service against the snapshot.
pub fn check(snap: &Snapshot, service: Service) -> Report {
    let floor = snap.positions.get(&service).map_or(0, |p| p.ack_floor);
    let mut r = Report {
        service: service.name().to_string(),
        ..Default::default()
    };
    // Requests in the snapshot: sequence → ride, and ride → sequence.
    let requests: BTreeMap<u64, Option<&str>> = snap
        .messages
        .iter()
        .filter(|m| m.is_original_request())
        .map(|m| (m.seq, m.ride.as_deref()))
        .collect();
    let seq_of: HashMap<&str, u64> = requests
        .iter()
        .filter_map(|(s, ride)| ride.map(|ride| (ride, *s)))
        .collect();
    let replayed: HashSet<u64> = snap
        .messages
        .iter()
        .filter(|m| m.replay_for.as_deref() == Some(service.name()))
        .filter_map(|m| m.replay_of)
        .collect();

    // Outputs: one per ride, whether or not its request is still in the
    // snapshot. A replay of an output (for analytics) is a copy, not another one.
    let outputs = service.outputs();
    let mut per_ride: BTreeMap<&str, u64> = BTreeMap::new();
    for m in &snap.messages {
        if m.replay_for.is_none()
            && outputs.iter().any(|f| subjects::matches(f, &m.subject))
            && let Some(ride) = m.ride.as_deref()
        {
            *per_ride.entry(ride).or_default() += 1;
        }
    }
    let mut effect_seqs = HashSet::new();
    for (ride, n) in &per_ride {
        if *n > 1 {
            r.duplicates += n - 1;
            r.examples.push(format!("{n} outputs for ride {ride}"));
        }
        if let Some(seq) = seq_of.get(ride) {
            effect_seqs.insert(*seq);
        }
    }

    // Dead letters of requests still in the snapshot; older ones aged out with
    // their request and are not this snapshot's to count.
    let mut dead = HashSet::new();
    for letter in snap.letters_of(service).iter().filter(|l| l.is_request()) {
        let Some(seq) = letter.original_seq().filter(|s| requests.contains_key(s)) else {
            continue;
        };
        // A replayed request may be dead-lettered again, and its replay may
        // succeed: neither is a duplicate.
        let replay = replayed.contains(&seq);
        if (!dead.insert(seq) || effect_seqs.contains(&seq)) && !replay {
            r.duplicates += 1;
            r.examples.push(format!(
                "request {seq} dead-lettered twice or also answered"
            ));
        }
    }
    // A replay that produced its answer recovered the dead letter.
    dead.retain(|seq| !(replayed.contains(seq) && effect_seqs.contains(seq)));

    for (seq, ride) in &requests {
        if effect_seqs.contains(seq) || dead.contains(seq) {
            continue;
        }
        if *seq > floor {
            r.pending += 1;
        } else {
            r.unaccounted += 1;
            r.examples.push(format!(
                "request {seq} (ride {}) acknowledged but has no output and no dead letter",
                ride.unwrap_or("?")
            ));
        }
    }
    r.published = requests.len() as u64;
    r.effects = effect_seqs.len() as u64;
    r.dead_lettered = dead.len() as u64;
    r.with_loss(loss(snap, service)).settle()
}

#[cfg(test)]
mod tests {
    use hail_events::EventKind;

    use super::*;
    use crate::audit::snapshot::{Letter, Position, Stored};

    fn city() -> hail_events::City {
        "paris".parse().unwrap()
    }

    fn request(seq: u64) -> Stored {
        Stored {
            seq,
            kind: Some(EventKind::Requested),
            subject: subjects::rides_requested(&city()),
            ride: Some(format!("r{seq}")),
            replay_for: None,
            replay_of: None,
        }
    }

    fn replay_for(service: Service, of: u64, seq: u64) -> Stored {
        Stored {
            seq,
            ride: Some(format!("r{of}")),
            replay_for: Some(service.name().into()),
            replay_of: Some(of),
            ..request(seq)
        }
    }

    fn priced(seq: u64, ride: u64) -> Stored {
        Stored {
            seq,
            kind: Some(EventKind::Priced),
            subject: subjects::rides_priced(&city()),
            ride: Some(format!("r{ride}")),
            replay_for: None,
            replay_of: None,
        }
    }

    fn letter(of: u64) -> Letter {
        Letter {
            stream_seq: Some(of),
            subject: subjects::rides_requested(&city()),
            ride: Some(format!("r{of}")),
            replay_of: None,
        }
    }

    fn at(ack_floor: u64) -> Position {
        Position {
            ack_floor,
            delivered: ack_floor,
            caught_up: false,
        }
    }

    /// Requests 1..=n, then the given messages; pricing at `floor`.
    fn snapshot(n: u64, more: Vec<Stored>, letters: Vec<Letter>, floor: u64) -> Snapshot {
        let mut messages: Vec<Stored> = (1..=n).map(request).collect();
        messages.extend(more);
        Snapshot {
            first_seq: 1,
            last_seq: messages.last().map_or(0, |m| m.seq),
            messages,
            positions: [(Service::Pricing, at(floor))].into(),
            letters: [(Service::Pricing, letters)].into(),
            analytics: None,
        }
    }

    #[test]
    fn every_request_accounted_once_holds() {
        let snap = snapshot(
            5,
            vec![priced(6, 1), priced(7, 2), priced(8, 3)],
            vec![letter(4)],
            4,
        );
        let r = check(&snap, Service::Pricing);
        assert_eq!(
            (r.published, r.effects, r.dead_lettered, r.pending),
            (5, 3, 1, 1)
        );
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn a_duplicate_output_or_a_lost_request_fails() {
        let snap = snapshot(2, vec![priced(3, 1), priced(4, 1), priced(5, 2)], vec![], 2);
        let r = check(&snap, Service::Pricing);
        assert_eq!(r.duplicates, 1);
        assert!(!r.holds);
        let snap = snapshot(2, vec![priced(3, 1)], vec![], 2);
        let r = check(&snap, Service::Pricing);
        assert_eq!(r.unaccounted, 1);
        assert!(!r.holds);
    }

    #[test]
    fn requests_above_the_floor_are_in_flight_not_unaccounted() {
        // Under load: pricing acked through 3 when the snapshot was taken.
        let snap = snapshot(
            6,
            vec![priced(7, 1), priced(8, 2), priced(9, 3), priced(10, 5)],
            vec![],
            3,
        );
        let r = check(&snap, Service::Pricing);
        assert_eq!((r.effects, r.pending, r.unaccounted), (4, 2, 0));
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn a_replayed_dead_letter_is_recovered_by_its_answer() {
        let snap = snapshot(
            3,
            vec![
                priced(4, 1),
                priced(5, 2),
                replay_for(Service::Pricing, 3, 6),
                priced(7, 3),
            ],
            vec![letter(3)],
            7,
        );
        let r = check(&snap, Service::Pricing);
        assert_eq!(
            (r.published, r.effects, r.dead_lettered, r.duplicates),
            (3, 3, 0, 0)
        );
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn a_replay_of_an_output_for_analytics_is_not_a_second_output() {
        let copy = Stored {
            replay_for: Some("analytics".into()),
            replay_of: Some(2),
            ..priced(3, 1)
        };
        let snap = snapshot(1, vec![priced(2, 1), copy], vec![], 3);
        let r = check(&snap, Service::Pricing);
        assert_eq!((r.effects, r.duplicates), (1, 0));
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn a_replay_dead_lettered_again_is_still_one_dead_letter() {
        let again = Letter {
            stream_seq: Some(4),
            replay_of: Some(2),
            ..letter(2)
        };
        let snap = snapshot(
            2,
            vec![priced(3, 1), replay_for(Service::Pricing, 2, 4)],
            vec![letter(2), again],
            4,
        );
        let r = check(&snap, Service::Pricing);
        assert_eq!(
            (r.effects, r.dead_lettered, r.pending, r.duplicates),
            (1, 1, 0, 0)
        );
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn a_dead_letter_whose_request_aged_out_is_ignored() {
        // RIDES starts at 10 now; the dead letter is of request 4, gone.
        let mut snap = snapshot(0, vec![request(10), priced(11, 10)], vec![letter(4)], 11);
        snap.first_seq = 10;
        let r = check(&snap, Service::Pricing);
        assert_eq!(
            (r.published, r.effects, r.dead_lettered, r.duplicates),
            (1, 1, 0, 0)
        );
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn requests_dropped_above_the_floor_are_lost() {
        // pricing acknowledged through 2 and stopped; RIDES now starts at 8.
        let mut snap = snapshot(0, vec![request(8), request(9)], vec![], 2);
        snap.first_seq = 8;
        let r = check(&snap, Service::Pricing);
        assert_eq!((r.lost, r.pending), (5, 2));
        assert!(!r.holds, "{r:?}");
        assert!(
            r.examples[0].contains("dropped up to 5 sequences"),
            "{:?}",
            r.examples
        );
    }
}
