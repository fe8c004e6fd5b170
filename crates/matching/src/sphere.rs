//! Positions as points on the unit sphere, the coordinates the R-tree indexes.
//!
//! Why not planar (lon, lat) degrees: a degree of longitude shrinks with the
//! cosine of the latitude and jumps at the antimeridian, so the planar nearest
//! neighbour is not the nearest by great-circle distance. The straight-line
//! (chord) distance between two points of the unit sphere is a monotonic
//! function of their great-circle distance, so the R-tree's nearest neighbour in
//! three dimensions is the nearest on the Earth, at any latitude and across the
//! antimeridian. [`meters_for_chord`] turns a chord back into metres, as a bound
//! that the haversine distance of the same pair can only exceed by rounding.
//!
//! Why not geo: geo measures distances on the sphere ([`LatLng::haversine_m`] is
//! its `Haversine`), but its R-tree support indexes planar coordinates, which is
//! the problem above; it has no nearest-neighbour search on the sphere. So the
//! index stays here, on the same sphere: [`EARTH_RADIUS_M`] is geo's radius.

use hail_events::{LatLng, position::EARTH_RADIUS_M};

/// A point of the unit sphere: `[x, y, z]`, Earth-centred, z through the north pole.
pub type UnitPoint = [f64; 3];

/// How far the haversine formula and the chord conversion may disagree for the same
/// pair, in metres. Both are exact to about 1e-8 m at Earth scale; one millimetre
/// is a wide margin that costs nothing but a rare extra candidate.
pub const ROUNDING_M: f64 = 1e-3;

/// The point of the unit sphere at `p`.
pub fn unit_point(p: LatLng) -> UnitPoint {
    let (lat, lon) = (p.lat().to_radians(), p.lon().to_radians());
    let (sin_lat, cos_lat) = lat.sin_cos();
    let (sin_lon, cos_lon) = lon.sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// Great-circle distance in metres of two points whose chord is `chord` long.
pub fn meters_for_chord(chord: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (chord / 2.0).clamp(0.0, 1.0).asin()
}

/// Squared chord of two points `meters` apart on the great circle (the R-tree's
/// distance measure); distances past half the circumference give the diameter.
pub fn chord_2_for_meters(meters: f64) -> f64 {
    let half_angle = (meters / (2.0 * EARTH_RADIUS_M)).clamp(0.0, std::f64::consts::FRAC_PI_2);
    let chord = 2.0 * half_angle.sin();
    chord * chord
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> LatLng {
        LatLng::new(lat, lon).unwrap()
    }

    fn chord(a: UnitPoint, b: UnitPoint) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn chord_distance_agrees_with_haversine() {
        let pairs = [
            (at(52.52, 13.405), at(52.53, 13.41)),
            (at(-33.87, 151.21), at(-33.80, 151.30)),
            // Across the antimeridian (Fiji) and close to the pole.
            (at(-17.0, 179.99), at(-17.0, -179.99)),
            (at(89.99, 0.0), at(89.99, 180.0)),
            (at(0.0, 0.0), at(0.0, 0.0)),
        ];
        for (a, b) in pairs {
            let by_chord = meters_for_chord(chord(unit_point(a), unit_point(b)));
            let by_haversine = a.haversine_m(&b);
            assert!(
                (by_chord - by_haversine).abs() < ROUNDING_M / 10.0,
                "{a:?} {b:?}: {by_chord} vs {by_haversine}"
            );
        }
    }

    #[test]
    fn chord_for_meters_inverts_meters_for_chord() {
        for m in [0.0, 1.0, 3_000.0, 100_000.0, 10_000_000.0] {
            let back = meters_for_chord(chord_2_for_meters(m).sqrt());
            assert!((back - m).abs() < 1e-6 * m.max(1.0), "{m} -> {back}");
        }
        assert_eq!(chord_2_for_meters(1e9), 4.0);
    }
}
