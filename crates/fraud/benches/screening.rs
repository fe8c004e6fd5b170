//! Per-event cost of fraud's pure screening step against a realistic history:
//! 100,000 riders with three requests each in the last hour, 10,000 devices and
//! 10,000 cards. Each iteration screens and records one new request of a random
//! rider, a little later in event time than the last, so eviction runs as it
//! would in production.
//!
//! `cargo bench -p hail-fraud --bench screening -- --quick`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hail_events::{CardFingerprint, City, DeviceId, LatLng, RideId, RideRequested, RiderId};
use hail_fraud::{history::Sighting, rules::RuleSettings, scoring::Scoring, screener::Screener};
use hail_runtime::Output;
use rand::{Rng, SeedableRng, rngs::StdRng};

const RIDERS: u64 = 100_000;
const DEVICES: u64 = 10_000;
const T0: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;

fn settings() -> RuleSettings {
    RuleSettings {
        velocity_max_requests: 5,
        velocity_window_ms: 600_000,
        travel_max_speed_mps: 300.0 / 3.6,
        travel_min_distance_m: 1_000.0,
        travel_window_ms: HOUR,
        shared_min_riders: 3,
        shared_window_ms: HOUR,
    }
}

fn request(ride: u64, rider: u64, at_ms: u64, rng: &mut StdRng) -> RideRequested {
    RideRequested {
        ride_id: RideId::new(format!("ride-{ride:010}")).unwrap(),
        rider_id: RiderId::new(format!("rider-{rider:07}")).unwrap(),
        city: City::new("berlin").unwrap(),
        pickup: LatLng::new(
            52.4 + rng.random::<f64>() * 0.2,
            13.3 + rng.random::<f64>() * 0.2,
        )
        .unwrap(),
        dropoff: LatLng::new(52.5, 13.4).unwrap(),
        requested_at_ms: at_ms,
        device_id: DeviceId::new(format!("dev-{:06}", rider % DEVICES)).unwrap(),
        card: CardFingerprint::new(format!("card-{:06}", (rider * 7) % DEVICES)).unwrap(),
    }
}

/// 300,000 requests over the hour before `T0 + HOUR`.
fn loaded() -> (Screener, StdRng) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut screener = Screener::new(settings(), Scoring::default(), 300_000);
    let total = 3 * RIDERS;
    for ride in 0..total {
        let at = T0 + ride * HOUR / total;
        let req = request(ride, ride % RIDERS, at, &mut rng);
        screener.record(&Sighting::of(&req, at));
    }
    (screener, rng)
}

fn bench(c: &mut Criterion) {
    let (mut screener, mut rng) = loaded();
    let sizes = screener.sizes();
    eprintln!(
        "history: {} riders, {} devices, {} cards, {} requests",
        sizes.riders, sizes.devices, sizes.cards, sizes.entries
    );
    let mut ride = 10 * RIDERS;
    let mut at = T0 + HOUR;
    let mut next = move || {
        ride += 1;
        at += 12; // about 83 requests a second in event time
        request(ride, rng.random_range(0..RIDERS), at, &mut rng)
    };
    c.bench_function("screen (sighting + rules + score + record)", |b| {
        b.iter_batched(
            &mut next,
            |req| black_box(screener.screen(&Sighting::of(&req, req.requested_at_ms), false)),
            criterion::BatchSize::SmallInput,
        )
    });
    let (mut screener, _) = loaded();
    c.bench_function("screen + encode RideScreened", |b| {
        b.iter_batched(
            &mut next,
            |req| {
                let s = screener.screen(&Sighting::of(&req, req.requested_at_ms), false);
                black_box(Output::event(&s.event(&req, req.requested_at_ms)).unwrap())
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
