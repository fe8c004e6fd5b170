//! Every driver matching knows of, and R-trees of those it may offer.
//!
//! A driver is *free*, and offered to requests, when its last DRIVERS update says
//! available, no ride holds it in the claims bucket, and no request of this process
//! is claiming it right now (a reservation). An available driver that is held or
//! reserved is *busy*: never offered, but it tells a request that finds no free
//! driver that drivers were near and taken (`all_nearby_claimed`) rather than
//! absent (`no_driver_in_radius`). Any other driver is in neither tree.
//!
//! Claim state has two sources that may arrive in either order: this process's own
//! claims and releases, applied at once, and the claims bucket's feed, which also
//! brings other instances' claims. Each carries the bucket revision it reflects,
//! and an older revision never overwrites a newer one.

use std::collections::HashMap;

use hail_events::{City, DriverId, DriverLocationUpdated, DriverStatus, LatLng, UnmatchedReason};
use rstar::RTree;

use crate::{
    nearest::{Entry, Nearest, Slot, nearest_within},
    sphere::{UnitPoint, unit_point},
};

/// The drivers, their claim state, and the trees of free and busy ones.
#[derive(Default)]
pub struct DriverIndex {
    drivers: Vec<Driver>,
    slots: HashMap<DriverId, Slot>,
    cities: Vec<City>,
    city_slots: HashMap<City, usize>,
    free_per_city: Vec<usize>,
    free: RTree<Entry>,
    busy: RTree<Entry>,
    held: usize,
}

struct Driver {
    id: DriverId,
    seen: Option<Seen>,
    held: bool,
    claim_revision: u64,
    reserved: bool,
}

/// The last DRIVERS update of a driver, as the index needs it.
#[derive(Clone, Copy, PartialEq)]
struct Seen {
    city: usize,
    position: LatLng,
    point: UnitPoint,
    available: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Free,
    Busy,
    Nowhere,
}

impl Driver {
    fn place(&self) -> Place {
        match self.seen {
            Some(s) if s.available && (self.held || self.reserved) => Place::Busy,
            Some(s) if s.available => Place::Free,
            _ => Place::Nowhere,
        }
    }
}

/// The nearest free driver, reserved for one request until [`DriverIndex::settle`].
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its slot, to settle the reservation with.
    pub slot: Slot,
    /// The driver.
    pub driver: DriverId,
    /// Haversine distance to the pickup, in metres.
    pub distance_m: f64,
    /// The revision of the driver's last release as applied here (a free
    /// driver's last applied change is always a release), or 0: a claim
    /// expecting it is one write ([`crate::claims::Claims::claim_driver`]).
    pub released_at: u64,
}

/// How a reservation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// This process claimed the driver at this bucket revision.
    Claimed { revision: u64 },
    /// Another ride holds the driver.
    HeldByAnother,
    /// No claim was made (the attempt failed or was given up).
    Abandoned,
}

impl DriverIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a driver's latest position and status from DRIVERS.
    pub fn apply_location(&mut self, update: &DriverLocationUpdated) {
        let seen = Seen {
            city: self.city_slot(&update.city),
            position: update.position,
            point: unit_point(update.position),
            available: update.status == DriverStatus::Available,
        };
        let slot = self.slot_of(&update.driver_id);
        self.update(slot, |d| d.seen = Some(seen));
    }

    /// Takes a driver's claim state at `revision` of the claims bucket (`held` when
    /// a ride holds it), unless a later revision is already known.
    pub fn apply_claim(&mut self, driver: &DriverId, held: bool, revision: u64) {
        let slot = self.slot_of(driver);
        self.update(slot, |d| {
            if revision > d.claim_revision {
                d.held = held;
                d.claim_revision = revision;
            }
        });
    }

    /// Reserves the free driver nearest to `at` within `radius_m`, or says why none.
    pub fn take_nearest(
        &mut self,
        at: LatLng,
        radius_m: f64,
    ) -> Result<Candidate, UnmatchedReason> {
        let Some(nearest) = self.nearest_free(at, radius_m) else {
            return Err(match self.nearest_busy(at, radius_m) {
                Some(_) => UnmatchedReason::AllNearbyClaimed,
                None => UnmatchedReason::NoDriverInRadius,
            });
        };
        let mut released_at = 0;
        self.update(nearest.slot, |d| {
            d.reserved = true;
            // Free, so not held: its last applied change was a release (a
            // claim of its own or the feed's would have made it held).
            if !d.held {
                released_at = d.claim_revision;
            }
        });
        Ok(Candidate {
            slot: nearest.slot,
            driver: self.driver_id(nearest.slot).clone(),
            distance_m: nearest.distance_m,
            released_at,
        })
    }

    /// Ends the reservation of [`DriverIndex::take_nearest`].
    pub fn settle(&mut self, slot: Slot, how: Settlement) {
        self.update(slot, |d| {
            d.reserved = false;
            match how {
                Settlement::Claimed { revision } if revision > d.claim_revision => {
                    d.held = true;
                    d.claim_revision = revision;
                }
                // The bucket's current value is newer than anything applied so far,
                // so the revision is left for the feed to bring.
                Settlement::HeldByAnother => d.held = true,
                _ => {}
            }
        });
    }

    /// The free driver nearest to `at` within `radius_m`, without reserving it.
    pub fn nearest_free(&self, at: LatLng, radius_m: f64) -> Option<Nearest> {
        nearest_within(&self.free, at, radius_m, |s| self.locate(s))
    }

    fn nearest_busy(&self, at: LatLng, radius_m: f64) -> Option<Nearest> {
        nearest_within(&self.busy, at, radius_m, |s| self.locate(s))
    }

    /// The driver in `slot`.
    pub fn driver_id(&self, slot: Slot) -> &DriverId {
        &self.drivers[slot.index()].id
    }

    /// Free drivers, per city of their last update.
    pub fn free_by_city(&self) -> impl Iterator<Item = (&City, usize)> {
        self.cities.iter().zip(self.free_per_city.iter().copied())
    }

    /// Free drivers in all cities.
    pub fn free_count(&self) -> usize {
        self.free.size()
    }

    /// Drivers a ride holds in the claims bucket, whatever their status.
    pub fn held_count(&self) -> usize {
        self.held
    }

    fn locate(&self, slot: Slot) -> (&LatLng, &DriverId) {
        let d = &self.drivers[slot.index()];
        let seen = d.seen.as_ref().expect("a driver in a tree has a position");
        (&seen.position, &d.id)
    }

    fn slot_of(&mut self, driver: &DriverId) -> Slot {
        if let Some(slot) = self.slots.get(driver) {
            return *slot;
        }
        let slot = Slot(u32::try_from(self.drivers.len()).expect("fewer than 2^32 drivers"));
        self.drivers.push(Driver {
            id: driver.clone(),
            seen: None,
            held: false,
            claim_revision: 0,
            reserved: false,
        });
        self.slots.insert(driver.clone(), slot);
        slot
    }

    fn city_slot(&mut self, city: &City) -> usize {
        if let Some(i) = self.city_slots.get(city) {
            return *i;
        }
        self.cities.push(city.clone());
        self.free_per_city.push(0);
        self.city_slots.insert(city.clone(), self.cities.len() - 1);
        self.cities.len() - 1
    }

    /// Applies `change` to a driver and moves it between the trees to match.
    fn update(&mut self, slot: Slot, change: impl FnOnce(&mut Driver)) {
        let d = &mut self.drivers[slot.index()];
        let before = (d.place(), d.seen, d.held);
        change(d);
        let after = (d.place(), d.seen, d.held);
        self.held = self.held + usize::from(after.2) - usize::from(before.2);
        if (before.0, before.1) == (after.0, after.1) {
            return;
        }
        self.leave(slot, before.0, before.1);
        self.enter(slot, after.0, after.1);
    }

    fn leave(&mut self, slot: Slot, place: Place, seen: Option<Seen>) {
        let Some(seen) = seen else { return };
        let entry = Entry::new(seen.point, slot);
        match place {
            Place::Free => {
                self.free.remove(&entry);
                self.free_per_city[seen.city] -= 1;
            }
            Place::Busy => {
                self.busy.remove(&entry);
            }
            Place::Nowhere => {}
        }
    }

    fn enter(&mut self, slot: Slot, place: Place, seen: Option<Seen>) {
        let Some(seen) = seen else { return };
        let entry = Entry::new(seen.point, slot);
        match place {
            Place::Free => {
                self.free.insert(entry);
                self.free_per_city[seen.city] += 1;
            }
            Place::Busy => self.busy.insert(entry),
            Place::Nowhere => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RADIUS_M: f64 = 3_000.0;

    fn at(lat: f64, lon: f64) -> LatLng {
        LatLng::new(lat, lon).unwrap()
    }

    fn id(s: &str) -> DriverId {
        DriverId::new(s).unwrap()
    }

    fn seen(index: &mut DriverIndex, driver: &str, p: LatLng, status: DriverStatus) {
        index.apply_location(&DriverLocationUpdated {
            driver_id: id(driver),
            city: City::new("berlin").unwrap(),
            position: p,
            status,
            at_ms: 0,
        });
    }

    /// Two available drivers north of the pickup, `near` about 111 m, `far` 1.1 km.
    fn two_drivers() -> (DriverIndex, LatLng) {
        let mut index = DriverIndex::new();
        seen(
            &mut index,
            "near",
            at(52.501, 13.4),
            DriverStatus::Available,
        );
        seen(&mut index, "far", at(52.51, 13.4), DriverStatus::Available);
        (index, at(52.5, 13.4))
    }

    fn take(index: &mut DriverIndex, p: LatLng) -> Result<String, UnmatchedReason> {
        index
            .take_nearest(p, RADIUS_M)
            .map(|c| c.driver.as_str().to_string())
    }

    #[test]
    fn reservations_hand_out_the_next_nearest_and_abandoned_ones_return() {
        let (mut index, pickup) = two_drivers();
        let first = index.take_nearest(pickup, RADIUS_M).unwrap();
        assert_eq!(first.driver.as_str(), "near");
        assert!(
            (first.distance_m - 111.2).abs() < 1.0,
            "{}",
            first.distance_m
        );
        assert_eq!(take(&mut index, pickup), Ok("far".into()));
        assert_eq!(
            take(&mut index, pickup),
            Err(UnmatchedReason::AllNearbyClaimed)
        );
        index.settle(first.slot, Settlement::Abandoned);
        assert_eq!(take(&mut index, pickup), Ok("near".into()));
    }

    #[test]
    fn claimed_drivers_stay_out_until_released() {
        let (mut index, pickup) = two_drivers();
        let c = index.take_nearest(pickup, RADIUS_M).unwrap();
        index.settle(c.slot, Settlement::Claimed { revision: 7 });
        assert_eq!(index.held_count(), 1);
        assert_eq!(index.free_count(), 1);
        // The feed brings the claim's own revision late: nothing changes.
        index.apply_claim(&id("near"), true, 7);
        // An older release (an earlier ride's) must not free the driver.
        index.apply_claim(&id("near"), false, 3);
        assert_eq!(take(&mut index, pickup), Ok("far".into()));
        index.apply_claim(&id("near"), false, 9);
        assert_eq!(index.held_count(), 0);
        assert_eq!(take(&mut index, pickup), Ok("near".into()));
    }

    #[test]
    fn a_driver_held_by_another_ride_is_not_offered() {
        let (mut index, pickup) = two_drivers();
        let c = index.take_nearest(pickup, RADIUS_M).unwrap();
        index.settle(c.slot, Settlement::HeldByAnother);
        assert_eq!(take(&mut index, pickup), Ok("far".into()));
        index.apply_claim(&id("near"), false, 12);
        assert_eq!(take(&mut index, pickup), Ok("near".into()));
    }

    #[test]
    fn status_and_moves_follow_drivers() {
        let (mut index, pickup) = two_drivers();
        seen(&mut index, "near", at(52.501, 13.4), DriverStatus::OnTrip);
        assert_eq!(index.free_count(), 1);
        // Far moves right next to the pickup; near comes back further away.
        seen(
            &mut index,
            "far",
            at(52.5001, 13.4),
            DriverStatus::Available,
        );
        seen(&mut index, "near", at(52.52, 13.4), DriverStatus::Available);
        assert_eq!(take(&mut index, pickup), Ok("far".into()));
        assert_eq!(take(&mut index, pickup), Ok("near".into()));
        seen(&mut index, "far", at(52.5001, 13.4), DriverStatus::Offline);
        assert_eq!(index.free_count(), 0);
    }

    #[test]
    fn reasons_tell_taken_from_absent() {
        let mut index = DriverIndex::new();
        let pickup = at(52.5, 13.4);
        assert_eq!(
            take(&mut index, pickup),
            Err(UnmatchedReason::NoDriverInRadius)
        );
        // 5.6 km away: outside the radius, taken or not.
        seen(&mut index, "out", at(52.55, 13.4), DriverStatus::Available);
        assert_eq!(
            take(&mut index, pickup),
            Err(UnmatchedReason::NoDriverInRadius)
        );
        seen(&mut index, "in", at(52.51, 13.4), DriverStatus::Available);
        index.apply_claim(&id("in"), true, 1);
        assert_eq!(
            take(&mut index, pickup),
            Err(UnmatchedReason::AllNearbyClaimed)
        );
    }

    #[test]
    fn a_claim_known_before_the_position_keeps_the_driver_busy() {
        let mut index = DriverIndex::new();
        index.apply_claim(&id("d"), true, 4);
        seen(&mut index, "d", at(52.5, 13.4), DriverStatus::Available);
        assert_eq!(index.free_count(), 0);
        assert_eq!(index.held_count(), 1);
        let berlin: Vec<_> = index.free_by_city().map(|(c, n)| (c.as_str(), n)).collect();
        assert_eq!(berlin, [("berlin", 0)]);
        index.apply_claim(&id("d"), false, 5);
        let berlin: Vec<_> = index.free_by_city().map(|(c, n)| (c.as_str(), n)).collect();
        assert_eq!(berlin, [("berlin", 1)]);
    }
}
