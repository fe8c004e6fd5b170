//! A rider's cancellation: the ride gives its driver back and never gets another.
//!
//! What happens depends on what the claims bucket holds for the ride:
//! - nothing yet (the cancellation overtook its request): `ride.<id>` is written
//!   unmatched with reason `cancelled`, so the request, whenever it comes, is
//!   answered with that stored answer and takes no driver;
//! - a pending claim (a request is being decided): the driver key is deleted if
//!   it holds the ride, then the record becomes unmatched `cancelled`; the request
//!   in flight loses its commit, gives its driver back and answers that;
//! - a match: the driver key is deleted if it holds the ride and the record is
//!   purged as a completion purges it: the match was published, and a late
//!   redelivery of the request publishes nothing more;
//! - an unmatched answer or a finished ride: nothing to do.
//!
//! The driver key goes before the record, so a crash in between leaves a
//! record a redelivered cancellation acts on again, never a leaked driver.

use hail_events::{DriverId, RideCancelled, UnmatchedReason};

use super::Matcher;
use crate::{
    claims::{ClaimsError, RideEntry},
    record::{Pickup, RideRecord},
};

/// What a cancellation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancellation {
    /// The ride had no answer yet; it is now answered unmatched (`cancelled`).
    BeforeAnswer,
    /// The ride's driver was released (it may already have been, by a crashed
    /// delivery or the request in flight).
    Released { driver: DriverId },
    /// The ride was answered unmatched: nothing to release, the answer stands.
    NothingHeld,
    /// The ride was finished (completed, or cancelled by an earlier delivery).
    AlreadyFinished,
}

impl Cancellation {
    /// The outcome label of its metric.
    pub fn as_str(&self) -> &'static str {
        match self {
            Cancellation::BeforeAnswer => "before_answer",
            Cancellation::Released { .. } => "released",
            Cancellation::NothingHeld => "nothing_held",
            Cancellation::AlreadyFinished => "already_finished",
        }
    }
}

/// What to do for a cancellation, given what the bucket holds for its ride.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Write the cancelled answer, the key being at `expected` (0: never written).
    Record { expected: u64 },
    /// Release the driver, then write the cancelled answer over the pending claim.
    ReleasePending { pickup: Pickup, revision: u64 },
    /// Release the driver, then purge the matched record.
    ReleaseMatched { pickup: Pickup, revision: u64 },
    /// Nothing to change.
    Done(Cancellation),
}

/// The plan for a ride whose bucket entry is `entry`.
pub(crate) fn plan(entry: RideEntry) -> Plan {
    match entry {
        RideEntry::Absent => Plan::Record { expected: 0 },
        RideEntry::Finished => Plan::Done(Cancellation::AlreadyFinished),
        RideEntry::Record { record, revision } => match record {
            RideRecord::Unmatched { .. } => Plan::Done(Cancellation::NothingHeld),
            RideRecord::Pending(pickup) => Plan::ReleasePending { pickup, revision },
            RideRecord::Matched(pickup) => Plan::ReleaseMatched { pickup, revision },
        },
    }
}

/// The record that answers a cancelled ride's request.
fn cancelled_answer(at_ms: u64) -> RideRecord {
    RideRecord::Unmatched {
        reason: UnmatchedReason::Cancelled,
        at_ms,
    }
}

impl Matcher {
    /// Releases a cancelled ride's driver and keeps the ride from getting another.
    /// A conflict means a delivery of its request is deciding it: retry later.
    pub async fn cancel(
        &self,
        cancel: &RideCancelled,
        now_ms: u64,
    ) -> Result<Cancellation, ClaimsError> {
        let ride = &cancel.ride_id;
        match plan(self.claims.ride(ride).await?) {
            Plan::Done(done) => Ok(done),
            Plan::Record { expected } => {
                let answer = cancelled_answer(now_ms);
                self.claims.write_ride(ride, &answer, expected).await?;
                Ok(Cancellation::BeforeAnswer)
            }
            Plan::ReleasePending { pickup, revision } => {
                self.release_if_held_by(&pickup.driver_id, ride).await?;
                let answer = cancelled_answer(now_ms);
                self.claims.write_ride(ride, &answer, revision).await?;
                Ok(Cancellation::Released {
                    driver: pickup.driver_id,
                })
            }
            Plan::ReleaseMatched { pickup, revision } => {
                self.release_if_held_by(&pickup.driver_id, ride).await?;
                self.claims.finish_ride(ride, revision).await?;
                Ok(Cancellation::Released {
                    driver: pickup.driver_id,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pickup() -> Pickup {
        Pickup {
            driver_id: DriverId::new("d-1").unwrap(),
            distance_m: 120.0,
            eta_s: 30,
            matched_at_ms: 5,
        }
    }

    fn record(record: RideRecord) -> RideEntry {
        RideEntry::Record {
            record,
            revision: 7,
        }
    }

    #[test]
    fn an_unknown_ride_is_recorded_cancelled_before_its_request() {
        assert_eq!(plan(RideEntry::Absent), Plan::Record { expected: 0 });
        assert_eq!(
            cancelled_answer(9),
            RideRecord::Unmatched {
                reason: UnmatchedReason::Cancelled,
                at_ms: 9
            }
        );
    }

    #[test]
    fn a_ride_holding_a_driver_releases_it() {
        assert_eq!(
            plan(record(RideRecord::Pending(pickup()))),
            Plan::ReleasePending {
                pickup: pickup(),
                revision: 7
            }
        );
        assert_eq!(
            plan(record(RideRecord::Matched(pickup()))),
            Plan::ReleaseMatched {
                pickup: pickup(),
                revision: 7
            }
        );
    }

    #[test]
    fn answered_unmatched_or_finished_rides_are_left_alone() {
        for reason in [
            UnmatchedReason::NoDriverInRadius,
            UnmatchedReason::Cancelled,
        ] {
            let unmatched = RideRecord::Unmatched { reason, at_ms: 3 };
            assert_eq!(
                plan(record(unmatched)),
                Plan::Done(Cancellation::NothingHeld)
            );
        }
        assert_eq!(
            plan(RideEntry::Finished),
            Plan::Done(Cancellation::AlreadyFinished)
        );
    }

    #[test]
    fn outcomes_have_metric_labels() {
        let driver = DriverId::new("d-1").unwrap();
        let labels = [
            Cancellation::BeforeAnswer,
            Cancellation::Released { driver },
            Cancellation::NothingHeld,
            Cancellation::AlreadyFinished,
        ]
        .map(|c| c.as_str());
        assert_eq!(
            labels,
            [
                "before_answer",
                "released",
                "nothing_held",
                "already_finished"
            ]
        );
    }
}
