//! Requests RIDES dropped by its limits (`max_bytes`, `max_age`, discard old)
//! before a service acknowledged them: lost for that service, with no error
//! anywhere else.
//!
//! A durable's ack floor is the stream sequence of the last message of its
//! filter below which it acknowledged everything; the stream's first sequence
//! is the oldest message it still holds. A floor below `first_seq - 1` of a
//! durable that is not caught up (see [`Position::caught_up`]) means RIDES
//! dropped messages the service had not read: the sequences in between count
//! as lost (an upper bound: messages of other filters sit among them). Their
//! ride ids are gone with them; the audit names those it still finds in later
//! messages of other services.
//!
//! *Limits*: once the service reads again past the gap, its floor moves above
//! it and the loss is no longer visible here; a durable that is pulling and
//! caught up is taken to have lost nothing, so a loss whose durable has since
//! come back with nothing newer to read is not seen either.

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
    if sequences == 0 || position.caught_up {
        return Loss::default();
    }
    Loss {
        sequences,
        rides: named_rides(snap, service, position.ack_floor),
    }
}

/// Rides possibly lost: their request is gone from the snapshot, `service`
/// has neither an output nor a dead letter of them in it, and another message
/// names them above `ack_floor + 1` (their request came before that message,
/// so possibly above the floor, unacknowledged). A ride the service did answer
/// whose answer RIDES dropped as well, while another service's later answer
/// remains, is named too: the audit cannot tell it apart.
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
            caught_up: false,
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
                    caught_up: false,
                },
            )]
            .into(),
            ..Default::default()
        };
        let lost = loss(&snap, Service::Pricing);
        assert_eq!(lost.sequences, 3);
        assert_eq!(lost.rides, vec!["a".to_string()]);
        let mut pulling = snap.clone();
        pulling
            .positions
            .get_mut(&Service::Pricing)
            .unwrap()
            .caught_up = true;
        assert_eq!(
            loss(&pulling, Service::Pricing),
            Loss::default(),
            "what follows the last message of its filter may age out"
        );
        assert_eq!(
            loss(&snap, Service::Fraud),
            Loss::default(),
            "no durable, no claim"
        );
    }
}
