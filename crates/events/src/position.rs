//! Validated WGS84 positions.

use serde::{Deserialize, Serialize};

use crate::EventError;

/// Mean Earth radius in metres, as used by the haversine formula.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A latitude/longitude pair that is known to be finite and in range.
///
/// ```
/// use hail_events::LatLng;
/// let p = LatLng::new(52.52, 13.405).unwrap();
/// assert!(LatLng::new(f64::NAN, 0.0).is_err());
/// assert!(LatLng::new(0.0, 181.0).is_err());
/// # let _ = p;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLatLng", into = "RawLatLng")]
pub struct LatLng {
    lat: f64,
    lon: f64,
}

#[derive(Serialize, Deserialize)]
struct RawLatLng {
    lat: f64,
    lon: f64,
}

fn check(field: &'static str, value: f64, limit: f64) -> Result<(), EventError> {
    if value.is_finite() && (-limit..=limit).contains(&value) {
        Ok(())
    } else {
        Err(EventError::InvalidCoordinate {
            field,
            value,
            min: -limit,
            max: limit,
        })
    }
}

impl LatLng {
    /// A position, refusing NaN, infinities and out-of-range values.
    pub fn new(lat: f64, lon: f64) -> Result<Self, EventError> {
        check("latitude", lat, 90.0)?;
        check("longitude", lon, 180.0)?;
        Ok(Self { lat, lon })
    }

    /// Latitude in degrees, in [-90, 90].
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees, in [-180, 180].
    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance in metres (haversine).
    pub fn haversine_m(&self, other: &LatLng) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

impl TryFrom<RawLatLng> for LatLng {
    type Error = EventError;
    fn try_from(raw: RawLatLng) -> Result<Self, EventError> {
        LatLng::new(raw.lat, raw.lon)
    }
}

impl From<LatLng> for RawLatLng {
    fn from(p: LatLng) -> Self {
        RawLatLng {
            lat: p.lat,
            lon: p.lon,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_nan_infinite_and_out_of_range() {
        for (lat, lon) in [
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
            (90.0001, 0.0),
            (0.0, -180.5),
        ] {
            assert!(LatLng::new(lat, lon).is_err(), "{lat},{lon}");
        }
        let err = LatLng::new(91.0, 0.0).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid latitude: 91 (must be finite and within [-90, 90])"
        );
    }

    #[test]
    fn haversine_matches_known_distance() {
        // Berlin Hauptbahnhof to Munich Hauptbahnhof: about 504 km.
        let a = LatLng::new(52.5251, 13.3694).unwrap();
        let b = LatLng::new(48.1402, 11.5600).unwrap();
        let d = a.haversine_m(&b);
        assert!((d - 504_000.0).abs() < 2_000.0, "{d}");
        assert_eq!(a.haversine_m(&a), 0.0);
    }
}
