//! The claim protocol: the index proposes the nearest free driver, the claims
//! bucket decides.
//!
//! A pickup outside its city's service area is answered unmatched
//! (`outside_service_area`) before any driver is looked at, and that answer is
//! remembered like any other.
//!
//! For a request: reserve the nearest free driver locally (so concurrent requests
//! of this process pick different drivers), write `ride.<id>` = pending with that
//! driver, create `driver.<id>` = the ride (the arbiter), then write
//! `ride.<id>` = matched. A driver another ride holds is marked so and the next
//! nearest is tried. Each ride write expects the revision last seen, so a second
//! delivery of the same request handled at the same time loses the race, reads
//! what the winner wrote and answers the same. A redelivery that finds a pending
//! record whose driver key holds the ride finishes that match: a crash between
//! the two writes loses nothing and leaks no driver.
//!
//! Every claim expires after `--claim-ttl`, so a driver nothing releases (a ride
//! that never completes, a request dead-lettered after its claim, a release that
//! failed) is offered again within that bound. A redelivery that finds a match
//! whose claim lapsed claims the driver again before it repeats the match; if
//! another ride has the driver by then, it matches afresh only a ride whose match
//! RIDES never stored ([`crate::stored_answer`]), and otherwise publishes nothing.
//!
//! A completion deletes the driver key if it still holds the ride, then purges the
//! ride record, leaving a marker by which a late redelivery is recognised.
//! A cancellation ([`cancel`]) releases the driver the same way, or, before any
//! answer, records the ride unmatched (`cancelled`) so it never gets one.

mod cancel;

use std::sync::{Arc, Mutex};

use hail_events::{
    DriverId, Event as _, RideCompleted, RideId, RideMatched, RideRequested, UnmatchedReason,
};

use crate::{
    claims::{Claims, ClaimsError, DriverClaim, RideEntry},
    config::Policy,
    index::{DriverIndex, Settlement},
    lock,
    nearest::Slot,
    record::{Pickup, RideRecord},
    service_area::ServiceAreas,
    stored_answer::{Stored, stored_match},
};

pub use cancel::Cancellation;

/// Rounds of "conflict, re-read, go on" before a request is retried later.
const ROUNDS: usize = 4;

/// The answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A driver holds the ride; `replay` when an earlier delivery decided it.
    Matched { pickup: Pickup, replay: bool },
    /// No driver; `replay` when an earlier delivery decided it.
    Unmatched {
        reason: UnmatchedReason,
        at_ms: u64,
        replay: bool,
    },
    /// The ride completed long ago: its answer was published then.
    Finished,
    /// The ride was matched (its match may be stored), but its claim on the driver
    /// lapsed and another ride holds the driver now: no answer is published.
    Lapsed { driver: DriverId },
}

/// The answer, and how many drivers were lost to other rides on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub answer: Answer,
    pub claims_lost: u32,
}

/// What a completion did.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The driver was released (it may already have been, by a crashed delivery).
    Released { driver: DriverId },
    /// The ride was answered unmatched; nothing to release.
    NothingHeld,
    /// An earlier delivery of this completion released the driver.
    AlreadyReleased,
    /// The bucket knows nothing of the ride (yet).
    Unknown,
}

/// Matches requests and releases completed and cancelled rides.
pub struct Matcher {
    index: Arc<Mutex<DriverIndex>>,
    claims: Claims,
    policy: Policy,
    areas: ServiceAreas,
}

impl Matcher {
    /// A matcher over `index`, claiming in `claims`, serving pickups in `areas`.
    pub fn new(
        index: Arc<Mutex<DriverIndex>>,
        claims: Claims,
        policy: Policy,
        areas: ServiceAreas,
    ) -> Self {
        Self {
            index,
            claims,
            policy,
            areas,
        }
    }

    /// Answers a request: the same answer however often it is delivered.
    pub async fn request(&self, req: &RideRequested, now_ms: u64) -> Result<Decided, ClaimsError> {
        let mut expected = 0;
        let mut lost = 0;
        for _ in 0..ROUNDS {
            match self.search(req, expected, now_ms, &mut lost).await {
                Err(ClaimsError::Conflict { .. }) => {}
                other => return other.map(|answer| decided(answer, lost)),
            }
            match self.resume(req).await {
                Ok(Resume::Answer(answer)) => return Ok(decided(answer, lost)),
                Ok(Resume::Search { revision }) => expected = revision,
                Err(ClaimsError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(ClaimsError::Conflict {
            key: crate::claims::ride_key(&req.ride_id),
            expected,
        })
    }

    /// Releases the driver of a completed ride.
    pub async fn complete(&self, done: &RideCompleted) -> Result<Completion, ClaimsError> {
        let (pickup, revision) = match self.claims.ride(&done.ride_id).await? {
            RideEntry::Absent => return Ok(Completion::Unknown),
            RideEntry::Finished => return Ok(Completion::AlreadyReleased),
            RideEntry::Record { record, revision } => match record {
                RideRecord::Unmatched { .. } => return Ok(Completion::NothingHeld),
                RideRecord::Pending(p) | RideRecord::Matched(p) => (p, revision),
            },
        };
        if pickup.driver_id != done.driver_id {
            tracing::warn!(
                ride = %done.ride_id,
                completed_by = %done.driver_id,
                matched = %pickup.driver_id,
                "completion names another driver than the match; releasing the matched one"
            );
        }
        self.release_if_held_by(&pickup.driver_id, &done.ride_id)
            .await?;
        self.claims.finish_ride(&done.ride_id, revision).await?;
        Ok(Completion::Released {
            driver: pickup.driver_id,
        })
    }

    /// Tries the nearest free drivers in turn; the ride key is at `expected`.
    async fn search(
        &self,
        req: &RideRequested,
        mut expected: u64,
        now_ms: u64,
        lost: &mut u32,
    ) -> Result<Answer, ClaimsError> {
        if !self.areas.admits(&req.city, req.pickup) {
            let reason = UnmatchedReason::OutsideServiceArea;
            return self.unmatched(req, reason, expected, now_ms).await;
        }
        for _ in 0..self.policy.max_claim_attempts {
            let taken = lock(&self.index).take_nearest(req.pickup, self.policy.radius_m);
            let candidate = match taken {
                Ok(c) => c,
                Err(reason) => {
                    // A driver lost to another ride was in range, even if it has
                    // moved out of it since.
                    let reason = if *lost > 0 {
                        UnmatchedReason::AllNearbyClaimed
                    } else {
                        reason
                    };
                    return self.unmatched(req, reason, expected, now_ms).await;
                }
            };
            let reservation = Reservation::new(&self.index, candidate.slot);
            let released_at = candidate.released_at;
            let pickup = Pickup {
                eta_s: self.policy.speed.eta_s(candidate.distance_m),
                driver_id: candidate.driver,
                distance_m: candidate.distance_m,
                matched_at_ms: now_ms,
            };
            let pending = RideRecord::Pending(pickup.clone());
            expected = self
                .claims
                .write_ride(&req.ride_id, &pending, expected)
                .await?;
            match self.claim(&pickup.driver_id, req, released_at).await? {
                Some(revision) => {
                    reservation.settle(Settlement::Claimed { revision });
                    return self.commit(req, pickup, expected, revision).await;
                }
                None => {
                    reservation.settle(Settlement::HeldByAnother);
                    *lost += 1;
                }
            }
        }
        self.unmatched(req, UnmatchedReason::AllNearbyClaimed, expected, now_ms)
            .await
    }

    /// Claims `driver` for the request's ride: the revision of its claim, or `None`
    /// when another ride holds it. A claim this ride already holds (made by an
    /// earlier delivery) counts as won. `released_at`: the driver's last release
    /// as the index has it, or 0 ([`Claims::claim_driver`]).
    async fn claim(
        &self,
        driver: &DriverId,
        req: &RideRequested,
        released_at: u64,
    ) -> Result<Option<u64>, ClaimsError> {
        match self
            .claims
            .claim_driver(driver, &req.ride_id, released_at)
            .await?
        {
            DriverClaim::Won { revision } => Ok(Some(revision)),
            DriverClaim::Taken => Ok(self
                .claims
                .holder(driver)
                .await?
                .filter(|(ride, _)| ride == req.ride_id.as_str())
                .map(|(_, revision)| revision)),
        }
    }

    /// Turns a pending record at `expected` into a match. If another delivery of the
    /// request changed the record meanwhile, the driver is given back unless that
    /// delivery settled on the same driver.
    async fn commit(
        &self,
        req: &RideRequested,
        pickup: Pickup,
        expected: u64,
        held_at: u64,
    ) -> Result<Answer, ClaimsError> {
        let matched = RideRecord::Matched(pickup.clone());
        match self
            .claims
            .write_ride(&req.ride_id, &matched, expected)
            .await
        {
            Ok(_) => Ok(Answer::Matched {
                pickup,
                replay: false,
            }),
            Err(conflict @ ClaimsError::Conflict { .. }) => {
                if !self.same_driver_recorded(req, &pickup.driver_id).await? {
                    self.release(&pickup.driver_id, held_at).await?;
                }
                Err(conflict)
            }
            Err(e) => Err(e),
        }
    }

    async fn same_driver_recorded(
        &self,
        req: &RideRequested,
        driver: &DriverId,
    ) -> Result<bool, ClaimsError> {
        Ok(match self.claims.ride(&req.ride_id).await? {
            RideEntry::Record {
                record: RideRecord::Matched(p) | RideRecord::Pending(p),
                ..
            } => &p.driver_id == driver,
            _ => false,
        })
    }

    /// Reads what another delivery of the request left: an answer, or where to go on.
    async fn resume(&self, req: &RideRequested) -> Result<Resume, ClaimsError> {
        let (record, revision) = match self.claims.ride(&req.ride_id).await? {
            RideEntry::Absent => return Ok(Resume::Search { revision: 0 }),
            RideEntry::Finished => return Ok(Resume::Answer(Answer::Finished)),
            RideEntry::Record { record, revision } => (record, revision),
        };
        let pickup = match record {
            RideRecord::Matched(pickup) => return self.rematch(req, pickup, revision).await,
            RideRecord::Unmatched { reason, at_ms } => {
                return Ok(Resume::Answer(Answer::Unmatched {
                    reason,
                    at_ms,
                    replay: true,
                }));
            }
            RideRecord::Pending(pickup) => pickup,
        };
        match self.claims.holder(&pickup.driver_id).await? {
            Some((ride, held_at)) if ride == req.ride_id.as_str() => {
                lock(&self.index).apply_claim(&pickup.driver_id, true, held_at);
                let answer = self.commit(req, pickup, revision, held_at).await?;
                Ok(Resume::Answer(answer))
            }
            _ => Ok(Resume::Search { revision }),
        }
    }

    /// The answer again for a ride recorded matched (at `revision`), if its driver
    /// is still its own: a claim that lapsed (`--claim-ttl`: the ride never
    /// completed, or its answer was dead-lettered) is made again. If another ride
    /// has the driver by now, repeating the match would give one driver two rides:
    /// then a ride whose match RIDES never stored is matched afresh, and any other
    /// publishes nothing, since another driver would be a second, different answer.
    async fn rematch(
        &self,
        req: &RideRequested,
        pickup: Pickup,
        revision: u64,
    ) -> Result<Resume, ClaimsError> {
        let held = match self.claims.holder(&pickup.driver_id).await? {
            Some((ride, held_at)) if ride == req.ride_id.as_str() => Some(held_at),
            Some(_) => None,
            None => self.claim(&pickup.driver_id, req, 0).await?,
        };
        if let Some(held_at) = held {
            lock(&self.index).apply_claim(&pickup.driver_id, true, held_at);
            return Ok(Resume::Answer(Answer::Matched {
                pickup,
                replay: true,
            }));
        }
        let subject = matched_event(req, pickup.clone()).subject();
        let ride = req.ride_id.as_str();
        let at = pickup.matched_at_ms;
        let stored = stored_match(self.claims.js(), &subject, ride, at).await?;
        Ok(match stored {
            Stored::No => Resume::Search { revision },
            Stored::Yes => Resume::Answer(Answer::Lapsed {
                driver: pickup.driver_id,
            }),
        })
    }

    async fn unmatched(
        &self,
        req: &RideRequested,
        reason: UnmatchedReason,
        expected: u64,
        at_ms: u64,
    ) -> Result<Answer, ClaimsError> {
        let record = RideRecord::Unmatched { reason, at_ms };
        self.claims
            .write_ride(&req.ride_id, &record, expected)
            .await?;
        Ok(Answer::Unmatched {
            reason,
            at_ms,
            replay: false,
        })
    }

    /// Deletes the claim on `driver` made at `held_at`, and frees it locally at once.
    async fn release(&self, driver: &DriverId, held_at: u64) -> Result<(), ClaimsError> {
        let revision = self.claims.release_driver(driver, held_at).await?;
        lock(&self.index).apply_claim(driver, false, revision);
        Ok(())
    }

    /// Releases `driver` if its claim is still `ride`'s (a crashed delivery or
    /// another instance may already have released it, or given it to another ride).
    async fn release_if_held_by(
        &self,
        driver: &DriverId,
        ride: &RideId,
    ) -> Result<(), ClaimsError> {
        let holder = self.claims.holder(driver).await?;
        if let Some((_, held_at)) = holder.filter(|(r, _)| r == ride.as_str()) {
            self.release(driver, held_at).await?;
        }
        Ok(())
    }
}

enum Resume {
    Answer(Answer),
    Search { revision: u64 },
}

/// The `RideMatched` a match publishes: built from the record, so every delivery
/// of a request publishes the same bytes.
pub fn matched_event(req: &RideRequested, pickup: Pickup) -> RideMatched {
    RideMatched {
        ride_id: req.ride_id.clone(),
        city: req.city.clone(),
        driver_id: pickup.driver_id,
        pickup_distance_m: pickup.distance_m,
        eta_s: pickup.eta_s,
        requested_at_ms: req.requested_at_ms,
        matched_at_ms: pickup.matched_at_ms,
    }
}

fn decided(answer: Answer, claims_lost: u32) -> Decided {
    Decided {
        answer,
        claims_lost,
    }
}

/// A driver reserved in the index; given back (abandoned) if dropped unsettled,
/// whatever path the request takes out of the claim attempt.
struct Reservation<'a> {
    index: &'a Mutex<DriverIndex>,
    slot: Option<Slot>,
}

impl<'a> Reservation<'a> {
    fn new(index: &'a Mutex<DriverIndex>, slot: Slot) -> Self {
        Self {
            index,
            slot: Some(slot),
        }
    }

    fn settle(mut self, how: Settlement) {
        if let Some(slot) = self.slot.take() {
            lock(self.index).settle(slot, how);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            lock(self.index).settle(slot, Settlement::Abandoned);
        }
    }
}
