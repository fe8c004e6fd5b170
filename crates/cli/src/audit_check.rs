//! The audit's arithmetic, pure: for one service, every published request is
//! accounted for exactly once — as an effect, a dead letter, or still pending.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// What was read for one service. Requests are identified by their stream sequence.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Every request in RIDES: stream sequence → ride id (None when it has none).
    pub requests: HashMap<u64, Option<String>>,
    /// The ride id of every output the service published (with repeats, if any).
    pub output_rides: Vec<String>,
    /// Instead of outputs, a count of effects (analytics' counted requests).
    pub counted: Option<u64>,
    /// Stream sequences of the requests the service dead-lettered (with repeats, if any).
    pub dead_lettered: Vec<u64>,
    /// The service's ack floor: requests above it may still be pending.
    pub ack_floor: u64,
    /// The service's consumer has nothing pending or unacknowledged.
    pub idle: bool,
    /// Dead-lettered requests replayed for this service (`hail dlq replay`): an
    /// effect for one of them is its recovery, not a duplicate.
    pub replayed: HashSet<u64>,
}

/// The verdict for one service.
#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    pub service: String,
    pub published: u64,
    pub effects: u64,
    pub dead_lettered: u64,
    pub pending: u64,
    pub duplicates: u64,
    pub unaccounted: u64,
    /// A few of the unaccounted or duplicated rides, to start looking.
    pub examples: Vec<String>,
    pub holds: bool,
}

/// Checks `published = effects + dead-lettered + pending` with no duplicates.
pub fn check(service: &str, inp: &Inputs) -> Report {
    let seq_of: HashMap<&str, u64> = inp
        .requests
        .iter()
        .filter_map(|(s, r)| r.as_deref().map(|r| (r, *s)))
        .collect();
    let mut effect_seqs = HashSet::new();
    let mut duplicates = 0u64;
    let mut examples = Vec::new();
    for ride in &inp.output_rides {
        match seq_of.get(ride.as_str()) {
            Some(seq) if effect_seqs.insert(*seq) => {}
            Some(_) => {
                duplicates += 1;
                examples.push(format!("duplicate output for ride {ride}"));
            }
            None => examples.push(format!("output for unknown ride {ride}")),
        }
    }
    let mut dead = HashSet::new();
    for seq in &inp.dead_lettered {
        // A replayed request may be dead-lettered again, and its replay may succeed:
        // neither is a duplicate.
        let replayed = inp.replayed.contains(seq);
        if (!dead.insert(*seq) || effect_seqs.contains(seq)) && !replayed {
            duplicates += 1;
            examples.push(format!(
                "request {seq} dead-lettered twice or also processed"
            ));
        }
    }
    // A replay that produced its effect recovered the dead letter.
    dead.retain(|seq| !(inp.replayed.contains(seq) && effect_seqs.contains(seq)));
    let mut pending = 0u64;
    let mut unaccounted = 0u64;
    for seq in inp.requests.keys() {
        if effect_seqs.contains(seq) || dead.contains(seq) {
            continue;
        }
        if *seq > inp.ack_floor || inp.counted.is_some() {
            pending += 1;
        } else {
            unaccounted += 1;
            examples.push(format!("request {seq} acknowledged but has no effect"));
        }
    }
    let published = inp.requests.len() as u64;
    let dead_lettered = dead.len() as u64;
    let effects = match inp.counted {
        Some(counted) => {
            // Only a count: what is neither counted nor dead-lettered is pending.
            pending = published.saturating_sub(counted + dead_lettered);
            if inp.idle && pending > 0 {
                unaccounted += pending;
                examples.push(format!(
                    "{pending} requests neither counted nor dead-lettered, and nothing pending"
                ));
                pending = 0;
            }
            if counted + dead_lettered > published {
                duplicates += counted + dead_lettered - published;
                examples.push(format!("counted {counted} + dead-lettered {dead_lettered} exceed the {published} published"));
            }
            counted
        }
        None => effect_seqs.len() as u64,
    };
    examples.truncate(5);
    Report {
        service: service.to_string(),
        published,
        effects,
        dead_lettered,
        pending,
        duplicates,
        unaccounted,
        holds: duplicates == 0
            && unaccounted == 0
            && published == effects + dead_lettered + pending,
        examples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(n: u64) -> HashMap<u64, Option<String>> {
        (1..=n).map(|s| (s, Some(format!("r{s}")))).collect()
    }

    #[test]
    fn every_request_accounted_once_holds() {
        let inp = Inputs {
            requests: requests(5),
            output_rides: vec!["r1".into(), "r2".into(), "r3".into()],
            dead_lettered: vec![4],
            ack_floor: 4,
            ..Default::default()
        };
        let r = check("pricing", &inp);
        assert_eq!(
            (r.published, r.effects, r.dead_lettered, r.pending),
            (5, 3, 1, 1)
        );
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn a_duplicate_output_or_a_lost_request_fails() {
        let dup = Inputs {
            requests: requests(2),
            output_rides: vec!["r1".into(), "r1".into(), "r2".into()],
            ack_floor: 2,
            ..Default::default()
        };
        let r = check("fraud", &dup);
        assert_eq!(r.duplicates, 1);
        assert!(!r.holds);
        let lost = Inputs {
            requests: requests(2),
            output_rides: vec!["r1".into()],
            ack_floor: 2,
            ..Default::default()
        };
        let r = check("fraud", &lost);
        assert_eq!(r.unaccounted, 1);
        assert!(!r.holds);
    }

    #[test]
    fn a_replayed_dead_letter_is_recovered_by_its_effect() {
        let inp = Inputs {
            requests: requests(3),
            output_rides: vec!["r1".into(), "r2".into(), "r3".into()],
            dead_lettered: vec![3],
            replayed: HashSet::from([3]),
            ack_floor: 3,
            ..Default::default()
        };
        let r = check("fraud", &inp);
        assert_eq!((r.effects, r.dead_lettered, r.duplicates), (3, 0, 0));
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn a_replay_dead_lettered_again_is_still_one_dead_letter() {
        let inp = Inputs {
            requests: requests(2),
            output_rides: vec!["r1".into()],
            dead_lettered: vec![2, 2],
            replayed: HashSet::from([2]),
            ack_floor: 2,
            ..Default::default()
        };
        let r = check("pricing", &inp);
        assert_eq!(
            (r.effects, r.dead_lettered, r.pending, r.duplicates),
            (1, 1, 0, 0)
        );
        assert!(r.holds, "{r:?}");
    }

    #[test]
    fn counts_for_analytics() {
        let ok = Inputs {
            requests: requests(10),
            counted: Some(8),
            dead_lettered: vec![9],
            ..Default::default()
        };
        let r = check("analytics", &ok);
        assert_eq!((r.effects, r.dead_lettered, r.pending), (8, 1, 1));
        assert!(r.holds);
        let over = Inputs {
            requests: requests(10),
            counted: Some(10),
            dead_lettered: vec![9],
            ..Default::default()
        };
        assert!(!check("analytics", &over).holds);
        let lost = Inputs {
            requests: requests(10),
            counted: Some(8),
            dead_lettered: vec![9],
            idle: true,
            ..Default::default()
        };
        let r = check("analytics", &lost);
        assert_eq!(r.unaccounted, 1);
        assert!(!r.holds);
    }
}
