//! One city's totals and how each event changes them.

use std::collections::BTreeMap;

use hail_events::{EventKind, UnmatchedReason, Verdict};
use serde::{Deserialize, Serialize};

use crate::{
    event::RideEvent,
    histogram::{Histogram, Scale},
};

/// Rides matching gave up on, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmatched {
    pub no_driver_in_radius: u64,
    pub all_nearby_claimed: u64,
    /// Absent from checkpoints written before the reason existed.
    #[serde(default)]
    pub outside_service_area: u64,
    /// Cancelled by the rider before matching answered; absent from older checkpoints.
    #[serde(default)]
    pub cancelled: u64,
}

/// fraud's verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    pub allow: u64,
    pub review: u64,
    pub block: u64,
}

/// Everything analytics knows about one city, since the stream began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CityTotals {
    /// `RideRequested` events.
    pub requests: u64,
    /// `RideMatched` events.
    pub matched: u64,
    /// `RideUnmatched` events, by reason.
    pub unmatched: Unmatched,
    /// `FareQuoted` events.
    pub priced: u64,
    /// `RideScreened` events, by verdict.
    pub verdicts: Verdicts,
    /// `RideCompleted` events.
    pub completed: u64,
    /// `RideCancelled` events; absent from checkpoints written before the kind existed.
    #[serde(default)]
    pub cancelled: u64,
    /// Quoted fares in minor units, per ISO 4217 currency.
    pub fares: BTreeMap<String, Histogram>,
    /// Surge multipliers of the quotes.
    pub surge: Histogram,
    /// `matched_at_ms - requested_at_ms` of the matches.
    pub time_to_match_ms: Histogram,
}

impl Default for CityTotals {
    fn default() -> Self {
        CityTotals {
            requests: 0,
            matched: 0,
            unmatched: Unmatched::default(),
            priced: 0,
            verdicts: Verdicts::default(),
            completed: 0,
            cancelled: 0,
            fares: BTreeMap::new(),
            surge: Histogram::new(Scale::Surge),
            time_to_match_ms: Histogram::new(Scale::TimeToMatchMs),
        }
    }
}

impl CityTotals {
    /// Counts one event.
    pub fn apply(&mut self, event: &RideEvent) {
        match event {
            RideEvent::Requested(_) => self.requests += 1,
            RideEvent::Matched(m) => {
                self.matched += 1;
                let waited = m.matched_at_ms.saturating_sub(m.requested_at_ms);
                self.time_to_match_ms
                    .observe(Scale::TimeToMatchMs, waited as f64);
            }
            RideEvent::Unmatched(u) => match u.reason {
                UnmatchedReason::NoDriverInRadius => self.unmatched.no_driver_in_radius += 1,
                UnmatchedReason::AllNearbyClaimed => self.unmatched.all_nearby_claimed += 1,
                UnmatchedReason::OutsideServiceArea => self.unmatched.outside_service_area += 1,
                UnmatchedReason::Cancelled => self.unmatched.cancelled += 1,
            },
            RideEvent::Priced(f) => {
                self.priced += 1;
                self.fares
                    .entry(f.currency.clone())
                    .or_insert_with(|| Histogram::new(Scale::FareMinor))
                    .observe(Scale::FareMinor, f.amount_minor as f64);
                self.surge.observe(Scale::Surge, f.surge);
            }
            RideEvent::Screened(s) => match s.verdict {
                Verdict::Allow => self.verdicts.allow += 1,
                Verdict::Review => self.verdicts.review += 1,
                Verdict::Block => self.verdicts.block += 1,
            },
            RideEvent::Completed(_) => self.completed += 1,
            RideEvent::Cancelled(_) => self.cancelled += 1,
            RideEvent::DriverLocation(_) => {}
        }
    }

    /// Takes back one [`CityTotals::apply`] of `event` (withdrawn before it is
    /// dead-lettered).
    pub fn withdraw(&mut self, event: &RideEvent) {
        fn take(n: &mut u64) {
            *n = n.saturating_sub(1);
        }
        match event {
            RideEvent::Requested(_) => take(&mut self.requests),
            RideEvent::Matched(m) => {
                take(&mut self.matched);
                let waited = m.matched_at_ms.saturating_sub(m.requested_at_ms);
                self.time_to_match_ms
                    .unobserve(Scale::TimeToMatchMs, waited as f64);
            }
            RideEvent::Unmatched(u) => take(match u.reason {
                UnmatchedReason::NoDriverInRadius => &mut self.unmatched.no_driver_in_radius,
                UnmatchedReason::AllNearbyClaimed => &mut self.unmatched.all_nearby_claimed,
                UnmatchedReason::OutsideServiceArea => &mut self.unmatched.outside_service_area,
                UnmatchedReason::Cancelled => &mut self.unmatched.cancelled,
            }),
            RideEvent::Priced(f) => {
                take(&mut self.priced);
                if let Some(h) = self.fares.get_mut(&f.currency) {
                    h.unobserve(Scale::FareMinor, f.amount_minor as f64);
                }
                self.surge.unobserve(Scale::Surge, f.surge);
            }
            RideEvent::Screened(s) => take(match s.verdict {
                Verdict::Allow => &mut self.verdicts.allow,
                Verdict::Review => &mut self.verdicts.review,
                Verdict::Block => &mut self.verdicts.block,
            }),
            RideEvent::Completed(_) => take(&mut self.completed),
            RideEvent::Cancelled(_) => take(&mut self.cancelled),
            RideEvent::DriverLocation(_) => {}
        }
    }

    /// All unmatched rides.
    pub fn unmatched_total(&self) -> u64 {
        self.unmatched.no_driver_in_radius
            + self.unmatched.all_nearby_claimed
            + self.unmatched.outside_service_area
            + self.unmatched.cancelled
    }

    /// Matched over decided (matched + unmatched) rides; `None` before any.
    pub fn match_rate(&self) -> Option<f64> {
        let decided = self.matched + self.unmatched_total();
        (decided > 0).then(|| self.matched as f64 / decided as f64)
    }

    /// How many events of type `name` were counted.
    pub fn events(&self, name: &str) -> u64 {
        match EventKind::from_name(name) {
            Ok(EventKind::Requested) => self.requests,
            Ok(EventKind::Matched) => self.matched,
            Ok(EventKind::Unmatched) => self.unmatched_total(),
            Ok(EventKind::Priced) => self.priced,
            Ok(EventKind::Screened) => {
                self.verdicts.allow + self.verdicts.review + self.verdicts.block
            }
            Ok(EventKind::Completed) => self.completed,
            Ok(EventKind::Cancelled) => self.cancelled,
            Ok(EventKind::DriverLocation) | Err(_) => 0,
        }
    }

    /// Adds `other`'s totals to these (e.g. all cities into one).
    pub fn merge(&mut self, other: &CityTotals) {
        self.requests += other.requests;
        self.matched += other.matched;
        self.unmatched.no_driver_in_radius += other.unmatched.no_driver_in_radius;
        self.unmatched.all_nearby_claimed += other.unmatched.all_nearby_claimed;
        self.unmatched.outside_service_area += other.unmatched.outside_service_area;
        self.unmatched.cancelled += other.unmatched.cancelled;
        self.priced += other.priced;
        self.verdicts.allow += other.verdicts.allow;
        self.verdicts.review += other.verdicts.review;
        self.verdicts.block += other.verdicts.block;
        self.completed += other.completed;
        self.cancelled += other.cancelled;
        for (currency, h) in &other.fares {
            self.fares
                .entry(currency.clone())
                .or_insert_with(|| Histogram::new(Scale::FareMinor))
                .merge(h);
        }
        self.surge.merge(&other.surge);
        self.time_to_match_ms.merge(&other.time_to_match_ms);
    }

    /// `Err` naming the histogram whose buckets do not fit this build.
    pub fn check(&self) -> Result<(), String> {
        self.surge.check(Scale::Surge)?;
        self.time_to_match_ms.check(Scale::TimeToMatchMs)?;
        self.fares
            .values()
            .try_for_each(|h| h.check(Scale::FareMinor))
    }
}

/// The event names analytics counts (the ride kinds), in pipeline order.
pub const EVENT_NAMES: [&str; 7] = {
    let mut names = [""; 7];
    let (mut i, mut n) = (0, 0);
    while i < EventKind::ALL.len() {
        if EventKind::ALL[i].is_ride() {
            names[n] = EventKind::ALL[i].name();
            n += 1;
        }
        i += 1;
    }
    assert!(n == names.len(), "analytics counts every ride kind");
    names
};

#[cfg(test)]
mod tests {
    use hail_events::{
        City, DriverId, RideCompleted, RideId, RideMatched, RideScreened, RideUnmatched, RiderId,
        sample,
    };

    use super::*;

    fn id(s: &str) -> RideId {
        RideId::new(s).unwrap()
    }

    fn berlin() -> City {
        City::new("berlin").unwrap()
    }

    fn matched(waited_ms: u64) -> RideEvent {
        RideEvent::Matched(RideMatched {
            ride_id: id("r1"),
            city: berlin(),
            driver_id: DriverId::new("d1").unwrap(),
            pickup_distance_m: 300.0,
            eta_s: 60,
            requested_at_ms: 1_000,
            matched_at_ms: 1_000 + waited_ms,
        })
    }

    fn unmatched(reason: UnmatchedReason) -> RideEvent {
        RideEvent::Unmatched(RideUnmatched {
            ride_id: id("r2"),
            city: berlin(),
            reason,
            requested_at_ms: 1,
            at_ms: 2,
        })
    }

    fn screened(verdict: Verdict) -> RideEvent {
        RideEvent::Screened(RideScreened {
            ride_id: id("r3"),
            city: berlin(),
            rider_id: RiderId::new("u1").unwrap(),
            score: 0.5,
            verdict,
            rules: vec![],
            requested_at_ms: 1,
            at_ms: 2,
        })
    }

    fn priced(amount_minor: u64, currency: &str, surge: f64) -> RideEvent {
        let mut f = sample::fare_quoted("r4", "berlin");
        (f.amount_minor, f.currency, f.surge) = (amount_minor, currency.into(), surge);
        RideEvent::Priced(f)
    }

    #[test]
    fn requests_and_completions_count() {
        let mut t = CityTotals::default();
        t.apply(&RideEvent::Requested(sample::ride_requested(
            "r1", "berlin",
        )));
        t.apply(&RideEvent::Completed(RideCompleted {
            ride_id: id("r1"),
            city: berlin(),
            driver_id: DriverId::new("d1").unwrap(),
            at_ms: 5,
        }));
        assert_eq!((t.requests, t.completed), (1, 1));
        assert_eq!(t.events("RideRequested"), 1);
        assert_eq!(t.events("DriverLocationUpdated"), 0);
        assert_eq!(t.events("RideBooked"), 0);
    }

    #[test]
    fn withdrawing_takes_back_exactly_what_applying_added() {
        let events = [
            RideEvent::Requested(sample::ride_requested("r1", "berlin")),
            matched(1_500),
            unmatched(UnmatchedReason::Cancelled),
            priced(1_250, "EUR", 1.5),
            screened(Verdict::Review),
            RideEvent::Cancelled(sample::ride_cancelled("r1", "berlin")),
        ];
        let mut before = CityTotals::default();
        before.apply(&priced(700, "EUR", 1.0));
        let mut t = before.clone();
        for e in &events {
            t.apply(e);
        }
        for e in events.iter().rev() {
            t.withdraw(e);
        }
        assert_eq!(t, before);
    }

    #[test]
    fn counts_the_ride_kinds_in_pipeline_order() {
        assert_eq!(
            EVENT_NAMES,
            [
                "RideRequested",
                "RideMatched",
                "RideUnmatched",
                "FareQuoted",
                "RideScreened",
                "RideCompleted",
                "RideCancelled",
            ]
        );
    }

    #[test]
    fn matches_record_time_to_match_and_unmatched_their_reason() {
        let mut t = CityTotals::default();
        t.apply(&matched(40));
        t.apply(&matched(700));
        t.apply(&unmatched(UnmatchedReason::NoDriverInRadius));
        t.apply(&unmatched(UnmatchedReason::AllNearbyClaimed));
        assert_eq!(t.matched, 2);
        assert_eq!(t.unmatched_total(), 2);
        assert_eq!(t.unmatched.no_driver_in_radius, 1);
        assert_eq!(t.match_rate(), Some(0.5));
        assert_eq!(t.time_to_match_ms.count(), 2);
        assert_eq!(t.time_to_match_ms.sum, 740.0);
        // A clock skew (match before request) counts as zero wait, not a wrap.
        t.apply(&RideEvent::Matched(match matched(0) {
            RideEvent::Matched(mut m) => {
                m.matched_at_ms = 10;
                m
            }
            _ => unreachable!(),
        }));
        assert_eq!(t.time_to_match_ms.sum, 740.0);
    }

    #[test]
    fn quotes_fill_fares_per_currency_and_surge() {
        let mut t = CityTotals::default();
        t.apply(&priced(1_250, "EUR", 1.0));
        t.apply(&priced(2_400, "EUR", 1.8));
        t.apply(&priced(900, "GBP", 1.0));
        assert_eq!(t.priced, 3);
        assert_eq!(t.fares["EUR"].count(), 2);
        assert_eq!(t.fares["EUR"].sum, 3_650.0);
        assert_eq!(t.fares["GBP"].count(), 1);
        assert_eq!(t.surge.count(), 3);
        assert_eq!(t.surge.mean(), Some(3.8 / 3.0));
    }

    #[test]
    fn verdicts_count_by_kind() {
        let mut t = CityTotals::default();
        for v in [
            Verdict::Allow,
            Verdict::Allow,
            Verdict::Review,
            Verdict::Block,
        ] {
            t.apply(&screened(v));
        }
        assert_eq!(
            t.verdicts,
            Verdicts {
                allow: 2,
                review: 1,
                block: 1
            }
        );
        assert_eq!(t.events("RideScreened"), 4);
        assert_eq!(t.match_rate(), None);
    }

    #[test]
    fn cancellations_count_per_city_and_as_an_unmatched_reason() {
        let mut t = CityTotals::default();
        t.apply(&RideEvent::Cancelled(sample::ride_cancelled(
            "r1", "berlin",
        )));
        t.apply(&unmatched(UnmatchedReason::Cancelled));
        assert_eq!(t.cancelled, 1);
        assert_eq!(t.events("RideCancelled"), 1);
        assert_eq!(t.unmatched.cancelled, 1);
        assert_eq!(t.events("RideUnmatched"), 1);
        let mut all = CityTotals::default();
        all.merge(&t);
        assert_eq!((all.cancelled, all.unmatched.cancelled), (1, 1));
    }

    #[test]
    fn totals_stored_before_cancellations_still_load() {
        let mut old = serde_json::to_value(CityTotals::default()).unwrap();
        old.as_object_mut().unwrap().remove("cancelled");
        old["unmatched"]
            .as_object_mut()
            .unwrap()
            .remove("cancelled");
        // Checkpoints are MessagePack maps with named fields.
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        let t: CityTotals = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!((t.cancelled, t.unmatched.cancelled), (0, 0));
    }

    #[test]
    fn merge_is_the_sum_of_the_parts() {
        let (mut a, mut b, mut both) = Default::default();
        let events = [
            matched(30),
            priced(1_000, "EUR", 1.2),
            screened(Verdict::Review),
            unmatched(UnmatchedReason::NoDriverInRadius),
            priced(700, "GBP", 1.0),
            RideEvent::Cancelled(sample::ride_cancelled("r5", "berlin")),
            unmatched(UnmatchedReason::Cancelled),
        ];
        for (i, e) in events.iter().enumerate() {
            let part: &mut CityTotals = if i % 2 == 0 { &mut a } else { &mut b };
            part.apply(e);
            CityTotals::apply(&mut both, e);
        }
        a.merge(&b);
        assert_eq!(a, both);
    }
}
