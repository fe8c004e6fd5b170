//! The rides this gateway accepted lately, in memory: so `GET` answers
//! `requested` for a ride ride-view has not recorded yet, and `cancel` knows
//! its city. Bounded: the oldest are forgotten first. A ride accepted by another
//! instance, or before a restart, is not here: it is `404` until ride-view has it.

use std::collections::{HashMap, VecDeque};

/// What is remembered of an accepted ride.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub city: String,
    pub requested_at_ms: u64,
}

/// The last `capacity` accepted rides.
#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    order: VecDeque<String>,
    rides: HashMap<String, Accepted>,
}

impl Recent {
    /// Remembers at most `capacity` rides (at least 1).
    pub fn new(capacity: usize) -> Self {
        Recent {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            rides: HashMap::new(),
        }
    }

    /// Notes an accepted ride, forgetting the oldest beyond capacity.
    pub fn insert(&mut self, ride: &str, accepted: Accepted) {
        if self.rides.insert(ride.to_string(), accepted).is_none() {
            self.order.push_back(ride.to_string());
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.rides.remove(&old);
            }
        }
    }

    /// An accepted ride, if remembered.
    pub fn get(&self, ride: &str) -> Option<&Accepted> {
        self.rides.get(ride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest() {
        let mut r = Recent::new(2);
        let a = |t| Accepted {
            city: "berlin".into(),
            requested_at_ms: t,
        };
        r.insert("a", a(1));
        r.insert("b", a(2));
        r.insert("a", a(3));
        assert_eq!(r.get("a").unwrap().requested_at_ms, 3);
        r.insert("c", a(4));
        assert!(r.get("a").is_none());
        assert!(r.get("b").is_some() && r.get("c").is_some());
    }
}
