//! Arbitrary bodies at `POST /v1/rides`, in-process, with a real nats-server
//! behind the gateway: never a panic, never a 5xx (NATS is up), every refusal
//! a 4xx whose body names the reason, and RIDES holds exactly the rides
//! answered 202, each a valid `RideRequested`.

mod common;

use std::{sync::Mutex, time::Duration};

use axum::http::StatusCode;
use common::Harness;
use hail_events::AnyEvent;
use proptest::{
    prelude::*,
    test_runner::{TestCaseError, TestRunner},
};
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,80}".prop_map(Value::String),
        "[A-Za-z0-9_-]{1,70}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn valid() -> Value {
    json!({"rider":"r-1","city":"berlin","pickup":{"lat":52.52,"lng":13.4},
           "dropoff":{"lat":52.5,"lng":13.45},"device":"d-1","card":"c-1"})
}

const FIELDS: [&str; 8] = [
    "rider",
    "city",
    "pickup",
    "dropoff",
    "device",
    "card",
    "pickup.lat",
    "dropoff.lng",
];

/// A valid body with one field replaced by anything, or removed.
fn mutated() -> impl Strategy<Value = Value> {
    (0..FIELDS.len(), prop::option::of(any_json())).prop_map(|(i, v)| {
        let mut body = valid();
        let path: Vec<&str> = FIELDS[i].split('.').collect();
        let target = match path.as_slice() {
            [f] => (body.as_object_mut().unwrap(), *f),
            [p, f] => (body[*p].as_object_mut().unwrap(), *f),
            _ => unreachable!(),
        };
        match v {
            Some(v) => target.0.insert(target.1.to_string(), v),
            None => target.0.remove(target.1),
        };
        body
    })
}

/// A valid body with arbitrary valid values.
fn valid_random() -> impl Strategy<Value = Value> {
    let id = "[A-Za-z0-9_-]{1,64}";
    (
        (id, id, id),
        prop::sample::select(vec!["berlin", "paris", "london", "nyc", "lisbon"]),
        (
            -90.0..=90.0f64,
            -180.0..=180.0f64,
            -90.0..=90.0f64,
            -180.0..=180.0f64,
        ),
    )
        .prop_map(|((rider, device, card), city, (a, b, c, d))| {
            json!({"rider": rider, "city": city, "pickup": {"lat": a, "lng": b},
                   "dropoff": {"lat": c, "lng": d}, "device": device, "card": card})
        })
}

/// Raw bytes that may not be JSON at all.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        mutated().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        valid_random().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        bytes(),
    ]
}

/// One case: POSTs `body`; a 202's ride id goes into `accepted`.
async fn one(h: &Harness, body: &[u8], accepted: &Mutex<Vec<String>>) -> Result<(), TestCaseError> {
    let (status, answer) = {
        let (status, res) = common::post(
            &h.router(),
            "/v1/rides",
            &[("content-type", "application/json")],
            String::from_utf8_lossy(body).into_owned(),
        )
        .await;
        (status, common::json(res).await)
    };
    if status == StatusCode::ACCEPTED {
        let ride = answer["ride_id"].as_str();
        prop_assert!(ride.is_some(), "{answer}");
        accepted.lock().unwrap().push(ride.unwrap().to_string());
        return Ok(());
    }
    prop_assert!(status.is_client_error(), "{status}: {answer}");
    prop_assert!(
        !answer["message"].as_str().unwrap_or("").is_empty(),
        "{answer}"
    );
    if status == StatusCode::BAD_REQUEST {
        let fields = answer["fields"].as_array().unwrap();
        prop_assert!(!fields.is_empty(), "{answer}");
        for f in fields {
            prop_assert!(!f["field"].as_str().unwrap().is_empty(), "{answer}");
            prop_assert!(!f["reason"].as_str().unwrap().is_empty(), "{answer}");
        }
    }
    Ok(())
}

#[test]
fn any_body_is_a_202_or_a_4xx_with_a_reason_and_only_202s_reach_rides() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(Harness::start(Duration::from_secs(5)));
    let accepted = Mutex::new(Vec::new());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&body(), |b| rt.block_on(one(&h, &b, &accepted)))
        .unwrap();
    // Some mutations leave the body valid: the run must have both kinds.
    let mut accepted = accepted.into_inner().unwrap();
    assert!(
        !accepted.is_empty(),
        "no case was valid: the generator is broken"
    );
    let stored = rt.block_on(h.rides("rides.>"));
    let mut ids: Vec<String> = stored
        .iter()
        .map(|e| match e {
            AnyEvent::Requested(r) => r.ride_id.to_string(),
            other => panic!("not a request in RIDES: {other:?}"),
        })
        .collect();
    ids.sort();
    accepted.sort();
    assert_eq!(ids, accepted, "RIDES holds exactly the rides answered 202");
}
