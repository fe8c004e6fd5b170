//! analytics' whole state: per-city totals, the stream sequences they cover and,
//! among those, the ones not counted. Pure: the handler locks it, the
//! checkpointer snapshots it.
//!
//! A sequence is *counted* when it is covered and not uncounted. A direct
//! delivery is counted under its own sequence; a replayed dead letter under its
//! original's (`Hail-Replay-Of`), and only if that one is not counted yet, so a
//! message is counted once however often it is replayed. On its last delivery a
//! message whose checkpoint cannot be stored is withdrawn (un-counted) before
//! the runtime dead-letters it, so the totals never hold what the DLQ holds.

use std::collections::BTreeMap;

use hail_events::City;
use serde::{Deserialize, Serialize};

use crate::{coverage::Coverage, event::RideEvent, totals::CityTotals, uncounted::Uncounted};

/// Totals per city and exactly which sequences of RIDES they include.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Sequences of RIDES already handled: counted, or covered without counting.
    pub coverage: Coverage,
    /// Covered sequences the totals do not hold: settled, withdrawn, replays'
    /// own sequences, and those the floor passed without their being applied.
    /// Absent from checkpoints written before it existed.
    #[serde(default)]
    pub uncounted: Uncounted,
    /// Totals per city.
    pub cities: BTreeMap<City, CityTotals>,
}

/// What [`State::apply`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Counted now.
    Counted,
    /// Already covered (a redelivery): not counted again.
    Skipped,
    /// A replay, newly covered, whose original is already counted: nothing
    /// counted, but the state changed.
    Covered,
}

impl State {
    /// Counts `event`, stored at `seq`, unless `seq` is already covered.
    pub fn apply(&mut self, seq: u64, event: &RideEvent) -> Applied {
        if !self.coverage.insert(seq) {
            return Applied::Skipped;
        }
        self.count(event);
        Applied::Counted
    }

    /// Counts a replayed dead letter, stored at `seq`, under its `original`
    /// sequence: only if `seq` is new and `original` is not counted yet.
    pub fn apply_replay(&mut self, seq: u64, original: u64, event: &RideEvent) -> Applied {
        if !self.coverage.insert(seq) {
            return Applied::Skipped;
        }
        self.uncounted.insert(seq);
        if self.counts(original) {
            return Applied::Covered;
        }
        self.coverage.insert(original);
        self.uncounted.remove(original);
        self.count(event);
        Applied::Counted
    }

    fn count(&mut self, event: &RideEvent) {
        match self.cities.get_mut(event.city()) {
            Some(t) => t.apply(event),
            None => self
                .cities
                .entry(event.city().clone())
                .or_default()
                .apply(event),
        }
    }

    /// Whether the totals hold the message of sequence `seq` (counted directly
    /// or through a replay of it).
    pub fn counts(&self, seq: u64) -> bool {
        self.coverage.contains(seq) && !self.uncounted.contains(seq)
    }

    /// Takes `event`, counted under `seq`, back out of the totals (its last
    /// delivery is about to be dead-lettered); `false` if `seq` is not counted.
    pub fn withdraw(&mut self, seq: u64, event: &RideEvent) -> bool {
        if !self.counts(seq) {
            return false;
        }
        if let Some(t) = self.cities.get_mut(event.city()) {
            t.withdraw(event);
        }
        self.uncounted.insert(seq);
        true
    }

    /// Covers `seq` without counting anything (a message that is dead-lettered),
    /// so the floor can move past it.
    pub fn settle(&mut self, seq: u64) -> bool {
        let fresh = self.coverage.insert(seq);
        if fresh {
            self.uncounted.insert(seq);
        }
        fresh
    }

    /// Raises the coverage floor to the consumer's ack floor; what it covers
    /// without its having been applied (dead-lettered before the handler saw
    /// it, or expired) is uncounted, so a replay of it will count it.
    pub fn raise_floor(&mut self, floor: u64) -> bool {
        for (start, end) in self.coverage.gaps_up_to(floor) {
            self.uncounted.insert_range(start, end);
        }
        self.coverage.raise_floor(floor)
    }

    /// Every city's totals added up.
    pub fn all_cities(&self) -> CityTotals {
        self.cities
            .values()
            .fold(CityTotals::default(), |mut all, t| {
                all.merge(t);
                all
            })
    }

    /// `Err` naming the city whose totals do not fit this build.
    pub fn check(&self) -> Result<(), String> {
        self.cities
            .iter()
            .try_for_each(|(city, t)| t.check().map_err(|e| format!("city {city}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use hail_events::sample;

    use super::*;

    fn request(ride: &str, city: &str) -> RideEvent {
        RideEvent::Requested(sample::ride_requested(ride, city))
    }

    #[test]
    fn counts_each_sequence_once() {
        let mut s = State::default();
        assert_eq!(s.apply(1, &request("a", "berlin")), Applied::Counted);
        assert_eq!(s.apply(3, &request("c", "paris")), Applied::Counted);
        assert_eq!(s.apply(1, &request("a", "berlin")), Applied::Skipped);
        assert_eq!(s.apply(3, &request("c", "paris")), Applied::Skipped);
        assert_eq!(s.apply(2, &request("b", "berlin")), Applied::Counted);
        assert_eq!(s.cities[&City::new("berlin").unwrap()].requests, 2);
        assert_eq!(s.cities[&City::new("paris").unwrap()].requests, 1);
        assert_eq!(s.coverage.floor(), 3);
        assert_eq!(s.all_cities().requests, 3);
    }

    #[test]
    fn settled_sequences_move_the_floor_without_counting() {
        let mut s = State::default();
        s.apply(1, &request("a", "berlin"));
        assert!(s.settle(2));
        assert!(!s.settle(2));
        s.apply(3, &request("c", "berlin"));
        assert_eq!(s.coverage.floor(), 3);
        assert_eq!(s.all_cities().requests, 2);
        assert!(s.counts(1) && !s.counts(2) && s.counts(3) && !s.counts(4));
    }

    #[test]
    fn a_withdrawn_message_is_counted_once_by_its_replays() {
        let mut s = State::default();
        let a = request("a", "berlin");
        s.apply(1, &a);
        s.apply(2, &request("b", "berlin"));
        assert!(s.withdraw(1, &a), "its last delivery gives up");
        assert!(!s.withdraw(1, &a), "withdrawn once");
        assert_eq!((s.all_cities().requests, s.counts(1)), (1, false));
        assert_eq!(s.apply(1, &a), Applied::Skipped, "a late redelivery");
        // The dead letter of #1, replayed as #7, then again as #9.
        assert_eq!(s.apply_replay(7, 1, &a), Applied::Counted);
        assert_eq!(s.apply_replay(7, 1, &a), Applied::Skipped);
        assert_eq!(s.apply_replay(9, 1, &a), Applied::Covered);
        assert_eq!(s.all_cities().requests, 2);
        assert!(s.counts(1) && !s.counts(7) && !s.counts(9));
        // The replay #7 itself given up on its last delivery: #1 out again.
        assert!(s.withdraw(1, &a));
        assert_eq!(s.all_cities().requests, 1);
        assert_eq!(s.apply_replay(11, 1, &a), Applied::Counted);
        assert_eq!(s.all_cities().requests, 2);
    }

    #[test]
    fn a_replay_of_a_message_already_counted_counts_nothing() {
        // Counted and stored, but dead-lettered anyway (its process died
        // before the ack on the last delivery): the replay must not add it.
        let mut s = State::default();
        let a = request("a", "berlin");
        s.apply(1, &a);
        assert_eq!(s.apply_replay(5, 1, &a), Applied::Covered);
        assert_eq!(s.all_cities().requests, 1);
    }

    #[test]
    fn what_the_floor_passes_unapplied_is_counted_by_a_replay() {
        let mut s = State::default();
        let c = request("c", "berlin");
        s.apply(1, &request("a", "berlin"));
        s.apply(4, &request("d", "berlin"));
        // #2 and #3 dead-lettered by the advisory; the ack floor passes them.
        assert!(s.raise_floor(5));
        assert_eq!(s.coverage.floor(), 5);
        assert!(s.counts(1) && !s.counts(2) && !s.counts(3) && s.counts(4));
        assert!(!s.counts(5), "passed by the floor, never applied");
        assert_eq!(s.apply_replay(8, 3, &c), Applied::Counted);
        assert_eq!(s.apply_replay(9, 3, &c), Applied::Covered);
        assert_eq!(s.all_cities().requests, 3);
    }

    #[test]
    fn a_replay_before_the_floor_reaches_its_original_covers_it() {
        let mut s = State::default();
        let b = request("b", "berlin");
        assert_eq!(s.apply_replay(6, 2, &b), Applied::Counted);
        s.raise_floor(6);
        assert!(s.counts(2), "not a gap: counted by its replay");
        assert!(!s.counts(1) && !s.counts(6));
        assert_eq!(s.apply_replay(7, 2, &b), Applied::Covered);
        assert_eq!(s.all_cities().requests, 1);
    }

    #[test]
    fn checkpoints_without_uncounted_still_load() {
        let old = r#"{"coverage":{"floor":3,"runs":[]},"cities":{}}"#;
        let s: State = serde_json::from_str(old).unwrap();
        assert!(s.counts(3) && s.uncounted.runs() == 0);
    }
}
