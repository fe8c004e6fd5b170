//! How one event changes a ride's record: pure, so the order events arrive in
//! and how often each arrives cannot change the result.
//!
//! - A step whose stream sequence the record already holds changes nothing
//!   (a redelivery, or a second instance that handled the same message).
//! - Each field comes from the event of its kind with the *lowest* sequence:
//!   the first answer stored is the ride's answer (as the services' answer
//!   fence has it), whichever arrives here first.
//! - The state only moves forward ([`rank`]): a completion or cancellation
//!   wins over a match, a late `RideRequested` never resets anything.
//!
//! So applying the same set of events in any order, any number of times,
//! gives the same record.

use hail_events::{
    AnyEvent,
    ride_view::{Fare, Match, RideState, RideView, Screening, Step},
};

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The record changed and must be stored.
    Changed,
    /// The record already held this step: nothing to store.
    AlreadySeen,
}

/// How far along a state is; the record's state only rises. Between two
/// states of one rank there is no event order that makes both true
/// (matching answers a ride once), so the order inside a rank only has to be
/// fixed: a match over an unmatched answer, a completion over a cancellation
/// (a trip that ended is not undone by a late cancel).
pub fn rank(state: RideState) -> u8 {
    match state {
        RideState::Requested => 0,
        RideState::Unmatched => 1,
        RideState::Matched => 2,
        RideState::Cancelled => 3,
        RideState::Completed => 4,
    }
}

/// Applies `event`, stored in RIDES as `step`, to `view`.
pub fn apply(view: &mut RideView, event: &AnyEvent, step: Step) -> Applied {
    if view.steps.iter().any(|s| s.seq == step.seq) {
        return Applied::AlreadySeen;
    }
    // The first of its kind (lowest sequence) sets the fields.
    let first_of_kind = !view
        .steps
        .iter()
        .any(|s| s.event == step.event && s.seq < step.seq);
    let at = view.steps.partition_point(|s| s.seq < step.seq);
    view.steps.insert(at, step);
    if view.city.is_none() {
        view.city = Some(event.city().as_str().to_string());
    }
    let state = match event {
        AnyEvent::Requested(r) => {
            if first_of_kind {
                view.requested_at_ms = Some(r.requested_at_ms);
            }
            None
        }
        AnyEvent::Matched(m) => {
            if first_of_kind {
                view.matched = Some(Match {
                    driver_id: m.driver_id.clone(),
                    eta_s: m.eta_s,
                    pickup_distance_m: m.pickup_distance_m,
                    at_ms: m.matched_at_ms,
                });
            }
            Some(RideState::Matched)
        }
        AnyEvent::Unmatched(u) => {
            if first_of_kind {
                view.unmatched_reason = Some(u.reason);
                view.unmatched_at_ms = Some(u.at_ms);
            }
            Some(RideState::Unmatched)
        }
        AnyEvent::Priced(f) => {
            if first_of_kind {
                view.fare = Some(Fare {
                    amount_minor: f.amount_minor,
                    currency: f.currency.clone(),
                    surge: f.surge,
                    at_ms: f.at_ms,
                });
            }
            None
        }
        AnyEvent::Screened(s) => {
            if first_of_kind {
                view.screening = Some(Screening {
                    verdict: s.verdict,
                    score: s.score,
                    rules: s.rules.clone(),
                    at_ms: s.at_ms,
                });
            }
            None
        }
        AnyEvent::Completed(c) => {
            if first_of_kind {
                view.completed_at_ms = Some(c.at_ms);
            }
            Some(RideState::Completed)
        }
        AnyEvent::Cancelled(c) => {
            if first_of_kind {
                view.cancelled_at_ms = Some(c.at_ms);
            }
            Some(RideState::Cancelled)
        }
        // Not about a ride: the handler never passes one (it is not on RIDES).
        AnyEvent::DriverLocation(_) => None,
    };
    if let Some(state) = state
        && rank(state) > rank(view.state)
    {
        view.state = state;
    }
    Applied::Changed
}

#[cfg(test)]
mod tests {
    use hail_events::{RideId, UnmatchedReason, sample};

    use super::*;

    /// The events of one ride with made-up stream sequences, in stream order.
    fn ride(id: &str, kinds: &[usize]) -> Vec<(AnyEvent, Step)> {
        let all = sample::one_of_each(id, "berlin");
        kinds
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let e = all[k].clone();
                let step = Step {
                    seq: 10 + i as u64,
                    subject: e.subject(),
                    event: e.name().to_string(),
                    stored_at_ms: 1_000 + i as u64,
                };
                (e, step)
            })
            .collect()
    }

    fn build(events: &[(AnyEvent, Step)]) -> RideView {
        let mut v = RideView::new(RideId::new("r1").unwrap());
        for (e, s) in events {
            apply(&mut v, e, s.clone());
        }
        v
    }

    /// Every ordering of `items` (Heap's algorithm).
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        fn go<T: Clone>(k: usize, a: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
            if k <= 1 {
                out.push(a.clone());
                return;
            }
            for i in 0..k {
                go(k - 1, a, out);
                let j = if k.is_multiple_of(2) { i } else { 0 };
                a.swap(j, k - 1);
            }
        }
        let mut a = items.to_vec();
        let mut out = Vec::new();
        go(a.len(), &mut a, &mut out);
        out
    }

    // one_of_each: 0 requested, 1 driver, 2 matched, 3 unmatched, 4 priced,
    // 5 screened, 6 completed, 7 cancelled.

    #[test]
    fn a_matched_priced_screened_ride() {
        let v = build(&ride("r1", &[0, 2, 4, 5]));
        assert_eq!(v.state, RideState::Matched);
        assert_eq!(v.city.as_deref(), Some("berlin"));
        assert_eq!(v.requested_at_ms, Some(1_800_000_000_000));
        assert_eq!(v.matched.as_ref().unwrap().driver_id.as_str(), "driver-r1");
        assert_eq!(v.fare.as_ref().unwrap().amount_minor, 1250);
        assert_eq!(
            v.screening.as_ref().unwrap().verdict,
            hail_events::Verdict::Allow
        );
        let seqs: Vec<u64> = v.steps.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [10, 11, 12, 13]);
        assert_eq!(v.steps[2].event, "FareQuoted");
    }

    #[test]
    fn any_order_and_any_repetition_give_the_same_record() {
        let events = ride("r1", &[0, 2, 4, 5, 6, 7]);
        let expected = build(&events);
        assert_eq!(expected.state, RideState::Completed);
        for order in permutations(&events) {
            let mut twice = order.clone();
            twice.extend(order.iter().rev().cloned());
            assert_eq!(build(&twice), expected, "{order:?}");
        }
    }

    #[test]
    fn a_step_already_held_changes_nothing() {
        let events = ride("r1", &[0, 3]);
        let mut v = build(&events);
        let before = v.clone();
        let (e, s) = &events[1];
        assert_eq!(apply(&mut v, e, s.clone()), Applied::AlreadySeen);
        assert_eq!(v, before);
        assert_eq!(v.state, RideState::Unmatched);
        assert_eq!(v.unmatched_reason, Some(UnmatchedReason::AllNearbyClaimed));
    }

    #[test]
    fn the_state_only_moves_forward() {
        // A cancellation stored before the match still wins over it.
        let mut events = ride("r1", &[0, 7, 2]);
        let v = build(&events);
        assert_eq!(v.state, RideState::Cancelled);
        assert!(v.matched.is_some() && v.cancelled_at_ms.is_some());
        // A request arriving last does not reset a completed ride.
        events = ride("r1", &[6, 2, 0]);
        assert_eq!(build(&events).state, RideState::Completed);
        // A request alone is requested.
        assert_eq!(build(&ride("r1", &[0])).state, RideState::Requested);
    }

    #[test]
    fn the_first_answer_of_a_kind_is_the_rides() {
        let mut events = ride("r1", &[0, 4, 4]);
        if let AnyEvent::Priced(f) = &mut events[2].0 {
            f.amount_minor = 9_999;
        }
        // Whichever of the two quotes arrives first, the lower sequence's stays.
        let forward = build(&events);
        events.swap(1, 2);
        let backward = build(&events);
        assert_eq!(forward.fare.as_ref().unwrap().amount_minor, 1250);
        assert_eq!(forward, backward);
        assert_eq!(forward.steps.len(), 3);
    }

    #[test]
    fn ranks_are_a_total_order() {
        let states = [
            RideState::Requested,
            RideState::Unmatched,
            RideState::Matched,
            RideState::Cancelled,
            RideState::Completed,
        ];
        let ranks: Vec<u8> = states.iter().map(|s| rank(*s)).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
    }
}
