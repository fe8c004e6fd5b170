//! An in-process gateway in front of a real nats-server, driven with
//! `tower::ServiceExt::oneshot` on its router.

#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream;
use axum::{
    Router,
    body::Body,
    http::{Request, Response, StatusCode},
};
use hail_events::{AnyEvent, subjects};
use hail_gateway::{Parts, cities::Cities, routes::ApiSettings};
use hail_runtime::{provision, replicas::Replicas};
use hail_testkit::NatsServer;
use tower::ServiceExt as _;

/// The local stack's cities file.
pub const CITIES: &str = include_str!("../../../../deploy/local/cities.toml");

/// A valid request body in berlin for `rider`.
pub fn body(rider: &str) -> String {
    format!(
        r#"{{"rider":"{rider}","city":"berlin","pickup":{{"lat":52.52,"lng":13.405}},"dropoff":{{"lat":52.5,"lng":13.45}},"device":"dev-{rider}","card":"card-{rider}"}}"#
    )
}

/// A nats-server with hail's streams, and a gateway connected to it.
pub struct Harness {
    pub nats: NatsServer,
    pub js: jetstream::Context,
    pub parts: Parts,
}

impl Harness {
    /// Starts nats-server, creates the streams, connects a gateway with a
    /// `timeout` for NATS answers.
    pub async fn start(timeout: Duration) -> Harness {
        let nats = NatsServer::start().expect("nats-server starts");
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        provision::ensure_streams(&js, &provision::StreamSettings::default())
            .await
            .unwrap();
        let parts = gateway(&nats, timeout).await;
        Harness { nats, js, parts }
    }

    /// The router.
    pub fn router(&self) -> Router {
        self.parts.router.clone()
    }

    /// Every event RIDES holds on `filter`, decoded.
    pub async fn rides(&self, filter: &str) -> Vec<AnyEvent> {
        read(&self.js, filter).await
    }
}

/// A fresh gateway (as after a restart) connected to `nats`.
pub async fn gateway(nats: &NatsServer, timeout: Duration) -> Parts {
    let cities = Cities::parse(CITIES, "cities.toml").unwrap();
    let settings = ApiSettings {
        retry_after_s: 1,
        ..Default::default()
    };
    let parts = hail_gateway::build(cities, settings).unwrap();
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .connect(nats.url())
        .await
        .unwrap();
    hail_gateway::connect(&parts, client, Replicas::Auto, timeout)
        .await
        .unwrap();
    parts
}

/// Every message of RIDES on `filter`, decoded as an event (a message that
/// is not a valid event fails the test: nothing bad may reach RIDES).
pub async fn read(js: &jetstream::Context, filter: &str) -> Vec<AnyEvent> {
    let mut stream = js.get_stream(subjects::RIDES_STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let Ok(msg) = stream.get_raw_message(seq).await else {
            continue;
        };
        if !subject_matches(&msg.subject, filter) {
            continue;
        }
        let event = AnyEvent::decode(&msg.subject, &msg.payload).unwrap_or_else(|e| {
            panic!(
                "RIDES seq {seq} on {} is not a valid event: {e}",
                msg.subject
            )
        });
        out.push(event);
    }
    out
}

fn subject_matches(subject: &str, filter: &str) -> bool {
    match filter.strip_suffix('>') {
        Some(prefix) => subject.starts_with(prefix),
        None => subject == filter,
    }
}

/// POST `body` to `path` with `headers`.
pub async fn post(
    router: &Router,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (StatusCode, Response<Body>) {
    let mut req = Request::post(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    (res.status(), res)
}

/// GET `path`.
pub async fn get(router: &Router, path: &str) -> (StatusCode, serde_json::Value) {
    let res = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    (status, json(res).await)
}

/// A response's body as JSON.
pub async fn json(res: Response<Body>) -> serde_json::Value {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// POST a valid ride with an optional idempotency key; (status, body).
pub async fn request(
    router: &Router,
    rider: &str,
    key: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    let (status, res) = post(router, "/v1/rides", &headers, body(rider)).await;
    (status, json(res).await)
}
