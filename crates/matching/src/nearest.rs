//! The nearest driver by haversine distance, from an R-tree over unit-sphere points.
//!
//! The tree yields drivers in order of chord distance; the chord gives a lower
//! bound of each driver's haversine distance (less [`ROUNDING_M`]), so the walk
//! stops as soon as no driver further on can be closer than the best found or
//! inside the radius. Equal distances go to the smaller driver id, so the answer
//! does not depend on the order drivers were inserted in.

use hail_events::{DriverId, LatLng};
use rstar::{RTree, primitives::GeomWithData};

use crate::sphere::{ROUNDING_M, UnitPoint, meters_for_chord, unit_point};

/// Where a driver lives in the index's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(pub(crate) u32);

impl Slot {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// An R-tree entry: a driver's point on the unit sphere and its slot.
pub(crate) type Entry = GeomWithData<UnitPoint, Slot>;

/// A driver found near a position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    /// The driver's slot in the index.
    pub slot: Slot,
    /// Haversine distance in metres.
    pub distance_m: f64,
}

/// The driver of `tree` nearest to `at` by haversine distance, if one is within
/// `radius_m`. `locate` gives a slot's position and id.
pub(crate) fn nearest_within<'a, F>(
    tree: &RTree<Entry>,
    at: LatLng,
    radius_m: f64,
    locate: F,
) -> Option<Nearest>
where
    F: Fn(Slot) -> (&'a LatLng, &'a DriverId),
{
    let query = unit_point(at);
    let mut best: Option<(Nearest, &DriverId)> = None;
    for (entry, chord_2) in tree.nearest_neighbor_iter_with_distance_2(&query) {
        let lower_bound = meters_for_chord(chord_2.sqrt()) - ROUNDING_M;
        let limit = best.map_or(radius_m, |(b, _)| b.distance_m);
        if lower_bound > limit {
            break;
        }
        let (position, id) = locate(entry.data);
        let distance_m = at.haversine_m(position);
        let found = Nearest {
            slot: entry.data,
            distance_m,
        };
        if distance_m <= radius_m && best.is_none_or(|b| closer((found, id), b)) {
            best = Some((found, id));
        }
    }
    best.map(|(b, _)| b)
}

fn closer(a: (Nearest, &DriverId), b: (Nearest, &DriverId)) -> bool {
    match a.0.distance_m.total_cmp(&b.0.distance_m) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Equal => a.1 < b.1,
        std::cmp::Ordering::Greater => false,
    }
}

#[cfg(test)]
mod tests {
    use hail_events::{City, DriverLocationUpdated, DriverStatus};
    use proptest::prelude::*;

    use crate::index::DriverIndex;

    use super::*;

    const DRIVERS: usize = 10_000;
    const RADIUS_M: f64 = 3_000.0;

    /// Centres at a few latitudes: Berlin, Singapore, Reykjavik, Ushuaia, Tromsø,
    /// two on the antimeridian (Fiji's and Chukotka's side), one a degree off the pole.
    const CENTRES: [(f64, f64); 8] = [
        (52.52, 13.405),
        (1.29, 103.85),
        (64.15, -21.94),
        (-54.80, -68.30),
        (69.65, 18.96),
        (-17.0, 179.98),
        (65.0, -179.99),
        (89.0, 45.0),
    ];

    /// A position `(dlat, dlon)` degrees off `centre`, longitude wrapped into range.
    fn offset((lat, lon): (f64, f64), dlat: f64, dlon: f64) -> LatLng {
        let lat = (lat + dlat).clamp(-90.0, 90.0);
        let mut lon = lon + dlon;
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        LatLng::new(lat, lon).unwrap()
    }

    /// A deterministic scatter of drivers, about ±0.1° of latitude around `centre`,
    /// longitude widened by 1/cos(lat) so the cloud is roughly round.
    fn scatter(centre: (f64, f64), seed: u64) -> Vec<(DriverId, LatLng)> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let widen = 1.0 / centre.0.to_radians().cos().max(0.02);
        (0..DRIVERS)
            .map(|i| {
                let (dlat, dlon) = (next() * 0.1, next() * 0.1 * widen);
                let id = DriverId::new(format!("d-{i}")).unwrap();
                (id, offset(centre, dlat, dlon))
            })
            .collect()
    }

    fn brute_force(drivers: &[(DriverId, LatLng)], at: LatLng) -> Option<(&DriverId, f64)> {
        drivers
            .iter()
            .map(|(id, p)| (id, at.haversine_m(p)))
            .filter(|(_, m)| *m <= RADIUS_M)
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)))
    }

    fn index_of(drivers: &[(DriverId, LatLng)]) -> DriverIndex {
        let mut index = DriverIndex::new();
        for (id, position) in drivers {
            index.apply_location(&DriverLocationUpdated {
                driver_id: id.clone(),
                city: City::new("c").unwrap(),
                position: *position,
                status: DriverStatus::Available,
                at_ms: 0,
            });
        }
        index
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn nearest_within_radius_equals_brute_force_haversine(
            centre in 0..CENTRES.len(),
            seed in any::<u64>(),
            queries in prop::collection::vec((-0.15f64..0.15, -0.15f64..0.15), 32),
        ) {
            let centre = CENTRES[centre];
            let drivers = scatter(centre, seed);
            let index = index_of(&drivers);
            let widen = 1.0 / centre.0.to_radians().cos().max(0.02);
            for (dlat, dlon) in queries {
                let at = offset(centre, dlat, dlon * widen);
                let expected = brute_force(&drivers, at);
                let found = index.nearest_free(at, RADIUS_M);
                let found = found.map(|n| (index.driver_id(n.slot), n.distance_m));
                prop_assert_eq!(found, expected, "query {:?}", at);
            }
        }
    }

    #[test]
    fn equal_distances_go_to_the_smaller_id() {
        let at = LatLng::new(0.0, 0.0).unwrap();
        let east = LatLng::new(0.0, 0.01).unwrap();
        let west = LatLng::new(0.0, -0.01).unwrap();
        let drivers = vec![
            (DriverId::new("b").unwrap(), east),
            (DriverId::new("a").unwrap(), west),
        ];
        let index = index_of(&drivers);
        let n = index.nearest_free(at, RADIUS_M).unwrap();
        assert_eq!(index.driver_id(n.slot).as_str(), "a");
    }
}
