//! Rider, device and card history over event time, bounded in memory.
//!
//! Every request becomes a [`Sighting`]. The history keeps, per rider, the
//! requests with their pickups, and per device and per card, which riders used
//! them. Entries are ordered by `(requested_at_ms, ride)`, so a query "before this
//! request" gives the same answer whatever order the requests arrived in, and
//! inserting the same ride twice (a redelivery, or the replay at start meeting
//! the durable) changes nothing.
//!
//! Memory is bounded two ways: entries older than the horizon (the longest rule
//! window) behind the event-time watermark are evicted, and one key keeps at most
//! [`MAX_ENTRIES_PER_KEY`] entries (the oldest go first). Ids are kept as 64-bit
//! [`Key`]s, not strings.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher},
};

use hail_events::{LatLng, RideRequested};

/// Entries one rider, device or card keeps at most. Far above any rule's
/// threshold, so a rule still fires on a key that hits the cap.
pub const MAX_ENTRIES_PER_KEY: usize = 512;

/// A 64-bit digest of an id (SipHash with fixed keys: the same id gives the same
/// key in every process of one build, so ties in time order the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub u64);

impl Key {
    /// The key of an id.
    pub fn of(id: &str) -> Key {
        let mut h = DefaultHasher::new();
        id.hash(&mut h);
        Key(h.finish())
    }
}

/// Keys are digests already: the maps use them as their own hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// What the history needs of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    pub ride: Key,
    pub rider: Key,
    pub device: Key,
    pub card: Key,
    /// Event time: when the rider asked.
    pub at_ms: u64,
    pub pickup: LatLng,
    /// When the stream stored it; bounds how far one request can move the
    /// watermark, so a request stamped far in the future cannot evict everything.
    pub stored_ms: u64,
}

impl Sighting {
    /// The sighting of a request stored in the stream at `stored_ms`.
    pub fn of(req: &RideRequested, stored_ms: u64) -> Sighting {
        Sighting {
            ride: Key::of(req.ride_id.as_str()),
            rider: Key::of(req.rider_id.as_str()),
            device: Key::of(req.device_id.as_str()),
            card: Key::of(req.card.as_str()),
            at_ms: req.requested_at_ms,
            pickup: req.pickup,
            stored_ms,
        }
    }

    /// Its place in time order.
    pub fn order(&self) -> Order {
        (self.at_ms, self.ride)
    }
}

/// Time order of requests: event time, ties broken by ride key.
pub type Order = (u64, Key);

/// One request of a rider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visit {
    pub at_ms: u64,
    pub ride: Key,
    pub pickup: LatLng,
}

/// One use of a device or card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    pub at_ms: u64,
    pub ride: Key,
    pub rider: Key,
}

trait Timed {
    fn order(&self) -> Order;
}

impl Timed for Visit {
    fn order(&self) -> Order {
        (self.at_ms, self.ride)
    }
}

impl Timed for Use {
    fn order(&self) -> Order {
        (self.at_ms, self.ride)
    }
}

/// How long entries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The longest rule window: entries older than this behind the watermark go.
    pub horizon_ms: u64,
    /// How far ahead of its storage time a request's event time may move the watermark.
    pub max_skew_ms: u64,
}

/// Sizes, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sizes {
    pub riders: usize,
    pub devices: usize,
    pub cards: usize,
    pub entries: usize,
}

/// The history of riders, devices and cards.
#[derive(Debug)]
pub struct History {
    riders: KeyMap<Vec<Visit>>,
    devices: KeyMap<Vec<Use>>,
    cards: KeyMap<Vec<Use>>,
    retention: Retention,
    watermark_ms: u64,
    swept_at_ms: u64,
}

impl History {
    /// An empty history.
    pub fn new(retention: Retention) -> History {
        History {
            riders: KeyMap::default(),
            devices: KeyMap::default(),
            cards: KeyMap::default(),
            retention,
            watermark_ms: 0,
            swept_at_ms: 0,
        }
    }

    /// Records a request; false when that ride was already recorded.
    pub fn insert(&mut self, s: &Sighting) -> bool {
        self.advance(
            s.at_ms
                .min(s.stored_ms.saturating_add(self.retention.max_skew_ms)),
        );
        let cutoff = self.cutoff_ms();
        let visit = Visit {
            at_ms: s.at_ms,
            ride: s.ride,
            pickup: s.pickup,
        };
        if !insert_sorted(self.riders.entry(s.rider).or_default(), visit, cutoff) {
            return false;
        }
        let used = Use {
            at_ms: s.at_ms,
            ride: s.ride,
            rider: s.rider,
        };
        insert_sorted(self.devices.entry(s.device).or_default(), used, cutoff);
        insert_sorted(self.cards.entry(s.card).or_default(), used, cutoff);
        if self.watermark_ms.saturating_sub(self.swept_at_ms) >= self.sweep_every_ms() {
            self.sweep();
        }
        true
    }

    /// A rider's requests strictly before `order`.
    pub fn rider_before(&self, rider: Key, order: Order) -> &[Visit] {
        before(self.riders.get(&rider), order)
    }

    /// A device's uses strictly before `order`.
    pub fn device_before(&self, device: Key, order: Order) -> &[Use] {
        before(self.devices.get(&device), order)
    }

    /// A card's uses strictly before `order`.
    pub fn card_before(&self, card: Key, order: Order) -> &[Use] {
        before(self.cards.get(&card), order)
    }

    /// The event-time watermark.
    pub fn watermark_ms(&self) -> u64 {
        self.watermark_ms
    }

    /// How much is kept.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            riders: self.riders.len(),
            devices: self.devices.len(),
            cards: self.cards.len(),
            entries: self.riders.values().map(Vec::len).sum(),
        }
    }

    /// Drops every entry older than the horizon behind the watermark, and keys
    /// left with none.
    pub fn sweep(&mut self) {
        let cutoff = self.cutoff_ms();
        retain_recent(&mut self.riders, cutoff);
        retain_recent(&mut self.devices, cutoff);
        retain_recent(&mut self.cards, cutoff);
        self.swept_at_ms = self.watermark_ms;
    }

    fn advance(&mut self, candidate_ms: u64) {
        self.watermark_ms = self.watermark_ms.max(candidate_ms);
        if self.swept_at_ms == 0 {
            self.swept_at_ms = self.watermark_ms;
        }
    }

    fn cutoff_ms(&self) -> u64 {
        self.watermark_ms.saturating_sub(self.retention.horizon_ms)
    }

    /// Sweeping every tenth of the horizon keeps at most 1.1 horizons of quiet keys.
    fn sweep_every_ms(&self) -> u64 {
        (self.retention.horizon_ms / 10).max(1_000)
    }
}

fn before<T: Timed>(entries: Option<&Vec<T>>, order: Order) -> &[T] {
    match entries {
        Some(v) => &v[..v.partition_point(|e| e.order() < order)],
        None => &[],
    }
}

/// Inserts in time order unless present; trims what is older than `cutoff_ms`
/// and what is over the per-key cap.
fn insert_sorted<T: Timed>(v: &mut Vec<T>, e: T, cutoff_ms: u64) -> bool {
    let Err(at) = v.binary_search_by(|x| x.order().cmp(&e.order())) else {
        return false;
    };
    v.insert(at, e);
    let old = v.partition_point(|x| x.order().0 < cutoff_ms);
    let excess = v.len().saturating_sub(MAX_ENTRIES_PER_KEY);
    v.drain(..old.max(excess));
    true
}

fn retain_recent<T: Timed>(map: &mut KeyMap<Vec<T>>, cutoff_ms: u64) {
    map.retain(|_, v| {
        let old = v.partition_point(|x| x.order().0 < cutoff_ms);
        v.drain(..old);
        if v.capacity() > 2 * v.len() + 4 {
            v.shrink_to_fit();
        }
        !v.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn retention() -> Retention {
        Retention {
            horizon_ms: 60 * MIN,
            max_skew_ms: 5 * MIN,
        }
    }

    fn sighting(ride: &str, rider: &str, at_ms: u64) -> Sighting {
        Sighting {
            ride: Key::of(ride),
            rider: Key::of(rider),
            device: Key::of("dev"),
            card: Key::of("card"),
            at_ms,
            pickup: LatLng::new(52.5, 13.4).unwrap(),
            stored_ms: at_ms,
        }
    }

    #[test]
    fn the_same_ride_counts_once() {
        let mut h = History::new(retention());
        let s = sighting("r1", "alice", 1_000 * MIN);
        assert!(h.insert(&s));
        assert!(!h.insert(&s));
        let later = (s.at_ms + 1, Key(0));
        assert_eq!(h.rider_before(s.rider, later).len(), 1);
        assert_eq!(h.device_before(s.device, later).len(), 1);
        assert_eq!(h.card_before(s.card, later).len(), 1);
    }

    #[test]
    fn before_ignores_later_requests_and_itself() {
        let mut h = History::new(retention());
        let t = 1_000 * MIN;
        let (a, b, c) = (
            sighting("a", "alice", t),
            sighting("b", "alice", t + 1),
            sighting("c", "alice", t + 2),
        );
        // Arrival order does not matter.
        for s in [&c, &a, &b] {
            h.insert(s);
        }
        let seen: Vec<Key> = h
            .rider_before(b.rider, b.order())
            .iter()
            .map(|v| v.ride)
            .collect();
        assert_eq!(seen, vec![a.ride]);
    }

    #[test]
    fn evicts_beyond_the_horizon_of_the_watermark() {
        let mut h = History::new(retention());
        let t = 1_000 * MIN;
        h.insert(&sighting("old", "alice", t));
        h.insert(&sighting("quiet", "bob", t));
        h.insert(&sighting("new", "alice", t + 61 * MIN));
        let alice = h.rider_before(Key::of("alice"), (u64::MAX, Key(0)));
        assert_eq!(alice.len(), 1, "alice's old request is evicted on insert");
        assert_eq!(h.sizes().riders, 1, "bob's history is swept away");
        assert_eq!(h.sizes().devices, 1);
        assert_eq!(h.sizes().entries, 1);
    }

    #[test]
    fn a_future_timestamp_moves_the_watermark_only_by_the_skew() {
        let mut h = History::new(retention());
        let t = 1_000 * MIN;
        h.insert(&sighting("a", "alice", t));
        let mut bogus = sighting("b", "bob", t + 10_000 * MIN);
        bogus.stored_ms = t;
        h.insert(&bogus);
        assert_eq!(h.watermark_ms(), t + 5 * MIN);
        assert_eq!(h.sizes().riders, 2, "nothing evicted");
    }

    #[test]
    fn one_key_keeps_at_most_the_cap() {
        let mut h = History::new(retention());
        let t = 1_000 * MIN;
        for i in 0..MAX_ENTRIES_PER_KEY + 10 {
            h.insert(&sighting(&format!("r{i}"), "bot", t + i as u64));
        }
        let all = h.rider_before(Key::of("bot"), (u64::MAX, Key(0)));
        assert_eq!(all.len(), MAX_ENTRIES_PER_KEY);
        assert_eq!(all[0].at_ms, t + 10, "the oldest went first");
    }
}
