//! The covered stream sequences that are *not* in the totals: settled without
//! counting (a body that does not decode), withdrawn on their last delivery
//! (about to be dead-lettered), or passed by the ack floor without analytics
//! ever counting them (dead-lettered by the max-deliveries advisory, or expired).
//!
//! A replayed dead letter is counted under its original sequence exactly when
//! that sequence is here; counting it takes it out, so a second replay of the
//! same letter finds it counted. The set is kept as runs: one per dead letter
//! or gap, not one per sequence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Disjoint, non-touching runs of sequences, start → end (inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<[u64; 2]>", into = "Vec<[u64; 2]>")]
pub struct Uncounted {
    runs: BTreeMap<u64, u64>,
}

impl Uncounted {
    /// Whether `seq` is uncounted.
    pub fn contains(&self, seq: u64) -> bool {
        self.runs
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, end)| *end >= seq)
    }

    /// How many separate runs it holds.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds `start..=end` (`start <= end`), merging with the runs it touches.
    pub fn insert_range(&mut self, start: u64, end: u64) {
        debug_assert!(start <= end);
        let (mut start, mut end) = (start, end);
        // A run starting at or before `start` that reaches it (or touches it).
        if let Some((&s, &e)) = self.runs.range(..=start).next_back()
            && e.saturating_add(1) >= start
        {
            self.runs.remove(&s);
            start = s;
            end = end.max(e);
        }
        // Runs starting inside or right after `start..=end`.
        while let Some((&s, &e)) = self.runs.range(start..=end.saturating_add(1)).next() {
            self.runs.remove(&s);
            end = end.max(e);
        }
        self.runs.insert(start, end);
    }

    /// Adds `seq`.
    pub fn insert(&mut self, seq: u64) {
        self.insert_range(seq, seq);
    }

    /// Takes `seq` out; `false` if it was not there.
    pub fn remove(&mut self, seq: u64) -> bool {
        let Some((&s, &e)) = self.runs.range(..=seq).next_back() else {
            return false;
        };
        if e < seq {
            return false;
        }
        self.runs.remove(&s);
        if s < seq {
            self.runs.insert(s, seq - 1);
        }
        if seq < e {
            self.runs.insert(seq + 1, e);
        }
        true
    }
}

impl From<Uncounted> for Vec<[u64; 2]> {
    fn from(u: Uncounted) -> Self {
        u.runs.into_iter().map(|(s, e)| [s, e]).collect()
    }
}

impl TryFrom<Vec<[u64; 2]>> for Uncounted {
    type Error = String;
    fn try_from(raw: Vec<[u64; 2]>) -> Result<Self, String> {
        let mut u = Uncounted::default();
        let mut next = 0u64;
        for [start, end] in raw {
            if start < next || end < start {
                return Err(format!(
                    "uncounted run [{start}, {end}] overlaps, touches or is out of order"
                ));
            }
            u.runs.insert(start, end);
            next = end.saturating_add(2);
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(u: &Uncounted, upto: u64) -> Vec<u64> {
        (1..=upto).filter(|s| u.contains(*s)).collect()
    }

    #[test]
    fn ranges_merge_with_what_they_touch() {
        let mut u = Uncounted::default();
        u.insert(5);
        u.insert_range(10, 12);
        assert_eq!(u.runs(), 2);
        u.insert_range(6, 9);
        assert_eq!(u.runs(), 1);
        u.insert_range(1, 3);
        u.insert_range(2, 20);
        assert_eq!(u.runs(), 1);
        assert_eq!(members(&u, 22), (1..=20).collect::<Vec<_>>());
    }

    #[test]
    fn removing_splits_a_run() {
        let mut u = Uncounted::default();
        u.insert_range(3, 7);
        assert!(u.remove(5));
        assert!(!u.remove(5), "a second removal finds nothing");
        assert!(!u.remove(9));
        assert_eq!(members(&u, 9), vec![3, 4, 6, 7]);
        assert!(u.remove(3) && u.remove(7));
        assert_eq!(members(&u, 9), vec![4, 6]);
        assert_eq!(u.runs(), 2);
    }

    #[test]
    fn stored_form_round_trips_and_refuses_overlaps() {
        let mut u = Uncounted::default();
        u.insert_range(4, 6);
        u.insert(9);
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "[[4,6],[9,9]]");
        assert_eq!(serde_json::from_str::<Uncounted>(&json).unwrap(), u);
        let err = serde_json::from_str::<Uncounted>("[[4,6],[7,9]]").unwrap_err();
        assert!(err.to_string().contains("run [7, 9]"), "{err}");
    }
}
