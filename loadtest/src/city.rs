//! The cities rides are requested in, and where in a city a ride starts and ends.
//!
//! Positions are a deterministic function of a seed and the ride's index, so a run
//! can be reproduced exactly and no random-number crate is needed.

use anyhow::{Result, bail};
use hail_events::{EventError, LatLng};

use crate::rng::{SplitMix64, mix};

/// A city the load generator knows: its subject token and its centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CityModel {
    /// Subject token (`rides.requested.<name>`).
    pub name: &'static str,
    /// Latitude of the centre, degrees.
    pub lat: f64,
    /// Longitude of the centre, degrees.
    pub lon: f64,
}

/// Every city the load generator can request rides in.
pub const CITIES: [CityModel; 4] = [
    CityModel {
        name: "berlin",
        lat: 52.5200,
        lon: 13.4050,
    },
    CityModel {
        name: "paris",
        lat: 48.8566,
        lon: 2.3522,
    },
    CityModel {
        name: "london",
        lat: 51.5074,
        lon: -0.1278,
    },
    CityModel {
        name: "nyc",
        lat: 40.7128,
        lon: -74.0060,
    },
];

/// Pickups fall within this distance of the centre, in metres.
pub const PICKUP_RADIUS_M: f64 = 8_000.0;
/// Trips are between these lengths (straight line), in metres.
pub const TRIP_M: (f64, f64) = (500.0, 12_000.0);

/// Parses one city name; an unknown name is an error that lists the known ones.
pub fn parse_city(name: &str) -> Result<CityModel> {
    let name = name.trim();
    match CITIES.iter().find(|c| c.name == name) {
        Some(city) => Ok(*city),
        None => {
            let known: Vec<&str> = CITIES.iter().map(|c| c.name).collect();
            bail!("unknown city {name:?}; known cities: {}", known.join(","))
        }
    }
}

/// Parses a comma-separated list such as `berlin,paris`.
pub fn parse_cities(list: &str) -> Result<Vec<CityModel>> {
    let cities = list
        .split(',')
        .filter(|n| !n.trim().is_empty())
        .map(parse_city)
        .collect::<Result<Vec<_>>>()?;
    if cities.is_empty() {
        bail!("no city named");
    }
    Ok(distinct(cities))
}

/// `cities` with repeats dropped, in first-seen order.
pub fn distinct(cities: Vec<CityModel>) -> Vec<CityModel> {
    let mut out: Vec<CityModel> = Vec::with_capacity(cities.len());
    for c in cities {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

impl CityModel {
    /// Pickup and drop-off of ride number `i`: the pickup uniformly spread over a
    /// disc around the centre, the drop-off 0.5 to 12 km away in any direction.
    pub fn trip(&self, seed: u64, i: u64) -> Result<(LatLng, LatLng), EventError> {
        let mut rng = SplitMix64::new(mix(seed, i));
        let r = PICKUP_RADIUS_M * rng.unit().sqrt();
        let pickup = offset(self.lat, self.lon, r, rng.angle())?;
        Ok((pickup, dropoff_from(pickup, &mut rng)?))
    }

    /// The centre as a position.
    pub fn centre(&self) -> Result<LatLng, EventError> {
        LatLng::new(self.lat, self.lon)
    }
}

/// A drop-off 0.5 to 12 km from `pickup` in any direction.
pub fn dropoff_from(pickup: LatLng, rng: &mut SplitMix64) -> Result<LatLng, EventError> {
    let len = TRIP_M.0 + (TRIP_M.1 - TRIP_M.0) * rng.unit();
    offset(pickup.lat(), pickup.lon(), len, rng.angle())
}

/// The point `dist_m` metres from (lat, lon) in direction `angle` (radians, 0 is
/// east, π/2 north), along the great circle ([`LatLng::destination`]).
pub fn offset(lat: f64, lon: f64, dist_m: f64, angle: f64) -> Result<LatLng, EventError> {
    LatLng::new(lat, lon)?.destination(90.0 - angle.to_degrees(), dist_m)
}

/// The direction from `from` to `to`, in the convention of [`offset`].
pub fn angle_towards(from: LatLng, to: LatLng) -> f64 {
    (90.0 - from.bearing_deg(&to)).to_radians()
}

/// Seed from a text (the run id), so the same run id gives the same trips.
pub fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_cities_and_names_unknown_ones() {
        let c = parse_cities("berlin, nyc,berlin").unwrap();
        assert_eq!(
            c.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["berlin", "nyc"]
        );
        let err = parse_cities("berlin,tokyo").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown city \"tokyo\"; known cities: berlin,paris,london,nyc"
        );
        assert!(parse_cities(" , ").is_err());
    }

    #[test]
    fn trips_stay_in_the_city_and_are_reproducible() {
        for city in CITIES {
            let centre = LatLng::new(city.lat, city.lon).unwrap();
            for i in 0..2_000 {
                let (p, d) = city.trip(42, i).unwrap();
                assert!(centre.haversine_m(&p) <= PICKUP_RADIUS_M * 1.01);
                let trip = p.haversine_m(&d);
                assert!(
                    (TRIP_M.0 * 0.99..=TRIP_M.1 * 1.01).contains(&trip),
                    "{trip}"
                );
            }
            assert_eq!(city.trip(42, 7).unwrap(), city.trip(42, 7).unwrap());
            assert_ne!(city.trip(42, 7).unwrap(), city.trip(43, 7).unwrap());
        }
    }

    #[test]
    fn offset_goes_the_distance_in_the_direction() {
        let (lat, lon) = (52.52, 13.405);
        let centre = LatLng::new(lat, lon).unwrap();
        let north = offset(lat, lon, 1_000.0, std::f64::consts::FRAC_PI_2).unwrap();
        let east = offset(lat, lon, 1_000.0, 0.0).unwrap();
        assert!(north.lat() > lat && (north.lon() - lon).abs() < 1e-9);
        assert!(east.lon() > lon);
        for p in [north, east] {
            assert!((centre.haversine_m(&p) - 1_000.0).abs() < 1e-6);
        }
        // Angles are equal when they point the same way, whatever turn they add.
        let same = |a: f64, b: f64| (a - b).sin().abs() < 1e-9 && (a - b).cos() > 0.0;
        assert!(same(
            angle_towards(centre, north),
            std::f64::consts::FRAC_PI_2
        ));
        assert!(same(angle_towards(centre, east), 0.0));
    }
}
