use hail_events::{City, DriverId, LatLng, RideId, sample};

use super::*;

const T0: u64 = 1_800_000_000_000;

fn request(i: usize, city: &str, lat: f64, lon: f64) -> RideRequested {
    let mut r = sample::ride_requested(&format!("r{i}"), city);
    r.pickup = LatLng::new(lat, lon).unwrap();
    r.dropoff = LatLng::new(lat + 0.02, lon + 0.02).unwrap();
    r.ride_id = RideId::new(format!("r{i}")).unwrap();
    r
}

fn driver(i: usize, lat: f64, lon: f64, status: DriverStatus) -> DriverLocationUpdated {
    DriverLocationUpdated {
        driver_id: DriverId::new(format!("d{i}")).unwrap(),
        city: City::new("berlin").unwrap(),
        position: LatLng::new(lat, lon).unwrap(),
        status,
        at_ms: T0,
    }
}

/// What the service does for a request on its own: the feed records it, then
/// the handler quotes it.
fn record_and_quote(p: &Pricer, req: &RideRequested, event_ms: u64, now_ms: u64) -> Quote {
    assert!(p.record(req, event_ms).counted);
    p.quote(req, event_ms, now_ms)
}

fn pricer_with_drivers(n: usize, lat: f64, lon: f64) -> Pricer {
    let p = Pricer::new(Settings::default());
    for i in 0..n {
        p.apply_driver(&driver(i, lat, lon, DriverStatus::Available));
    }
    p
}

#[test]
fn ample_drivers_mean_no_surge() {
    let p = pricer_with_drivers(20, 52.52, 13.405);
    for i in 0..20 {
        let q = record_and_quote(&p, &request(i, "berlin", 52.52, 13.405), T0 + i as u64, T0);
        assert_eq!(q.surge, Surge::NONE, "request {i}");
        assert_eq!(q.fare.surge, 1.0);
        assert_eq!((q.demand, q.supply), (i as u32 + 1, 20));
    }
}

#[test]
fn scarce_drivers_raise_the_surge_to_the_cap() {
    let p = pricer_with_drivers(2, 52.52, 13.405);
    let quotes: Vec<Quote> = (0..12)
        .map(|i| record_and_quote(&p, &request(i, "berlin", 52.52, 13.405), T0, T0))
        .collect();
    let surges: Vec<u16> = quotes.iter().map(|q| q.surge.tenths()).collect();
    // demand/supply: 0.5, 1, 1.5 → 1.2, 2 → 1.5, 2.5 → 1.7, … capped at 3.0.
    assert_eq!(&surges[..6], &[10, 10, 12, 15, 17, 20]);
    assert_eq!(surges[11], 30);
    // The surged fare is the plain fare times the surge (berlin tariff).
    let plain = p
        .settings()
        .tariffs
        .for_city(&City::new("berlin").unwrap())
        .fare_minor(
            quotes[3].fare.distance_m,
            quotes[3].fare.duration_s,
            Surge::NONE,
        );
    assert_eq!(
        quotes[3].fare.amount_minor,
        (plain as f64 * 1.5).round() as u64
    );
}

#[test]
fn drivers_who_are_busy_or_far_do_not_count() {
    let p = Pricer::new(Settings::default());
    p.apply_driver(&driver(0, 52.52, 13.405, DriverStatus::OnTrip));
    p.apply_driver(&driver(1, 52.52, 13.405, DriverStatus::Offline));
    p.apply_driver(&driver(2, 48.8566, 2.3522, DriverStatus::Available));
    let totals = p.apply_driver(&driver(3, 52.40, 13.06, DriverStatus::Available));
    assert_eq!(
        totals,
        SupplyTotals {
            known: 4,
            available: 2
        }
    );
    let q = record_and_quote(&p, &request(0, "berlin", 52.52, 13.405), T0, T0);
    assert_eq!((q.supply, q.surge), (0, p.settings().surge.cap()));
}

#[test]
fn requests_elsewhere_or_long_ago_are_not_demand_here() {
    let p = pricer_with_drivers(1, 52.52, 13.405);
    for i in 0..10 {
        record_and_quote(&p, &request(i, "paris", 48.8566, 2.3522), T0, T0);
        record_and_quote(
            &p,
            &request(100 + i, "berlin", 52.52, 13.405),
            T0 - 3_600_000,
            T0,
        );
    }
    let q = record_and_quote(&p, &request(999, "berlin", 52.52, 13.405), T0, T0);
    assert_eq!((q.demand, q.surge), (1, Surge::NONE));
}

#[test]
fn currency_and_prices_follow_the_city() {
    let p = pricer_with_drivers(50, 51.5072, -0.1276);
    let london = record_and_quote(&p, &request(1, "london", 51.5072, -0.1276), T0, T0);
    let nyc = record_and_quote(&p, &request(2, "nyc", 51.5072, -0.1276), T0, T0);
    let elsewhere = record_and_quote(&p, &request(3, "oslo", 51.5072, -0.1276), T0, T0);
    assert_eq!(london.fare.currency, "GBP");
    assert_eq!(nyc.fare.currency, "USD");
    assert_eq!(elsewhere.fare.currency, "EUR");
    // Same trip: 250 + 125 × km + 20 × min in London.
    let km = london.fare.distance_m / 1000.0;
    let min = f64::from(london.fare.duration_s) / 60.0;
    let expected = (250.0 + 125.0 * km + 20.0 * min).round() as u64;
    assert_eq!(london.fare.amount_minor, expected.max(600));
}

#[test]
fn quoting_does_not_record_and_recorded_demand_counts_wherever_it_is_quoted() {
    let p = pricer_with_drivers(1, 52.52, 13.405);
    let probe = request(0, "berlin", 52.52, 13.405);
    assert_eq!(p.quote(&probe, T0, T0).demand, 0, "nothing recorded yet");
    assert_eq!(
        p.quote(&probe, T0, T0).demand,
        0,
        "quoting recorded nothing"
    );
    // Four requests another instance quotes, seen here through the feed.
    for i in 1..=4 {
        p.record(&request(i, "berlin", 52.52, 13.405), T0);
    }
    let q = p.quote(&probe, T0, T0);
    assert_eq!((q.demand, q.supply), (4, 1));
    assert_eq!(q.surge.tenths(), 25, "4 requests over 1 driver");
}
