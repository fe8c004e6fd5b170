//! Validated WGS84 positions, and the spherical geometry between them.
//!
//! The geometry is geo's [`Haversine`] metric on a sphere of radius
//! [`EARTH_RADIUS_M`]; this module is the one place that turns a [`LatLng`] into
//! a geo [`Point`] (x = longitude, y = latitude), so that axis order is decided once.

use geo::{Bearing, Destination, Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

use crate::EventError;

/// Mean Earth radius in metres (GRS80 R1), the sphere of geo's [`Haversine`].
pub const EARTH_RADIUS_M: f64 = Haversine.radius();

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

    /// Great-circle distance in metres (geo's [`Haversine`]).
    ///
    /// ```
    /// use hail_events::LatLng;
    /// let berlin = LatLng::new(52.5251, 13.3694).unwrap();
    /// let munich = LatLng::new(48.1402, 11.5600).unwrap();
    /// assert!((berlin.haversine_m(&munich) - 504_000.0).abs() < 2_000.0);
    /// ```
    pub fn haversine_m(&self, other: &LatLng) -> f64 {
        // Near antipodes rounding can push the haversine past 1 and geo's asin to
        // NaN; `min` drops a NaN and answers half the circumference, the true value.
        Haversine
            .distance(Point::from(*self), Point::from(*other))
            .min(std::f64::consts::PI * EARTH_RADIUS_M)
    }

    /// Initial great-circle bearing towards `other`, in degrees clockwise from
    /// north, in [0, 360).
    ///
    /// ```
    /// use hail_events::LatLng;
    /// let a = LatLng::new(0.0, 0.0).unwrap();
    /// assert!((a.bearing_deg(&LatLng::new(0.0, 1.0).unwrap()) - 90.0).abs() < 1e-9);
    /// ```
    pub fn bearing_deg(&self, other: &LatLng) -> f64 {
        Haversine.bearing(Point::from(*self), Point::from(*other))
    }

    /// The position `meters` away along the great circle leaving at `bearing_deg`
    /// (degrees clockwise from north).
    ///
    /// ```
    /// use hail_events::LatLng;
    /// let a = LatLng::new(52.52, 13.405).unwrap();
    /// let b = a.destination(0.0, 1_000.0).unwrap();
    /// assert!(b.lat() > a.lat());
    /// assert!((a.haversine_m(&b) - 1_000.0).abs() < 1e-6);
    /// ```
    pub fn destination(&self, bearing_deg: f64, meters: f64) -> Result<LatLng, EventError> {
        let p = Haversine.destination(Point::from(*self), bearing_deg, meters);
        LatLng::new(p.y(), p.x())
    }
}

/// x = longitude, y = latitude: geo's axis order.
impl From<LatLng> for Point<f64> {
    fn from(p: LatLng) -> Self {
        Point::new(p.lon, p.lat)
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

    /// The formula this module used before geo, kept as the reference.
    fn hand_rolled_m(a: &LatLng, b: &LatLng) -> f64 {
        let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
        let dl = (b.lon - a.lon).to_radians();
        let h = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }

    #[test]
    fn geo_haversine_equals_the_hand_rolled_formula() {
        let pairs = [
            ((52.52, 13.405), (52.53, 13.41)),
            ((40.7128, -74.006), (51.5074, -0.1278)),
            ((-33.86, 151.2), (35.68, 139.69)),
            ((0.0, 179.9), (0.0, -179.9)),
            ((10.0, 20.0), (-10.0, -160.0)),
            ((90.0, 0.0), (-90.0, 0.0)),
        ];
        for ((a_lat, a_lon), (b_lat, b_lon)) in pairs {
            let a = LatLng::new(a_lat, a_lon).unwrap();
            let b = LatLng::new(b_lat, b_lon).unwrap();
            let (by_geo, by_hand) = (a.haversine_m(&b), hand_rolled_m(&a, &b));
            assert!(by_geo.is_finite(), "{a:?} {b:?}");
            assert!(
                (by_geo - by_hand).abs() < 1e-6,
                "{a:?} {b:?}: {by_geo} vs {by_hand}"
            );
        }
    }

    #[test]
    fn destination_and_bearing_invert_each_other() {
        let from = LatLng::new(48.8566, 2.3522).unwrap();
        let to = from.destination(90.0, 5_000.0).unwrap();
        assert!((from.haversine_m(&to) - 5_000.0).abs() < 1e-6);
        assert!((from.bearing_deg(&to) - 90.0).abs() < 1e-9);
        assert!(to.lon() > from.lon());
    }
}
