//! The pure pricing step per request — cell lookup, demand update and window,
//! supply lookup, surge, fare — with 10,000 drivers known around Berlin.
//!
//! `cargo bench -p hail-pricing --bench quote`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hail_events::{City, DriverId, DriverLocationUpdated, DriverStatus, LatLng, RideId, sample};
use hail_pricing::{config::Settings, pricer::Pricer};

const T0: u64 = 1_800_000_000_000;
const DRIVERS: usize = 10_000;

/// A deterministic spread over ~20 × 20 km around Berlin centre.
fn spot(i: usize) -> LatLng {
    let a = (i.wrapping_mul(7919) % 1000) as f64 / 1000.0;
    let b = (i.wrapping_mul(104_729) % 1000) as f64 / 1000.0;
    LatLng::new(52.43 + a * 0.18, 13.25 + b * 0.30).unwrap()
}

fn pricer() -> Pricer {
    let p = Pricer::new(Settings::default());
    let city = City::new("berlin").unwrap();
    for i in 0..DRIVERS {
        let status = if i % 4 == 0 {
            DriverStatus::OnTrip
        } else {
            DriverStatus::Available
        };
        p.apply_driver(&DriverLocationUpdated {
            driver_id: DriverId::new(format!("d{i}")).unwrap(),
            city: city.clone(),
            position: spot(i),
            status,
            at_ms: T0,
        });
    }
    p
}

fn requests() -> Vec<hail_events::RideRequested> {
    (0..4096)
        .map(|i| {
            let mut r = sample::ride_requested("r", "berlin");
            r.ride_id = RideId::new(format!("r{i}")).unwrap();
            r.pickup = spot(i * 31 + 7);
            r.dropoff = spot(i * 17 + 3);
            r
        })
        .collect()
}

fn quote(c: &mut Criterion) {
    let p = pricer();
    let reqs = requests();
    let mut i = 0usize;
    c.bench_function("quote_10k_drivers", |b| {
        b.iter(|| {
            let r = &reqs[i % reqs.len()];
            // 100 requests a second of request time: the window stays full.
            let at = T0 + (i as u64) * 10;
            i += 1;
            // What every instance does per request: the feed records it, the
            // handler quotes it.
            black_box(p.record(black_box(r), at));
            black_box(p.quote(black_box(r), at, at))
        })
    });
}

criterion_group!(benches, quote);
criterion_main!(benches);
