//! The drivers of the city model: where they are, whether they are on a trip, and
//! when each reports its location.
//!
//! Every driver reports once at the start (the snapshot matching builds its index
//! from), then every `interval`, the reports of the whole fleet spread evenly over
//! the interval: report `r` is driver `r mod n` at `(r div n + 1 + (r mod n) / n) ×
//! interval`. So a run of `k` intervals sends exactly `k` reports per driver.
//!
//! An available driver cruises at a constant speed, turning a little between
//! reports and heading back when it leaves the city's disc. A matched driver is on
//! a trip from the ride's pickup to its drop-off, which takes `trip_seconds` scaled
//! by the trip's length over the mean length, and is then available at the
//! drop-off: the fleet completes the ride and reports the driver at once.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    time::Duration,
};

use anyhow::{Result, ensure};
use hail_events::{
    City, DriverId, DriverLocationUpdated, DriverStatus, EventError, LatLng, RideCompleted, RideId,
};

use super::{
    demand::{Demand, Trip},
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
/// Largest turn between two reports, radians either way.
const MAX_TURN: f64 = 0.6;
/// Trip times are scaled by length over the mean length within these factors.
const TRIP_SCALE: (f64, f64) = (0.25, 2.5);

/// How big the fleet is and how it moves.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub per_city: usize,
    /// Between two location reports of a driver.
    pub interval: Duration,
    /// The mean simulated trip time, in seconds.
    pub trip_seconds: f64,
    /// Cruising speed of available drivers, metres per second.
    pub speed_mps: f64,
    pub seed: u64,
}

struct Driver {
    id: DriverId,
    city: usize,
    pos: LatLng,
    /// Radians, 0 east, π/2 north.
    heading: f64,
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
}

/// A ride completed, and the driver's report that goes with it (when the fleet
/// knows the driver and this was still its trip).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub completed: RideCompleted,
    pub report: Option<DriverLocationUpdated>,
}

/// Every driver of the model and the trips under way.
pub struct Fleet {
    drivers: Vec<Driver>,
    by_id: HashMap<DriverId, usize>,
    cities: Vec<(City, LatLng)>,
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
                    heading: rng.angle(),
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
            self.move_to(driver, at_us);
            out.push(self.report(driver, clock.wall_ms(at_us)));
            self.next_report += 1;
        }
    }

    /// `driver_id` was matched to ride `ride` (going `trip`) at `now_us`: the trip
    /// is scheduled to end, and a known driver is on it from now (its report is
    /// returned).
    pub fn matched(
        &mut self,
        ride: RideId,
        trip: &Trip,
        driver_id: DriverId,
        now_us: u64,
        clock: &Clock,
    ) -> Option<DriverLocationUpdated> {
        let end_us = now_us + self.trip_us(trip);
        let driver = self.by_id.get(&driver_id).copied();
        let open = OpenTrip {
            ride: ride.clone(),
            city: self.cities[trip.city].0.clone(),
            driver_id,
        };
        self.trips.push(Reverse((end_us, open)));
        let n = driver?;
        self.move_to(n, now_us);
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

    /// Every open trip, completed now (the run is over); drivers are not reported.
    pub fn finish_all(&mut self, now_us: u64, clock: &Clock) -> Vec<RideCompleted> {
        let at_ms = clock.wall_ms(now_us);
        std::mem::take(&mut self.trips)
            .into_sorted_vec()
            .into_iter()
            .rev()
            .map(|Reverse((_, trip))| completed(trip, at_ms))
            .collect()
    }

    fn complete(&mut self, trip: OpenTrip, end_us: u64, clock: &Clock) -> Completion {
        let at_ms = clock.wall_ms(end_us);
        let driver = self.by_id.get(&trip.driver_id).copied().filter(|n| {
            let on = self.drivers[*n].trip.as_ref();
            on.is_some_and(|on| on.ride == trip.ride)
        });
        let report = driver.map(|n| {
            self.move_to(n, end_us);
            let d = &mut self.drivers[n];
            if let Some(on) = d.trip.take() {
                d.pos = on.to;
            }
            self.report(n, at_ms)
        });
        Completion {
            completed: completed(trip, at_ms),
            report,
        }
    }

    /// Moves driver `n` along its trip or its cruise up to `at_us`.
    fn move_to(&mut self, n: usize, at_us: u64) {
        let speed = self.settings.speed_mps;
        let turn = (self.rng.unit() * 2.0 - 1.0) * MAX_TURN;
        let (_, centre) = self.cities[self.drivers[n].city];
        let d = &mut self.drivers[n];
        let dt_s = at_us.saturating_sub(d.moved_us) as f64 / 1e6;
        d.moved_us = d.moved_us.max(at_us);
        if let Some(on) = &d.trip {
            d.pos = along(on, at_us).unwrap_or(d.pos);
            return;
        }
        d.heading = if centre.haversine_m(&d.pos) > PICKUP_RADIUS_M {
            angle_towards(d.pos, centre)
        } else {
            d.heading + turn
        };
        if let Ok(p) = offset(d.pos.lat(), d.pos.lon(), speed * dt_s, d.heading) {
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
            } else {
                DriverStatus::Available
            },
            at_ms: d.last_at_ms,
        }
    }
}

fn completed(trip: OpenTrip, at_ms: u64) -> RideCompleted {
    RideCompleted {
        ride_id: trip.ride,
        city: trip.city,
        driver_id: trip.driver_id,
        at_ms,
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

    fn fleet(per_city: usize) -> (Demand, Fleet) {
        let demand = Demand::new("f1", 9, &CITIES[..2], 3).unwrap();
        let settings = FleetSettings {
            per_city,
            interval: Duration::from_secs(1),
            trip_seconds: 20.0,
            speed_mps: 10.0,
            seed: 9,
        };
        let fleet = Fleet::new(&demand, settings).unwrap();
        (demand, fleet)
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
    fn cruising_drivers_move_at_their_speed_and_stay_in_town() {
        let (demand, mut f) = fleet(20);
        let clock = Clock::start();
        let before = f.snapshot(clock.wall_ms(0));
        let after = f.reports_due(2 * SECOND - 1, None, &clock);
        for (a, b) in before.iter().zip(&after) {
            assert_eq!(a.driver_id, b.driver_id);
            // 10 m/s for a bit more than one second.
            let moved = a.position.haversine_m(&b.position);
            assert!((5.0..25.0).contains(&moved), "{moved}");
        }
        let far = f.reports_due(3_600 * SECOND, None, &clock);
        let centre = |r: &DriverLocationUpdated| {
            let c = demand.cities().iter().find(|c| c.city == r.city).unwrap();
            c.model.centre().unwrap()
        };
        let worst = far
            .iter()
            .map(|r| centre(r).haversine_m(&r.position))
            .fold(0.0, f64::max);
        assert!(worst < PICKUP_RADIUS_M + 1_000.0, "{worst}");
    }

    #[test]
    fn a_matched_driver_is_on_trip_until_the_drop_off() {
        let (demand, mut f) = fleet(10);
        let clock = Clock::start();
        let trip = demand.trip(3).unwrap();
        let driver = DriverId::new("d-berlin-4").unwrap();
        let ride = demand.ride_id(3).unwrap();
        let on = f
            .matched(ride.clone(), &trip, driver.clone(), SECOND, &clock)
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
        assert_eq!(done[0].completed.ride_id, ride);
        assert_eq!(done[0].completed.driver_id, driver);
        assert_eq!(
            done[0].completed.city.as_str(),
            demand.cities()[trip.city].city.as_str()
        );
        let free = done[0].report.as_ref().unwrap();
        assert_eq!(free.status, DriverStatus::Available);
        assert_eq!(free.position, trip.dropoff);
        assert_eq!(f.trips_open(), 0);
    }

    #[test]
    fn rides_of_unknown_drivers_complete_and_open_trips_finish_at_the_end() {
        let (demand, mut f) = fleet(1);
        let clock = Clock::start();
        let stranger = DriverId::new("someone-else").unwrap();
        let trip = demand.trip(0).unwrap();
        assert!(
            f.matched(demand.ride_id(0).unwrap(), &trip, stranger, 0, &clock)
                .is_none()
        );
        let done = f.trips_due(3_600 * SECOND, &clock);
        assert_eq!(done.len(), 1);
        assert!(done[0].report.is_none());
        for i in 1..4 {
            let t = demand.trip(i).unwrap();
            let d = DriverId::new("d-paris-0").unwrap();
            f.matched(demand.ride_id(i).unwrap(), &t, d, 0, &clock);
        }
        let cut = f.finish_all(5, &clock);
        let mut rides: Vec<&str> = cut.iter().map(|c| c.ride_id.as_str()).collect();
        rides.sort();
        assert_eq!(rides, ["f1-1", "f1-2", "f1-3"]);
        assert!(f.trips_due(u64::MAX, &clock).is_empty());
    }

    #[test]
    fn refuses_bad_settings_naming_the_flag() {
        let demand = Demand::new("f1", 9, &CITIES, 3).unwrap();
        let ok = FleetSettings {
            per_city: 1,
            interval: Duration::from_secs(1),
            trip_seconds: 1.0,
            speed_mps: 1.0,
            seed: 1,
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
