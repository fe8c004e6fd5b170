//! The drivers of the city model: where they are, whether they are on a trip, and
//! when each reports its location.
//!
//! Every driver reports once at the start (the snapshot matching builds its index
//! from), then every `interval`, the reports of the whole fleet spread evenly over
//! the interval: report `r` is driver `r mod n` at `(r div n + 1 + (r mod n) / n) ×
//! interval`. So a run of `k` intervals sends exactly `k` reports per driver.
//!
//! A matched driver is on a trip from the ride's pickup to its drop-off, which
//! takes `trip_seconds` scaled by the trip's length over the mean length, and is
//! then available at the drop-off: the fleet completes the ride and reports the
//! driver at once. Most drivers then reposition toward demand (a point drawn from
//! the city's demand as it usually is at that hour), driving there at the city's
//! speed, and wait there; a driver left outside the pickup area always does.
//! Besides its status changes (matched, free at the drop-off, offline, back
//! online) and its arrival where it repositioned to, a driver reports only
//! every [`FleetSettings::idle_every`]th round:
//! location updates cost the broker and matching about as much as rides, so
//! they are kept to about two per ride plus a trickle. Now and then a
//! waiting driver goes offline for a few rounds (reported `Offline`) and comes
//! back online somewhere in demand.
//!
//! A few riders cancel before their pickup ([`FleetSettings::cancel_share`]): the
//! trip ends early with a `RideCancelled`, and the driver is free where it is.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    time::Duration,
};

use anyhow::{Result, ensure};
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, EventError, LatLng, RideCancelled,
    RideCompleted, RideId, RiderId,
};

use super::{
    day::Day,
    demand::{CityDemand, Demand, Trip},
    schedule::Clock,
};
use crate::{
    city::{PICKUP_RADIUS_M, TRIP_M, angle_towards, offset},
    rng::{SplitMix64, mix},
};

/// Salt of the fleet's draws.
const FLEET_SALT: u64 = 0x666c_6565_7464_7276;
/// Share of drivers that start near demand (the rest anywhere in the city).
const NEAR_DEMAND_SHARE: f64 = 0.5;
/// Trip times are scaled by length over the mean length within these factors.
const TRIP_SCALE: (f64, f64) = (0.25, 2.5);
/// Share of drivers that reposition toward demand after a trip (the others wait
/// at the drop-off if it is in the pickup area).
pub const REPOSITION_SHARE: f64 = 0.85;
/// Chance per round that a waiting driver sets off toward demand.
const WANDER_CHANCE: f64 = 0.4;
/// Chance per round that a waiting driver comes back online.
pub const ONLINE_CHANCE: f64 = 0.25;
/// Salt of the riders' cancellations.
const CANCEL_SALT: u64 = 0x6361_6e63_656c_6c73;
/// A cancelling rider cancels within this share of the trip's time after the
/// match: before the pickup.
const CANCEL_WITHIN: f64 = 0.3;
/// Why the load generator's riders cancel.
const CANCEL_REASON: &str = "rider changed plans";

/// The mean of a trip's time over `trip_seconds`: lengths are uniform over
/// [`TRIP_M`], scaled by the mean length and clamped to [`TRIP_SCALE`].
pub fn mean_trip_scale() -> f64 {
    let mean_m = (TRIP_M.0 + TRIP_M.1) / 2.0;
    let steps = 1_000;
    (0..steps)
        .map(|k| {
            let len = TRIP_M.0 + (TRIP_M.1 - TRIP_M.0) * (k as f64 + 0.5) / steps as f64;
            (len / mean_m).clamp(TRIP_SCALE.0, TRIP_SCALE.1)
        })
        .sum::<f64>()
        / steps as f64
}

/// The speed of the city: a trip of the mean length in `trip_seconds`, m/s.
pub fn city_speed_mps(trip_seconds: f64) -> f64 {
    (TRIP_M.0 + TRIP_M.1) / 2.0 / trip_seconds
}

/// How big the fleet is and how it moves.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub per_city: usize,
    /// Between two location reports of a driver.
    pub interval: Duration,
    /// The mean simulated trip time, in seconds.
    pub trip_seconds: f64,
    /// Speed of drivers repositioning, metres per second.
    pub speed_mps: f64,
    pub seed: u64,
    /// A waiting driver reports every this many rounds (1: every round).
    pub idle_every: u64,
    /// Chance per round that a waiting driver goes offline.
    pub offline_chance: f64,
    /// Share of matched rides the rider cancels before the pickup.
    pub cancel_share: f64,
}

impl FleetSettings {
    /// Share of the fleet offline in the long run (drivers on a trip never go).
    pub fn offline_share(&self) -> f64 {
        self.offline_chance / (self.offline_chance + ONLINE_CHANCE)
    }
}

struct Driver {
    id: DriverId,
    city: usize,
    pos: LatLng,
    /// Where it is driving to, looking for work.
    target: Option<LatLng>,
    offline: bool,
    moved_us: u64,
    trip: Option<OnTrip>,
    last_at_ms: u64,
}

struct OnTrip {
    ride: RideId,
    from: LatLng,
    to: LatLng,
    start_us: u64,
    end_us: u64,
}

/// A trip under way, as ordered in the queue of trip ends.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct OpenTrip {
    ride: RideId,
    city: City,
    driver_id: DriverId,
    /// The rider who cancels it at its end, before the pickup.
    cancelled_by: Option<RiderId>,
}

/// How a ride ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Completed(RideCompleted),
    Cancelled(RideCancelled),
}

/// A ride ended, and the driver's report that goes with it (when the fleet
/// knows the driver and this was still its trip).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub ending: Ending,
    pub report: Option<DriverLocationUpdated>,
}

/// Every driver of the model and the trips under way.
pub struct Fleet {
    drivers: Vec<Driver>,
    by_id: HashMap<DriverId, usize>,
    cities: Vec<(City, LatLng)>,
    /// Each city's demand, where drivers reposition to.
    demand: Vec<CityDemand>,
    day: Option<Day>,
    rng: SplitMix64,
    settings: FleetSettings,
    next_report: u64,
    /// Trips under way, the first to end on top.
    trips: BinaryHeap<Reverse<(u64, OpenTrip)>>,
}

impl Fleet {
    /// `settings.per_city` drivers in each city of `demand`, named `d-<city>-<n>`.
    pub fn new(demand: &Demand, settings: FleetSettings) -> Result<Self> {
        ensure!(
            settings.interval >= Duration::from_millis(10),
            "--driver-interval must be at least 10ms"
        );
        ensure!(
            settings.trip_seconds.is_finite() && settings.trip_seconds > 0.0,
            "--trip-seconds must be a positive number of seconds"
        );
        let mut rng = SplitMix64::new(mix(settings.seed ^ FLEET_SALT, 0));
        let mut drivers = Vec::with_capacity(demand.cities().len() * settings.per_city);
        let mut cities = Vec::new();
        for (c, city) in demand.cities().iter().enumerate() {
            cities.push((city.city.clone(), city.model.centre()?));
            for n in 0..settings.per_city {
                let pos = if rng.unit() < NEAR_DEMAND_SHARE {
                    city.pickup(&mut rng)?
                } else {
                    city.anywhere(&mut rng)?
                };
                drivers.push(Driver {
                    id: DriverId::new(format!("d-{}-{n}", city.city))?,
                    city: c,
                    pos,
                    target: None,
                    offline: false,
                    moved_us: 0,
                    trip: None,
                    last_at_ms: 0,
                });
            }
        }
        let by_id = drivers
            .iter()
            .enumerate()
            .map(|(n, d)| (d.id.clone(), n))
            .collect();
        Ok(Self {
            drivers,
            by_id,
            cities,
            demand: demand.cities().to_vec(),
            day: demand.day().copied(),
            rng,
            settings,
            next_report: 0,
            trips: BinaryHeap::new(),
        })
    }

    /// Number of drivers.
    pub fn len(&self) -> usize {
        self.drivers.len()
    }

    /// Whether the fleet has no driver.
    pub fn is_empty(&self) -> bool {
        self.drivers.is_empty()
    }

    /// Trips under way.
    pub fn trips_open(&self) -> usize {
        self.trips.len()
    }

    /// Every driver where it is, at `at_ms`: the start of the run.
    pub fn snapshot(&mut self, at_ms: u64) -> Vec<DriverLocationUpdated> {
        (0..self.drivers.len())
            .map(|n| self.report(n, at_ms))
            .collect()
    }

    /// The periodic reports meant for up to `now_us`, and before `end_us` if given.
    pub fn reports_due(
        &mut self,
        now_us: u64,
        end_us: Option<u64>,
        clock: &Clock,
    ) -> Vec<DriverLocationUpdated> {
        let mut out = Vec::new();
        let n = self.drivers.len() as u64;
        if n == 0 {
            return out;
        }
        let interval = self.settings.interval.as_micros() as u64;
        loop {
            let r = self.next_report;
            let at_us = (r / n + 1) * interval + (r % n) * interval / n;
            if at_us > now_us || end_us.is_some_and(|end| at_us >= end) {
                return out;
            }
            let driver = (r % n) as usize;
            self.next_report += 1;
            if self.round(driver, r / n, at_us) {
                out.push(self.report(driver, clock.wall_ms(at_us)));
            }
        }
    }

    /// Driver `n`'s turn in round `round` at `at_us`: it moves, may go offline or
    /// come back, and says whether it reports.
    ///
    /// Every driver that is online reports on its turn, every
    /// [`FleetSettings::idle_every`]th round, when it arrives where it
    /// repositioned to, and when its status changes (offline, online); nothing
    /// else. Until it arrives, matching sees a repositioning driver where its
    /// last report put it (its drop-off), and it may be matched there.
    fn round(&mut self, n: usize, round: u64, at_us: u64) -> bool {
        let repositioning = self.drivers[n].target.is_some();
        self.move_to(n, at_us);
        let idle_turn = round.is_multiple_of(self.settings.idle_every.max(1));
        if self.drivers[n].trip.is_some() {
            // Its status is known from the match; where it is on the trip matters
            // to no service, so it reports as rarely as a waiting driver.
            return idle_turn;
        }
        if self.drivers[n].offline {
            if self.rng.unit() < ONLINE_CHANCE {
                self.drivers[n].offline = false;
                let city = self.drivers[n].city;
                if let Ok(p) = self.demand_point(city, at_us) {
                    self.drivers[n].pos = p;
                }
                return true;
            }
            return false;
        }
        if repositioning {
            // It reports where it arrived, to wait there.
            return idle_turn || self.drivers[n].target.is_none();
        }
        if self.rng.unit() < self.settings.offline_chance {
            self.drivers[n].offline = true;
            return true;
        }
        if self.rng.unit() < WANDER_CHANCE {
            // Waiting too long: it heads to where the rides are now.
            let city = self.drivers[n].city;
            self.drivers[n].target = self.demand_point(city, at_us).ok();
        }
        idle_turn
    }

    /// A point of city `c`'s usual demand at `at_us`.
    fn demand_point(&mut self, c: usize, at_us: u64) -> Result<LatLng, EventError> {
        self.demand[c].demand_point(&mut self.rng, self.day.as_ref(), at_us)
    }

    /// Whether the rider of ride `index` cancels it once matched.
    pub fn cancels(&self, index: u64) -> bool {
        let mut rng = SplitMix64::new(mix(self.settings.seed ^ CANCEL_SALT, index));
        rng.unit() < self.settings.cancel_share
    }

    /// `driver_id` was matched at `now_us` to ride `index` (`ride`, going `trip`,
    /// asked for by `rider`): the trip is scheduled to end (or to be cancelled
    /// before the pickup, if its rider cancels), and a known driver is on it from
    /// now (its report is returned).
    #[allow(clippy::too_many_arguments)]
    pub fn matched(
        &mut self,
        index: u64,
        ride: RideId,
        rider: RiderId,
        trip: &Trip,
        driver_id: DriverId,
        now_us: u64,
        clock: &Clock,
    ) -> Option<DriverLocationUpdated> {
        let trip_us = self.trip_us(trip);
        let cancels = self.cancels(index);
        let end_us = if cancels {
            let mut rng = SplitMix64::new(mix(self.settings.seed ^ CANCEL_SALT, !index));
            now_us + (trip_us as f64 * CANCEL_WITHIN * rng.unit()) as u64
        } else {
            now_us + trip_us
        };
        let driver = self.by_id.get(&driver_id).copied();
        let open = OpenTrip {
            ride: ride.clone(),
            city: self.cities[trip.city].0.clone(),
            driver_id,
            cancelled_by: cancels.then_some(rider),
        };
        self.trips.push(Reverse((end_us, open)));
        let n = driver?;
        self.move_to(n, now_us);
        self.drivers[n].target = None;
        self.drivers[n].offline = false;
        self.drivers[n].trip = Some(OnTrip {
            ride,
            from: trip.pickup,
            to: trip.dropoff,
            start_us: now_us,
            end_us,
        });
        Some(self.report(n, clock.wall_ms(now_us)))
    }

    /// How long the trip takes, in microseconds.
    fn trip_us(&self, trip: &Trip) -> u64 {
        let mean_m = (TRIP_M.0 + TRIP_M.1) / 2.0;
        let scale =
            (trip.pickup.haversine_m(&trip.dropoff) / mean_m).clamp(TRIP_SCALE.0, TRIP_SCALE.1);
        (self.settings.trip_seconds * scale * 1e6) as u64
    }

    /// The trips that end by `now_us`, completed.
    pub fn trips_due(&mut self, now_us: u64, clock: &Clock) -> Vec<Completion> {
        let mut out = Vec::new();
        while self
            .trips
            .peek()
            .is_some_and(|Reverse((end, _))| *end <= now_us)
        {
            if let Some(Reverse((end_us, trip))) = self.trips.pop() {
                out.push(self.complete(trip, end_us, clock));
            }
        }
        out
    }

    /// Every open trip, ended now (the run is over); drivers are not reported.
    pub fn finish_all(&mut self, now_us: u64, clock: &Clock) -> Vec<Ending> {
        let at_ms = clock.wall_ms(now_us);
        std::mem::take(&mut self.trips)
            .into_sorted_vec()
            .into_iter()
            .rev()
            .map(|Reverse((_, trip))| ending(trip, at_ms))
            .collect()
    }

    fn complete(&mut self, trip: OpenTrip, end_us: u64, clock: &Clock) -> Completion {
        let at_ms = clock.wall_ms(end_us);
        let driver = self.by_id.get(&trip.driver_id).copied().filter(|n| {
            let on = self.drivers[*n].trip.as_ref();
            on.is_some_and(|on| on.ride == trip.ride)
        });
        let cancelled = trip.cancelled_by.is_some();
        let report = driver.map(|n| {
            self.move_to(n, end_us);
            let d = &mut self.drivers[n];
            if let Some(on) = d.trip.take()
                && !cancelled
            {
                d.pos = on.to;
            }
            self.look_for_work(n, end_us);
            self.report(n, at_ms)
        });
        Completion {
            ending: ending(trip, at_ms),
            report,
        }
    }

    /// Driver `n` is free at `at_us`: it repositions toward demand, or waits
    /// where it is.
    fn look_for_work(&mut self, n: usize, at_us: u64) {
        let (c, pos) = (self.drivers[n].city, self.drivers[n].pos);
        let outside = self.cities[c].1.haversine_m(&pos) > PICKUP_RADIUS_M;
        if outside || self.rng.unit() < REPOSITION_SHARE {
            self.drivers[n].target = self.demand_point(c, at_us).ok();
        }
    }

    /// Moves driver `n` along its trip, or toward where it repositions, up to `at_us`.
    fn move_to(&mut self, n: usize, at_us: u64) {
        let speed = self.settings.speed_mps;
        let d = &mut self.drivers[n];
        let dt_s = at_us.saturating_sub(d.moved_us) as f64 / 1e6;
        d.moved_us = d.moved_us.max(at_us);
        if let Some(on) = &d.trip {
            d.pos = along(on, at_us).unwrap_or(d.pos);
            return;
        }
        let Some(target) = d.target else { return };
        let left = d.pos.haversine_m(&target);
        if left <= speed * dt_s {
            d.pos = target;
            d.target = None;
        } else if let Ok(p) = offset(
            d.pos.lat(),
            d.pos.lon(),
            speed * dt_s,
            angle_towards(d.pos, target),
        ) {
            d.pos = p;
        }
    }

    /// Driver `n`'s report as of now, stamped `at_ms` (kept increasing per driver,
    /// as the stamp is part of the message id).
    fn report(&mut self, n: usize, at_ms: u64) -> DriverLocationUpdated {
        let d = &mut self.drivers[n];
        d.last_at_ms = at_ms.max(d.last_at_ms + 1);
        DriverLocationUpdated {
            driver_id: d.id.clone(),
            city: self.cities[d.city].0.clone(),
            position: d.pos,
            status: if d.trip.is_some() {
                DriverStatus::OnTrip
            } else if d.offline {
                DriverStatus::Offline
            } else {
                DriverStatus::Available
            },
            at_ms: d.last_at_ms,
        }
    }
}

fn ending(trip: OpenTrip, at_ms: u64) -> Ending {
    match trip.cancelled_by {
        Some(rider) => Ending::Cancelled(RideCancelled {
            ride_id: trip.ride,
            city: trip.city,
            rider_id: Some(rider),
            at_ms,
            reason: Some(CANCEL_REASON.to_string()),
        }),
        None => Ending::Completed(RideCompleted {
            ride_id: trip.ride,
            city: trip.city,
            driver_id: trip.driver_id,
            at_ms,
        }),
    }
}

/// Where a trip is at `at_us`: straight from pickup to drop-off at even speed.
fn along(on: &OnTrip, at_us: u64) -> Result<LatLng, EventError> {
    let span = on.end_us.saturating_sub(on.start_us).max(1) as f64;
    let f = (at_us.saturating_sub(on.start_us) as f64 / span).min(1.0);
    LatLng::new(
        on.from.lat() + (on.to.lat() - on.from.lat()) * f,
        on.from.lon() + (on.to.lon() - on.from.lon()) * f,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::CITIES;

    const SECOND: u64 = 1_000_000;

    fn settings(per_city: usize) -> FleetSettings {
        FleetSettings {
            per_city,
            interval: Duration::from_secs(1),
            trip_seconds: 20.0,
            speed_mps: 1_000.0,
            seed: 9,
            idle_every: 1,
            offline_chance: 0.0,
            cancel_share: 0.0,
        }
    }

    fn fleet_with(s: FleetSettings) -> (Demand, Fleet) {
        let demand = Demand::new("f1", 9, &CITIES[..2], 3).unwrap();
        let fleet = Fleet::new(&demand, s).unwrap();
        (demand, fleet)
    }

    fn fleet(per_city: usize) -> (Demand, Fleet) {
        fleet_with(settings(per_city))
    }

    fn rider() -> RiderId {
        RiderId::new("u-1").unwrap()
    }

    #[test]
    fn every_driver_reports_once_per_interval_spread_over_it() {
        let (_, mut f) = fleet(50);
        let clock = Clock::start();
        let snap = f.snapshot(clock.wall_ms(0));
        assert_eq!(snap.len(), 100);
        assert!(snap.iter().all(|r| r.status == DriverStatus::Available));
        assert_eq!(snap[0].driver_id.as_str(), "d-berlin-0");
        assert_eq!(snap[99].driver_id.as_str(), "d-paris-49");
        // Half way through the first interval, half the fleet has reported again.
        let mut rest = f.reports_due(1_499_999, None, &clock);
        assert_eq!(rest.len(), 50);
        rest.extend(f.reports_due(10 * SECOND, Some(3 * SECOND), &clock));
        assert_eq!(rest.len(), 200);
        let mut per_driver: HashMap<&str, Vec<u64>> = HashMap::new();
        for r in snap.iter().chain(&rest) {
            per_driver
                .entry(r.driver_id.as_str())
                .or_default()
                .push(r.at_ms);
        }
        // Snapshot plus two: three reports in three intervals, stamps increasing.
        assert_eq!(per_driver.len(), 100);
        for stamps in per_driver.values() {
            assert_eq!(stamps.len(), 3);
            assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
        }
    }

    #[test]
    fn waiting_drivers_report_less_often_and_some_go_offline_and_come_back() {
        let (_, mut f) = fleet_with(FleetSettings {
            idle_every: 4,
            offline_chance: 0.05,
            ..settings(500)
        });
        let clock = Clock::start();
        f.snapshot(clock.wall_ms(0));
        // 40 rounds of 1 000 waiting drivers: a quarter report in a round, plus
        // those going offline or coming back, and those arriving where they
        // went to look for work (up to 40 % of the waiting ones a round).
        let reports = f.reports_due(40 * SECOND + SECOND / 2, None, &clock);
        let per_round = reports.len() as f64 / 40.0;
        assert!((250.0..750.0).contains(&per_round), "{per_round}");
        // Fewer than if every driver reported every round.
        assert!(per_round < 1_000.0 * 0.75, "{per_round}");
        let offline = reports
            .iter()
            .filter(|r| r.status == DriverStatus::Offline)
            .count();
        // 5 % a round of those waiting where they are: several hundred.
        assert!((300..2_500).contains(&offline), "{offline}");
        let now_offline = f.drivers.iter().filter(|d| d.offline).count() as f64;
        let share = now_offline / 1_000.0;
        // At most the long-run share the fleet is sized for (drivers on their
        // way somewhere do not go offline, so fewer are).
        let most = f.settings.offline_share();
        assert!((0.04..=most + 0.02).contains(&share), "{share} vs {most}");
    }

    #[test]
    fn a_matched_driver_is_on_trip_until_the_drop_off_then_looks_for_work() {
        let (demand, mut f) = fleet(10);
        let clock = Clock::start();
        let trip = demand.trip(3, 0).unwrap();
        let driver = DriverId::new("d-berlin-4").unwrap();
        let ride = demand.ride_id(3).unwrap();
        let on = f
            .matched(
                3,
                ride.clone(),
                rider(),
                &trip,
                driver.clone(),
                SECOND,
                &clock,
            )
            .unwrap();
        assert_eq!(on.status, DriverStatus::OnTrip);
        assert_eq!(f.trips_open(), 1);
        let len = trip.pickup.haversine_m(&trip.dropoff);
        let end = SECOND + (20.0 * (len / 6_250.0).clamp(0.25, 2.5) * 1e6) as u64;
        assert!(f.trips_due(end - 1, &clock).is_empty());
        let mid = f.reports_due(end - 1, None, &clock);
        let mine: Vec<_> = mid.iter().filter(|r| r.driver_id == driver).collect();
        assert!(mine.iter().all(|r| r.status == DriverStatus::OnTrip));
        let done = f.trips_due(end, &clock);
        assert_eq!(done.len(), 1);
        let Ending::Completed(c) = &done[0].ending else {
            panic!("{:?}", done[0].ending)
        };
        assert_eq!(c.ride_id, ride);
        assert_eq!(c.driver_id, driver);
        assert_eq!(c.city.as_str(), demand.cities()[trip.city].city.as_str());
        let free = done[0].report.as_ref().unwrap();
        assert_eq!(free.status, DriverStatus::Available);
        assert_eq!(free.position, trip.dropoff);
        assert_eq!(f.trips_open(), 0);
        // Repositioning at 1 km/s, it is somewhere else 30 s later (or it waits
        // at a drop-off inside the city, 30 % of the time).
        let n = f.by_id[&driver];
        let later = f.reports_due(end + 30 * SECOND, None, &clock);
        let last = later.iter().rev().find(|r| r.driver_id == driver).unwrap();
        assert_eq!(last.status, DriverStatus::Available);
        let centre = f.cities[f.drivers[n].city].1;
        assert!(centre.haversine_m(&last.position) <= PICKUP_RADIUS_M + 20_000.0);
    }

    #[test]
    fn drivers_reposition_toward_demand() {
        let (demand, mut f) = fleet(300);
        let clock = Clock::start();
        f.snapshot(0);
        // Every driver ends a trip far from town (12 km out), then has time to drive back.
        for n in 0..f.drivers.len() {
            let c = f.drivers[n].city;
            let centre = f.cities[c].1;
            f.drivers[n].pos = offset(centre.lat(), centre.lon(), 15_000.0, 0.0).unwrap();
            f.look_for_work(n, 0);
        }
        f.reports_due(120 * SECOND, None, &clock);
        let near = f
            .drivers
            .iter()
            .filter(|d| {
                demand.cities()[d.city]
                    .hotspots
                    .iter()
                    .any(|h| h.centre.haversine_m(&d.pos) < 3.0 * h.sigma_m + DRIFT_ALLOWANCE_M)
            })
            .count();
        // Outside the pickup area, every driver drives to demand: most to a hotspot.
        assert!(near as f64 / f.drivers.len() as f64 > 0.6, "{near}");
    }

    /// Without a day the hotspots do not drift; this is the slack for the test above.
    const DRIFT_ALLOWANCE_M: f64 = 1.0;

    #[test]
    fn a_cancelling_rider_ends_the_trip_before_the_pickup_and_frees_the_driver() {
        let (demand, mut f) = fleet_with(FleetSettings {
            cancel_share: 1.0,
            ..settings(10)
        });
        let clock = Clock::start();
        let trip = demand.trip(5, 0).unwrap();
        let driver = DriverId::new("d-paris-1").unwrap();
        let ride = demand.ride_id(5).unwrap();
        assert!(f.cancels(5));
        f.matched(5, ride.clone(), rider(), &trip, driver.clone(), 0, &clock)
            .unwrap();
        let len = trip.pickup.haversine_m(&trip.dropoff);
        let trip_us = (20.0 * (len / 6_250.0).clamp(0.25, 2.5) * 1e6) as u64;
        let done = f.trips_due((trip_us as f64 * CANCEL_WITHIN) as u64 + 1, &clock);
        assert_eq!(done.len(), 1);
        let Ending::Cancelled(c) = &done[0].ending else {
            panic!("{:?}", done[0].ending)
        };
        assert_eq!((&c.ride_id, c.rider_id.as_ref()), (&ride, Some(&rider())));
        assert_eq!(
            done[0].report.as_ref().unwrap().status,
            DriverStatus::Available
        );
        // About 3 % of rides at the default share.
        let (_, f) = fleet_with(FleetSettings {
            cancel_share: 0.03,
            ..settings(1)
        });
        let n = (0..10_000).filter(|i| f.cancels(*i)).count();
        assert!((200..400).contains(&n), "{n}");
    }

    #[test]
    fn rides_of_unknown_drivers_complete_and_open_trips_finish_at_the_end() {
        let (demand, mut f) = fleet(1);
        let clock = Clock::start();
        let stranger = DriverId::new("someone-else").unwrap();
        let trip = demand.trip(0, 0).unwrap();
        let ride0 = demand.ride_id(0).unwrap();
        assert!(
            f.matched(0, ride0, rider(), &trip, stranger, 0, &clock)
                .is_none()
        );
        let done = f.trips_due(3_600 * SECOND, &clock);
        assert_eq!(done.len(), 1);
        assert!(done[0].report.is_none());
        for i in 1..4 {
            let t = demand.trip(i, 0).unwrap();
            let d = DriverId::new("d-paris-0").unwrap();
            f.matched(i, demand.ride_id(i).unwrap(), rider(), &t, d, 0, &clock);
        }
        let cut = f.finish_all(5, &clock);
        let mut rides: Vec<&str> = cut
            .iter()
            .map(|e| match e {
                Ending::Completed(c) => c.ride_id.as_str(),
                Ending::Cancelled(c) => c.ride_id.as_str(),
            })
            .collect();
        rides.sort();
        assert_eq!(rides, ["f1-1", "f1-2", "f1-3"]);
        assert!(f.trips_due(u64::MAX, &clock).is_empty());
    }

    #[test]
    fn the_mean_trip_scale_is_about_one() {
        let m = mean_trip_scale();
        assert!((1.0..1.02).contains(&m), "{m}");
    }

    #[test]
    fn refuses_bad_settings_naming_the_flag() {
        let demand = Demand::new("f1", 9, &CITIES, 3).unwrap();
        let ok = FleetSettings {
            trip_seconds: 1.0,
            speed_mps: 1.0,
            seed: 1,
            ..settings(1)
        };
        let bad_trip = FleetSettings {
            trip_seconds: f64::NAN,
            ..ok.clone()
        };
        let err = Fleet::new(&demand, bad_trip).err().unwrap();
        assert!(err.to_string().contains("--trip-seconds"));
        let bad_interval = FleetSettings {
            interval: Duration::ZERO,
            ..ok
        };
        let err = Fleet::new(&demand, bad_interval).err().unwrap();
        assert!(err.to_string().contains("--driver-interval"));
    }
}
