//! Where riders ask for rides: a few demand hotspots per city.
//!
//! A pickup is drawn from a mixture: with probability [`BACKGROUND_SHARE`] anywhere
//! on the city's disc, otherwise around one of the city's hotspots (picked by
//! weight), normally distributed around its centre. Hotspots are placed from the
//! seed, so one seed is one city layout; ride `i` is a function of the seed and `i`
//! alone, so any part of the run can rebuild it (the fleet needs its drop-off).
//! Who requests it comes from [`crate::run::riders`].
//!
//! With a [`Day`] ([`Demand::with_day`]), where a ride starts also depends on
//! when: the hotspots drift along their daily circle, and during the wave its
//! extra demand starts around each city's first hotspots (a station at rush
//! hour), so the background's share falls while the wave lasts.

use anyhow::{Result, ensure};
use hail_events::{City, EventError, LatLng, RideId, RideRequested};

use super::day::{DRIFT_M, Day, WAVE_HOTSPOTS};
use crate::{
    city::{CityModel, PICKUP_RADIUS_M, dropoff_from, offset},
    rides::check_run_id,
    rng::{SplitMix64, mix},
    run::riders::{RiderMix, Riders},
};

/// Share of pickups spread uniformly over the city rather than near a hotspot.
pub const BACKGROUND_SHARE: f64 = 0.2;
/// Hotspots lie within this distance of the centre, in metres.
const HOTSPOT_RING_M: f64 = 5_000.0;
/// Spread of pickups around a hotspot (standard deviation per axis), in metres.
const HOTSPOT_SIGMA_M: (f64, f64) = (500.0, 1_500.0);
/// Relative weights of hotspots are drawn from this range.
const HOTSPOT_WEIGHT: (f64, f64) = (0.25, 1.0);
/// Salt of the hotspot layout, so it does not repeat the rides' draws.
const HOTSPOT_SALT: u64 = 0x686f_7473_706f_7473;

/// A place where many rides start.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    pub centre: LatLng,
    /// Standard deviation of pickups around the centre, per axis, in metres.
    pub sigma_m: f64,
    /// Relative share of the city's hotspot pickups.
    pub weight: f64,
}

/// One city of the model: its centre, subject token and hotspots.
#[derive(Debug, Clone)]
pub struct CityDemand {
    pub model: CityModel,
    pub city: City,
    pub hotspots: Vec<Hotspot>,
    total_weight: f64,
    /// Where each hotspot's daily circle starts, radians.
    drift_phase: Vec<f64>,
}

/// Where ride `i` goes: which city (index into [`Demand::cities`]) and from where to where.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    pub city: usize,
    pub pickup: LatLng,
    pub dropoff: LatLng,
}

/// The rides of one run: ids `<run-id>-<i>`, positions from the seed.
#[derive(Debug, Clone)]
pub struct Demand {
    run_id: String,
    seed: u64,
    cities: Vec<CityDemand>,
    riders: Riders,
    day: Option<Day>,
    /// Other ids of this run's rides (the gateway's, `--via http`): see [`Demand::alias`].
    aliases: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, u64>>>,
}

impl Demand {
    /// The model of `cities` with `hotspots` hotspots each.
    pub fn new(run_id: &str, seed: u64, cities: &[CityModel], hotspots: usize) -> Result<Self> {
        ensure!(!cities.is_empty(), "--cities names no city");
        ensure!(hotspots >= 1, "--hotspots must be at least 1");
        check_run_id(run_id)?;
        let cities = cities
            .iter()
            .enumerate()
            .map(|(n, model)| CityDemand::new(*model, seed, n as u64, hotspots))
            .collect::<Result<_, EventError>>()?;
        Ok(Self {
            run_id: run_id.to_string(),
            seed,
            cities,
            riders: Riders::new(run_id, seed, RiderMix::default())?,
            day: None,
            aliases: Default::default(),
        })
    }

    /// The same rides, placed by the time of `day` they are meant for.
    pub fn with_day(mut self, day: Day) -> Self {
        self.day = Some(day);
        self
    }

    /// The day the rides follow, if any.
    pub fn day(&self) -> Option<&Day> {
        self.day.as_ref()
    }

    /// The same rides, requested by riders drawn with `mix`.
    pub fn with_riders(mut self, mix: RiderMix) -> Result<Self> {
        self.riders = Riders::new(&self.run_id, self.seed, mix)?;
        Ok(self)
    }

    /// The run id, prefix of every ride id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The cities, in the order given.
    pub fn cities(&self) -> &[CityDemand] {
        &self.cities
    }

    /// Where ride `i`, meant for `at_us` after the start, goes: a city drawn
    /// uniformly, a pickup from its mixture at that time, a drop-off 0.5 to 12 km
    /// away.
    pub fn trip(&self, i: u64, at_us: u64) -> Result<Trip, EventError> {
        let mut rng = SplitMix64::new(mix(self.seed, i));
        let city = rng.below(self.cities.len() as u64) as usize;
        let pickup = match &self.day {
            None => self.cities[city].pickup(&mut rng)?,
            Some(day) => self.cities[city].pickup_at(&mut rng, day, at_us)?,
        };
        let dropoff = dropoff_from(pickup, &mut rng)?;
        Ok(Trip {
            city,
            pickup,
            dropoff,
        })
    }

    /// Who asks for ride `i` (see [`Riders`]).
    pub fn rider_of(&self, i: u64) -> Result<hail_events::RiderId, EventError> {
        Ok(self.riders.of(i)?.rider)
    }

    /// The id of ride `i`.
    pub fn ride_id(&self, i: u64) -> Result<RideId, EventError> {
        RideId::new(format!("{}-{i}", self.run_id))
    }

    /// Ride `i`, meant for `at_us` after the start and requested at
    /// `requested_at_ms`, by its rider (see [`Riders`]).
    pub fn ride(
        &self,
        i: u64,
        at_us: u64,
        requested_at_ms: u64,
    ) -> Result<RideRequested, EventError> {
        let trip = self.trip(i, at_us)?;
        let who = self.riders.of(i)?;
        Ok(RideRequested {
            ride_id: self.ride_id(i)?,
            rider_id: who.rider,
            device_id: who.device,
            card: who.card,
            city: self.cities[trip.city].city.clone(),
            pickup: trip.pickup,
            dropoff: trip.dropoff,
            requested_at_ms,
        })
    }

    /// Whether `trip`, meant for `at_us`, starts in the wave's hotspots while the
    /// wave is high: within two spreads of one of them, at that time.
    pub fn in_wave_hotspot(&self, trip: &Trip, at_us: u64) -> bool {
        let Some(day) = &self.day else { return false };
        let city = &self.cities[trip.city];
        day.in_wave(at_us)
            && (0..WAVE_HOTSPOTS.min(city.hotspots.len())).any(|h| {
                city.hotspot_centre(h, day, at_us)
                    .is_ok_and(|c| c.haversine_m(&trip.pickup) <= 2.0 * city.hotspots[h].sigma_m)
            })
    }

    /// Whether `trip` starts away from every hotspot of its city at `at_us`
    /// (beyond three spreads of each): the background, where surge should stay 1.0.
    pub fn away_from_hotspots(&self, trip: &Trip, at_us: u64) -> bool {
        let city = &self.cities[trip.city];
        (0..city.hotspots.len()).all(|h| {
            let centre = match &self.day {
                Some(day) => city.hotspot_centre(h, day, at_us),
                None => Ok(city.hotspots[h].centre),
            };
            centre.is_ok_and(|c| c.haversine_m(&trip.pickup) > 3.0 * city.hotspots[h].sigma_m)
        })
    }

    /// The index of a ride of this run, from its id; `None` for anyone else's ride.
    pub fn index_of(&self, ride_id: &str) -> Option<u64> {
        self.own_index(ride_id).or_else(|| {
            let aliases = self.aliases.read().unwrap_or_else(|p| p.into_inner());
            aliases.get(ride_id).copied()
        })
    }

    /// Makes `ride_id` another id of ride `i` (the id the gateway gives it).
    pub fn alias(&self, ride_id: &str, i: u64) {
        let mut aliases = self.aliases.write().unwrap_or_else(|p| p.into_inner());
        aliases.insert(ride_id.to_string(), i);
    }

    fn own_index(&self, ride_id: &str) -> Option<u64> {
        let digits = ride_id
            .strip_prefix(self.run_id.as_str())?
            .strip_prefix('-')?;
        // Only the exact text this run formats: no sign, no leading zero.
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits.len() == 1 || !digits.starts_with('0'));
        canonical.then(|| digits.parse().ok()).flatten()
    }
}

impl CityDemand {
    fn new(model: CityModel, seed: u64, n: u64, count: usize) -> Result<Self, EventError> {
        let mut rng = SplitMix64::new(mix(seed ^ HOTSPOT_SALT, n));
        let hotspots = (0..count)
            .map(|_| {
                let r = HOTSPOT_RING_M * rng.unit().sqrt();
                Ok(Hotspot {
                    centre: offset(model.lat, model.lon, r, rng.angle())?,
                    sigma_m: between(&mut rng, HOTSPOT_SIGMA_M),
                    weight: between(&mut rng, HOTSPOT_WEIGHT),
                })
            })
            .collect::<Result<Vec<_>, EventError>>()?;
        let drift_phase = hotspots.iter().map(|_| rng.angle()).collect();
        Ok(Self {
            city: City::new(model.name)?,
            total_weight: hotspots.iter().map(|h| h.weight).sum(),
            model,
            hotspots,
            drift_phase,
        })
    }

    /// Hotspot `h`'s centre at `at_us` of `day`: on a circle of [`DRIFT_M`]
    /// around its resting place, one turn a day.
    pub fn hotspot_centre(&self, h: usize, day: &Day, at_us: u64) -> Result<LatLng, EventError> {
        let rest = self.hotspots[h].centre;
        let angle = self.drift_phase[h] + day.drift_angle(at_us);
        offset(rest.lat(), rest.lon(), DRIFT_M, angle)
    }

    /// A pickup at `at_us` of `day`: the wave's extra demand around the first
    /// hotspots, the rest from the mixture with the hotspots where they are then.
    pub fn pickup_at(
        &self,
        rng: &mut SplitMix64,
        day: &Day,
        at_us: u64,
    ) -> Result<LatLng, EventError> {
        let wave = rng.unit() < day.wave_share(at_us);
        if !wave && rng.unit() < BACKGROUND_SHARE {
            return self.anywhere(rng);
        }
        let h = if wave {
            rng.below(WAVE_HOTSPOTS.min(self.hotspots.len()) as u64) as usize
        } else {
            self.hotspot_index(rng.unit() * self.total_weight)
        };
        let centre = self.hotspot_centre(h, day, at_us)?;
        offset(
            centre.lat(),
            centre.lon(),
            rng.rayleigh(self.hotspots[h].sigma_m),
            rng.angle(),
        )
    }

    /// A pickup from the mixture as it is at `at_us` of `day`, or as at rest
    /// without a day: where a driver looking for work heads.
    pub fn demand_point(
        &self,
        rng: &mut SplitMix64,
        day: Option<&Day>,
        at_us: u64,
    ) -> Result<LatLng, EventError> {
        match day {
            Some(day) => self.pickup_at(rng, day, at_us),
            None => self.pickup(rng),
        }
    }

    /// A pickup from the city's mixture.
    pub fn pickup(&self, rng: &mut SplitMix64) -> Result<LatLng, EventError> {
        if rng.unit() < BACKGROUND_SHARE {
            return self.anywhere(rng);
        }
        let spot = self.hotspot(rng.unit() * self.total_weight);
        let centre = spot.centre;
        offset(
            centre.lat(),
            centre.lon(),
            rng.rayleigh(spot.sigma_m),
            rng.angle(),
        )
    }

    /// A point uniformly on the city's disc.
    pub fn anywhere(&self, rng: &mut SplitMix64) -> Result<LatLng, EventError> {
        let r = PICKUP_RADIUS_M * rng.unit().sqrt();
        offset(self.model.lat, self.model.lon, r, rng.angle())
    }

    /// The hotspot at `mark` along the cumulative weights.
    fn hotspot(&self, mark: f64) -> &Hotspot {
        &self.hotspots[self.hotspot_index(mark)]
    }

    /// The index of the hotspot at `mark` along the cumulative weights.
    fn hotspot_index(&self, mut mark: f64) -> usize {
        for (n, spot) in self.hotspots.iter().enumerate() {
            if mark < spot.weight {
                return n;
            }
            mark -= spot.weight;
        }
        // Rounding can leave `mark` a hair past the last weight.
        self.hotspots.len() - 1
    }
}

fn between(rng: &mut SplitMix64, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.unit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::CITIES;

    fn demand() -> Demand {
        Demand::new("t1", 42, &CITIES, 4).unwrap()
    }

    #[test]
    fn rides_are_reproducible_valid_and_found_by_id() {
        let d = demand();
        let r = d.ride(17, 0, 1_000).unwrap();
        assert_eq!(r.ride_id.as_str(), "t1-17");
        assert_eq!(r, d.ride(17, 0, 1_000).unwrap());
        assert_ne!(d.trip(17, 0).unwrap(), d.trip(18, 0).unwrap());
        let other_seed = Demand::new("t1", 43, &CITIES, 4).unwrap();
        assert_ne!(d.trip(17, 0).unwrap(), other_seed.trip(17, 0).unwrap());
        assert_eq!(d.index_of("t1-17"), Some(17));
        assert_eq!(d.index_of("t1-0"), Some(0));
        for foreign in ["t2-17", "t1-", "t1-017", "t1-+1", "t1-1x", "t1"] {
            assert_eq!(d.index_of(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn cities_share_the_rides() {
        let d = demand();
        let mut per_city = [0u32; 4];
        for i in 0..40_000 {
            per_city[d.trip(i, 0).unwrap().city] += 1;
        }
        assert!(
            per_city.iter().all(|n| (9_000..11_000).contains(n)),
            "{per_city:?}"
        );
    }

    #[test]
    fn pickups_crowd_around_the_hotspots() {
        let d = demand();
        let (mut near, mut total) = (0, 0);
        for i in 0..20_000 {
            let t = d.trip(i, 0).unwrap();
            let city = &d.cities()[t.city];
            let centre = city.model.centre().unwrap();
            assert!(centre.haversine_m(&t.pickup) < 20_000.0);
            total += 1;
            near += usize::from(
                city.hotspots
                    .iter()
                    .any(|h| h.centre.haversine_m(&t.pickup) <= 2.5 * h.sigma_m),
            );
        }
        // About 80 % come from a hotspot, nearly all of those within 2.5 sigma
        // (1 - e^(-3.125) = 96 %); uniform pickups would rarely land that close.
        let share = near as f64 / total as f64;
        assert!((0.72..0.90).contains(&share), "{share}");
    }

    /// matching answers a pickup outside deploy/local/cities.toml unmatched, so
    /// every pickup the generator draws, whatever the seed, must lie inside it.
    #[test]
    fn pickups_stay_inside_the_local_service_areas() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/cities.toml");
        let areas = hail_matching::service_area::ServiceAreas::load(path.as_ref()).unwrap();
        for seed in 0..20 {
            let d = Demand::new("t1", seed, &CITIES, 8).unwrap();
            for i in 0..5_000 {
                let t = d.trip(i, 0).unwrap();
                let city = &d.cities()[t.city].city;
                assert!(areas.admits(city, t.pickup), "{seed} {i} {t:?}");
            }
        }
    }

    #[test]
    fn refuses_bad_settings_naming_them() {
        let err = Demand::new("a.b", 1, &CITIES, 4).unwrap_err();
        assert!(format!("{err:#}").contains("--run-id"), "{err:#}");
        let err = Demand::new("ok", 1, &CITIES, 0).unwrap_err();
        assert!(err.to_string().contains("--hotspots"), "{err}");
        let err = Demand::new("ok", 1, &[], 4).unwrap_err();
        assert!(err.to_string().contains("--cities"), "{err}");
    }
}
