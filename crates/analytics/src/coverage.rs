//! Which stream sequences the state already holds: a floor (every sequence at or
//! below it) plus the runs applied above it, out of order.
//!
//! Messages are handled concurrently, so they are applied out of order; a crash
//! redelivers some of them. A sequence is applied once: the handler asks
//! [`Coverage::insert`] first and counts the event only when it answers `true`.
//! As the gap below a run fills, the run merges into the floor, so the set stays
//! as small as the disorder in flight, not as the stream.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Stream sequences covered: `1..=floor` plus disjoint runs above `floor + 1`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Raw", into = "Raw")]
pub struct Coverage {
    floor: u64,
    /// Run start → run end (inclusive); runs neither touch nor overlap each
    /// other or the floor.
    runs: BTreeMap<u64, u64>,
}

/// The stored form: the floor and the runs above it as `[start, end]` pairs.
#[derive(Serialize, Deserialize)]
struct Raw {
    floor: u64,
    runs: Vec<[u64; 2]>,
}

impl Coverage {
    /// Every sequence at or below `floor`, nothing above.
    pub fn with_floor(floor: u64) -> Self {
        Coverage {
            floor,
            runs: BTreeMap::new(),
        }
    }

    /// The highest sequence below which nothing is missing.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// How many separate runs sit above the floor.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Whether `seq` is covered.
    pub fn contains(&self, seq: u64) -> bool {
        seq <= self.floor
            || self
                .runs
                .range(..=seq)
                .next_back()
                .is_some_and(|(_, end)| *end >= seq)
    }

    /// Covers `seq`; `false` if it already was (a redelivery to skip).
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        let joins_left = seq - 1 == self.floor
            || self
                .runs
                .range(..seq)
                .next_back()
                .is_some_and(|(_, end)| *end == seq - 1);
        let right_end = self.runs.remove(&(seq + 1));
        let end = right_end.unwrap_or(seq);
        if seq - 1 == self.floor {
            self.floor = end;
        } else if joins_left {
            let (_, left_end) = self.runs.range_mut(..seq).next_back().expect("left run");
            *left_end = end;
        } else {
            self.runs.insert(seq, end);
        }
        true
    }

    /// The sequences in `floor() + 1..=upto` that are not covered, as
    /// `(start, end)` runs (what [`Coverage::raise_floor`] to `upto` would
    /// cover without their having been applied).
    pub fn gaps_up_to(&self, upto: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut next = self.floor + 1;
        for (&start, &end) in self.runs.range(..=upto) {
            if start > next {
                gaps.push((next, start - 1));
            }
            next = end + 1;
        }
        if next <= upto {
            gaps.push((next, upto));
        }
        gaps
    }

    /// Raises the floor to `floor` (everything at or below it is settled: the
    /// server's ack floor), absorbing the runs it reaches.
    pub fn raise_floor(&mut self, floor: u64) -> bool {
        if floor <= self.floor {
            return false;
        }
        self.floor = floor;
        while let Some((&start, &end)) = self.runs.first_key_value() {
            if start > self.floor + 1 {
                break;
            }
            self.runs.remove(&start);
            self.floor = self.floor.max(end);
        }
        true
    }
}

impl From<Coverage> for Raw {
    fn from(c: Coverage) -> Raw {
        Raw {
            floor: c.floor,
            runs: c.runs.into_iter().map(|(s, e)| [s, e]).collect(),
        }
    }
}

impl TryFrom<Raw> for Coverage {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Self, String> {
        let mut c = Coverage::with_floor(raw.floor);
        let mut last = raw.floor + 1;
        for [start, end] in raw.runs {
            if start <= last || end < start {
                return Err(format!(
                    "coverage run [{start}, {end}] overlaps, touches or is out of order (previous end {last})"
                ));
            }
            c.runs.insert(start, end);
            last = end + 1;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(c: &Coverage, upto: u64) -> Vec<u64> {
        (1..=upto).filter(|s| c.contains(*s)).collect()
    }

    #[test]
    fn in_order_advances_the_floor() {
        let mut c = Coverage::default();
        for s in 1..=5 {
            assert!(c.insert(s));
        }
        assert_eq!((c.floor(), c.runs()), (5, 0));
        assert!(c.contains(3) && !c.contains(6));
    }

    #[test]
    fn out_of_order_runs_merge_into_the_floor() {
        let mut c = Coverage::default();
        for s in [3, 5, 4, 9, 7] {
            assert!(c.insert(s));
        }
        assert_eq!(c.floor(), 0);
        assert_eq!(c.runs(), 3, "{c:?}"); // 3..=5, 7, 9
        assert_eq!(covered(&c, 10), vec![3, 4, 5, 7, 9]);
        assert!(c.insert(1));
        assert_eq!(c.floor(), 1);
        assert!(c.insert(2));
        assert_eq!((c.floor(), c.runs()), (5, 2));
        assert!(c.insert(8)); // joins 7 and 9 into one run
        assert_eq!(c.runs(), 1);
        assert!(c.insert(6));
        assert_eq!((c.floor(), c.runs()), (9, 0));
    }

    #[test]
    fn duplicates_are_refused() {
        let mut c = Coverage::default();
        assert!(c.insert(1));
        assert!(c.insert(4));
        assert!(!c.insert(1), "below the floor");
        assert!(!c.insert(4), "inside a run");
        assert_eq!(covered(&c, 5), vec![1, 4]);
    }

    #[test]
    fn raising_the_floor_absorbs_runs_it_reaches() {
        let mut c = Coverage::default();
        for s in [5, 6, 9, 20] {
            c.insert(s);
        }
        assert!(c.raise_floor(4));
        assert_eq!((c.floor(), c.runs()), (6, 2));
        assert!(!c.raise_floor(3), "never lowers");
        assert!(c.raise_floor(10));
        assert_eq!((c.floor(), c.runs()), (10, 1));
        assert!(!c.insert(9));
        assert!(c.insert(11));
        assert_eq!(c.floor(), 11);
    }

    #[test]
    fn gaps_are_what_raising_the_floor_would_cover_unapplied() {
        let mut c = Coverage::with_floor(2);
        for s in [4, 5, 9] {
            c.insert(s);
        }
        assert_eq!(c.gaps_up_to(2), vec![]);
        assert_eq!(c.gaps_up_to(4), vec![(3, 3)]);
        assert_eq!(c.gaps_up_to(12), vec![(3, 3), (6, 8), (10, 12)]);
        assert_eq!(c.gaps_up_to(9), vec![(3, 3), (6, 8)]);
    }

    #[test]
    fn every_permutation_of_a_window_ends_at_the_same_floor() {
        // A fixed pseudo-random order over 1..=500, each sequence offered twice.
        let mut order: Vec<u64> = (1..=500).chain(1..=500).collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut c = Coverage::default();
        let accepted = order.iter().filter(|s| c.insert(**s)).count();
        assert_eq!(accepted, 500);
        assert_eq!((c.floor(), c.runs()), (500, 0));
    }

    #[test]
    fn stored_form_round_trips_and_refuses_overlaps() {
        let mut c = Coverage::with_floor(10);
        for s in [12, 13, 20] {
            c.insert(s);
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"floor":10,"runs":[[12,13],[20,20]]}"#);
        assert_eq!(serde_json::from_str::<Coverage>(&json).unwrap(), c);
        let bad = r#"{"floor":10,"runs":[[11,13]]}"#;
        let err = serde_json::from_str::<Coverage>(bad).unwrap_err();
        assert!(err.to_string().contains("run [11, 13]"), "{err}");
    }
}
