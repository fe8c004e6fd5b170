//! analytics' whole state: per-city totals and the stream sequences they cover.
//! Pure: the handler locks it, the checkpointer snapshots it.

use std::collections::BTreeMap;

use hail_events::City;
use serde::{Deserialize, Serialize};

use crate::{coverage::Coverage, event::RideEvent, totals::CityTotals};

/// Totals per city and exactly which sequences of RIDES they include.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Sequences of RIDES already counted (or settled without counting).
    pub coverage: Coverage,
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
}

impl State {
    /// Counts `event`, stored at `seq`, unless `seq` is already covered.
    pub fn apply(&mut self, seq: u64, event: &RideEvent) -> Applied {
        if !self.coverage.insert(seq) {
            return Applied::Skipped;
        }
        match self.cities.get_mut(event.city()) {
            Some(t) => t.apply(event),
            None => self
                .cities
                .entry(event.city().clone())
                .or_default()
                .apply(event),
        }
        Applied::Counted
    }

    /// Covers `seq` without counting anything (a message that is dead-lettered),
    /// so the floor can move past it.
    pub fn settle(&mut self, seq: u64) -> bool {
        self.coverage.insert(seq)
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
    }
}
