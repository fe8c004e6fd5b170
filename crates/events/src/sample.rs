//! Small valid events for examples, tests and benchmarks.

use crate::{
    AnyEvent, CardFingerprint, City, DeviceId, DriverId, DriverLocationUpdated, DriverStatus,
    FareQuoted, LatLng, RideCancelled, RideCompleted, RideId, RideMatched, RideRequested,
    RideScreened, RideUnmatched, RiderId, UnmatchedReason, Verdict,
};

/// A valid request in `city` with pickup and drop-off a few kilometres apart.
pub fn ride_requested(ride: &str, city: &str) -> RideRequested {
    RideRequested {
        ride_id: RideId::new(ride).expect("sample ride id"),
        rider_id: RiderId::new(format!("rider-{ride}")).expect("sample rider id"),
        city: City::new(city).expect("sample city"),
        pickup: LatLng::new(52.520, 13.405).expect("sample pickup"),
        dropoff: LatLng::new(52.500, 13.450).expect("sample dropoff"),
        requested_at_ms: 1_800_000_000_000,
        device_id: DeviceId::new(format!("dev-{ride}")).expect("sample device"),
        card: CardFingerprint::new(format!("card-{ride}")).expect("sample card"),
    }
}

/// A valid fare quote.
pub fn fare_quoted(ride: &str, city: &str) -> FareQuoted {
    FareQuoted {
        ride_id: RideId::new(ride).expect("sample ride id"),
        city: City::new(city).expect("sample city"),
        amount_minor: 1250,
        currency: "EUR".into(),
        surge: 1.0,
        distance_m: 3_800.0,
        duration_s: 600,
        requested_at_ms: 1_800_000_000_000,
        at_ms: 1_800_000_000_050,
    }
}

/// A request encoded without validation, with the given pickup, so tests can make
/// the invalid payloads a buggy or hostile publisher would send.
pub fn ride_requested_raw(ride: &str, city: &str, lat: f64, lon: f64) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct P {
        lat: f64,
        lon: f64,
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        ride_id: &'a str,
        rider_id: &'a str,
        city: &'a str,
        pickup: P,
        dropoff: P,
        requested_at_ms: u64,
        device_id: &'a str,
        card: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Env<'a> {
        v: u16,
        t: &'a str,
        e: Body<'a>,
    }
    let body = Body {
        ride_id: ride,
        rider_id: "rider-x",
        city,
        pickup: P { lat, lon },
        dropoff: P {
            lat: 52.5,
            lon: 13.45,
        },
        requested_at_ms: 1_800_000_000_000,
        device_id: "dev-x",
        card: "card-x",
    };
    rmp_serde::to_vec_named(&Env {
        v: 1,
        t: "RideRequested",
        e: body,
    })
    .expect("encode raw sample")
}

/// A valid match of `ride`.
pub fn ride_matched(ride: &str, city: &str) -> RideMatched {
    RideMatched {
        ride_id: RideId::new(ride).expect("sample ride id"),
        city: City::new(city).expect("sample city"),
        driver_id: DriverId::new(format!("driver-{ride}")).expect("sample driver id"),
        pickup_distance_m: 420.0,
        eta_s: 90,
        requested_at_ms: 1_800_000_000_000,
        matched_at_ms: 1_800_000_000_040,
    }
}

/// A valid cancellation of `ride` by its rider.
pub fn ride_cancelled(ride: &str, city: &str) -> RideCancelled {
    RideCancelled {
        ride_id: RideId::new(ride).expect("sample ride id"),
        city: City::new(city).expect("sample city"),
        rider_id: Some(RiderId::new(format!("rider-{ride}")).expect("sample rider id")),
        at_ms: 1_800_000_000_500,
        reason: Some("changed my mind".into()),
    }
}

/// One valid event of every kind, in [`EventKind::ALL`](crate::EventKind::ALL) order.
pub fn one_of_each(ride: &str, city: &str) -> Vec<AnyEvent> {
    let c = || City::new(city).expect("sample city");
    let r = || RideId::new(ride).expect("sample ride id");
    let matched = ride_matched(ride, city);
    let driver = matched.driver_id.clone();
    vec![
        ride_requested(ride, city).into(),
        DriverLocationUpdated {
            driver_id: driver.clone(),
            city: c(),
            position: LatLng::new(52.510, 13.400).expect("sample position"),
            status: DriverStatus::Available,
            at_ms: 1_800_000_000_000,
        }
        .into(),
        matched.into(),
        RideUnmatched {
            ride_id: r(),
            city: c(),
            reason: UnmatchedReason::AllNearbyClaimed,
            requested_at_ms: 1_800_000_000_000,
            at_ms: 1_800_000_000_030,
        }
        .into(),
        fare_quoted(ride, city).into(),
        RideScreened {
            ride_id: r(),
            city: c(),
            rider_id: RiderId::new(format!("rider-{ride}")).expect("sample rider id"),
            score: 0.1,
            verdict: Verdict::Allow,
            rules: vec!["new_device".into()],
            requested_at_ms: 1_800_000_000_000,
            at_ms: 1_800_000_000_020,
        }
        .into(),
        RideCompleted {
            ride_id: r(),
            city: c(),
            driver_id: driver,
            at_ms: 1_800_000_900_000,
        }
        .into(),
        ride_cancelled(ride, city).into(),
    ]
}
