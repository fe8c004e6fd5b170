//! Requests RIDES dropped by its limits (`max_bytes`, `max_age`, discard old)
//! before a service acknowledged them: lost for that service, with no error
//! anywhere else.
//!
//! A durable's ack floor is the stream sequence below which it acknowledged
//! everything; the stream's first sequence is the oldest message it still
//! holds. A floor below `first_seq - 1` means the messages in between were
//! dropped while the service still owed some of them. Their ride ids are gone
//! with them; the audit names those it still finds in later messages of other
//! services (their outputs, completions, cancellations).

use std::collections::BTreeSet;

use hail_runtime::service::Service;

use super::snapshot::{Position, Snapshot};

/// What one service lost to RIDES' limits.
#[derive(Debug, Default, PartialEq)]
pub struct Loss {
    /// Stream sequences dropped above the service's ack floor: it had not
    /// acknowledged at least the first of them (not all were for it).
    pub sequences: u64,
    /// The lost rides the audit can name (see [`named_rides`]).
    pub rides: Vec<String>,
}

/// Sequences above `position`'s ack floor that the stream, now starting at
/// `first_seq`, no longer holds.
pub fn sequences_lost(position: Position, first_seq: u64) -> u64 {
    first_seq
        .saturating_sub(1)
        .saturating_sub(position.ack_floor)
}

/// What `service` lost, from the snapshot; nothing when its durable does not exist.
pub fn loss(snap: &Snapshot, service: Service) -> Loss {
    let Some(position) = snap.positions.get(&service) else {
        return Loss::default();
    };
    let sequences = sequences_lost(*position, snap.first_seq);
    if sequences == 0 {
        return Loss::default();
    }
    Loss {
        sequences,
        rides: named_rides(snap, service, position.ack_floor),
    }
}

/// Rides whose request is gone from the snapshot, that `service` neither
/// answered nor dead-lettered, and that another message names above
/// `ack_floor + 1`: their request came before that message, so possibly above
/// the floor, where the service had not acknowledged it. A ride whose request
/// the service acknowledged out of order above its floor, and whose answer was
/// dropped too, can be named here as well.
pub fn named_rides(snap: &Snapshot, service: Service, ack_floor: u64) -> Vec<String> {
    let own_outputs = service.outputs();
    let is_own = |subject: &str| {
        own_outputs
            .iter()
            .any(|f| hail_events::subjects::matches(f, subject))
    };
    let mut requested = BTreeSet::new();
    let mut answered = BTreeSet::new();
    for m in &snap.messages {
        if m.is_original_request() {
            requested.extend(m.ride.as_deref());
        } else if is_own(&m.subject) {
            answered.extend(m.ride.as_deref());
        }
    }
    answered.extend(
        snap.letters_of(service)
            .iter()
            .filter_map(|l| l.ride.as_deref()),
    );
    snap.messages
        .iter()
        .filter(|m| m.seq > ack_floor + 1 && m.kind.is_some() && !m.is_original_request())
        .filter(|m| m.replay_for.is_none() && !is_own(&m.subject))
        .filter_map(|m| m.ride.as_deref())
        .filter(|r| !requested.contains(r) && !answered.contains(r))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use hail_events::EventKind;

    use super::*;
    use crate::audit::snapshot::Stored;

    fn msg(seq: u64, kind: EventKind, subject: &str, ride: &str) -> Stored {
        Stored {
            seq,
            kind: Some(kind),
            subject: subject.into(),
            ride: Some(ride.into()),
            replay_for: None,
            replay_of: None,
        }
    }

    fn subject(kind: EventKind) -> String {
        let city: hail_events::City = "berlin".parse().unwrap();
        match kind {
            EventKind::Requested => hail_events::subjects::rides_requested(&city),
            EventKind::Priced => hail_events::subjects::rides_priced(&city),
            EventKind::Screened => hail_events::subjects::rides_screened(&city),
            _ => hail_events::subjects::rides_matched(&city),
        }
    }

    #[test]
    fn a_floor_at_or_past_the_first_sequence_lost_nothing() {
        let at = |ack_floor| Position {
            ack_floor,
            delivered: ack_floor,
        };
        assert_eq!(sequences_lost(at(0), 1), 0);
        assert_eq!(sequences_lost(at(9), 10), 0);
        assert_eq!(sequences_lost(at(50), 10), 0);
        assert_eq!(sequences_lost(at(4), 10), 5);
    }

    #[test]
    fn names_the_rides_others_answered_whose_request_is_gone() {
        use EventKind::*;
        // pricing stopped at floor 2; RIDES now starts at 6. Ride a's request
        // (gone) was answered by fraud at 6; ride b is still requested at 7;
        // ride c was priced (its quote at 8), ride d screened at 2, below the floor.
        let snap = Snapshot {
            first_seq: 6,
            last_seq: 9,
            messages: vec![
                msg(6, Screened, &subject(Screened), "a"),
                msg(7, Requested, &subject(Requested), "b"),
                msg(8, Priced, &subject(Priced), "c"),
                msg(9, Screened, &subject(Screened), "c"),
            ],
            positions: [(
                Service::Pricing,
                Position {
                    ack_floor: 2,
                    delivered: 2,
                },
            )]
            .into(),
            ..Default::default()
        };
        let lost = loss(&snap, Service::Pricing);
        assert_eq!(lost.sequences, 3);
        assert_eq!(lost.rides, vec!["a".to_string()]);
        assert_eq!(
            loss(&snap, Service::Fraud),
            Loss::default(),
            "no durable, no claim"
        );
    }
}
