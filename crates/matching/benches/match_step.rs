//! The pure matching step, without NATS: per request, find and reserve the nearest
//! free driver, settle the claim, and release it again (so the index keeps its
//! size); per location update, move a driver to a new position. With 10,000, 100,000 and 1,000,000 drivers
//! spread over a 33 × 34 km city, search radius 3 km.
//!
//! `cargo bench -p hail-matching --bench match_step`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hail_events::{City, DriverId, DriverLocationUpdated, DriverStatus, LatLng};
use hail_matching::index::{DriverIndex, Settlement};

const RADIUS_M: f64 = 3_000.0;
const CENTRE: (f64, f64) = (52.52, 13.405);

/// A deterministic stream of positions within ±0.15° lat, ±0.25° lon of the centre.
struct Positions(u64);

impl Positions {
    fn next(&mut self) -> LatLng {
        let mut unit = || {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        LatLng::new(CENTRE.0 + unit() * 0.15, CENTRE.1 + unit() * 0.25).unwrap()
    }
}

fn update(i: usize, position: LatLng) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("driver-{i}")).unwrap(),
        city: City::new("berlin").unwrap(),
        position,
        status: DriverStatus::Available,
        at_ms: 0,
    }
}

fn index_of(n: usize, positions: &mut Positions) -> DriverIndex {
    let mut index = DriverIndex::new();
    for i in 0..n {
        index.apply_location(&update(i, positions.next()));
    }
    index
}

fn request(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    for n in [10_000, 100_000, 1_000_000] {
        let mut positions = Positions(0x9e37_79b9_7f4a_7c15);
        let mut index = index_of(n, &mut positions);
        let pickups: Vec<LatLng> = (0..4096).map(|_| positions.next()).collect();
        let mut revision = 0;
        let mut i = 0;
        group.bench_function(BenchmarkId::new("take_claim_release", n), |b| {
            b.iter(|| {
                let pickup = pickups[i % pickups.len()];
                i += 1;
                let candidate = index.take_nearest(black_box(pickup), RADIUS_M).unwrap();
                revision += 2;
                index.settle(candidate.slot, Settlement::Claimed { revision });
                index.apply_claim(&candidate.driver, false, revision + 1);
                black_box(candidate.distance_m)
            })
        });
    }
    group.finish();
}

fn location(c: &mut Criterion) {
    let mut group = c.benchmark_group("location_update");
    for n in [10_000, 100_000, 1_000_000] {
        let mut positions = Positions(0x2545_f491_4f6c_dd1d);
        let mut index = index_of(n, &mut positions);
        // Two positions per driver, used in turn, so that every update moves one.
        let moves: Vec<[DriverLocationUpdated; 2]> = (0..4096)
            .map(|i| [0, 1].map(|_| update(i * 7 % n, positions.next())))
            .collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("move_driver", n), |b| {
            b.iter(|| {
                let (turn, k) = (i / moves.len() % 2, i % moves.len());
                index.apply_location(black_box(&moves[k][turn]));
                i += 1;
            })
        });
    }
    group.finish();
}

criterion_group!(benches, request, location);
criterion_main!(benches);
