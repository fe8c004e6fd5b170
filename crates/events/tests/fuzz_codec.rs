//! Property tests standing in for a fuzzer: arbitrary bytes and arbitrary field
//! values through the codec never panic; they give an event or a named error.

use hail_events::{
    DriverLocationUpdated, Event, EventError, FareQuoted, RideCompleted, RideMatched,
    RideRequested, RideScreened, RideUnmatched, codec,
};
use proptest::prelude::*;
use serde::Serialize;

/// Decodes `bytes` as every event type; each answer must be an event that
/// re-encodes, or an error with a kind and a message.
fn decode_all(bytes: &[u8]) {
    fn one<E: Event>(bytes: &[u8]) {
        match codec::decode::<E>(bytes) {
            Ok(e) => {
                codec::encode(&e).expect("a decoded event re-encodes");
            }
            Err(err) => named(&err),
        }
    }
    one::<RideRequested>(bytes);
    one::<DriverLocationUpdated>(bytes);
    one::<RideMatched>(bytes);
    one::<RideUnmatched>(bytes);
    one::<FareQuoted>(bytes);
    one::<RideScreened>(bytes);
    one::<RideCompleted>(bytes);
    let _ = codec::probe(bytes);
}

fn named(err: &EventError) {
    assert!(!err.kind().is_empty());
    assert!(!err.to_string().is_empty());
}

#[derive(Serialize)]
struct P {
    lat: f64,
    lon: f64,
}

#[derive(Serialize)]
struct Body {
    ride_id: String,
    rider_id: String,
    city: String,
    pickup: P,
    dropoff: P,
    requested_at_ms: u64,
    device_id: String,
    card: String,
}

#[derive(Serialize)]
struct Env {
    v: u16,
    t: String,
    e: Body,
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        -200.0..200.0f64,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_valid_events_never_panic(i in 0usize..200, b in any::<u8>()) {
        let mut bytes = codec::encode(&hail_events::sample::ride_requested("r-1", "berlin")).unwrap().to_vec();
        let at = i % bytes.len();
        bytes[at] = b;
        decode_all(&bytes);
        bytes.truncate(at);
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_field_values_give_an_event_or_a_named_error(
        v in 0u16..4,
        t in prop_oneof![Just("RideRequested".to_string()), ".{0,20}"],
        ride in ".{0,80}", rider in ".{0,80}", city in ".{0,20}", device in ".{0,8}", card in ".{0,8}",
        lat in any_f64(), lon in any_f64(), lat2 in any_f64(), lon2 in any_f64(),
        at in any::<u64>(),
    ) {
        let env = Env { v, t, e: Body {
            ride_id: ride, rider_id: rider, city, pickup: P { lat, lon }, dropoff: P { lat: lat2, lon: lon2 },
            requested_at_ms: at, device_id: device, card,
        }};
        let bytes = rmp_serde::to_vec_named(&env).unwrap();
        decode_all(&bytes);
        if let Ok(e) = codec::decode::<RideRequested>(&bytes) {
            // Whatever decodes is valid: in-range finite coordinates, subject-safe ids.
            prop_assert!(e.pickup.lat().is_finite() && e.pickup.lat().abs() <= 90.0);
            prop_assert!(!e.subject().contains(' '));
        }
    }
}
