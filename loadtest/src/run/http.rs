//! `--via http`: the same rides, POSTed to hail-gateway instead of published.
//!
//! Each ride goes out as `POST /v1/rides` with its own id (`<run-id>-<i>`) as
//! the `Idempotency-Key`. The gateway derives the ride's id from the key
//! ([`hail_gateway::idempotency::ride_id_for_key`]), so the run knows it before
//! the answer and can match the services' answers to the ride
//! ([`Demand::alias`]). A ride counts as stored when the gateway answers `202`
//! (which it does only after JetStream's PubAck); its publish latency is from
//! the POST to the 202. A `503` fails as `unavailable`, another status as
//! `http_<status>`, no answer as `http_error`. The client keeps connections
//! alive in a pool, one per request in flight at most.

use std::sync::{Arc, Mutex};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use hail_events::RideRequested;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::{
    demand::Demand,
    ledger::{Ledger, lock},
    load::Job,
    schedule::{Arrival, Clock},
};

/// How rides are requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// Published to RIDES with a JetStream client.
    Nats,
    /// POSTed to hail-gateway.
    Http,
}

/// An HTTP client with keep-alive and a pool of up to `window` idle connections.
pub fn client(window: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(window)
        .tcp_nodelay(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("an HTTP client with these settings builds")
}

/// The body of `POST /v1/rides` for `ride` (the gateway's field names).
pub fn body(ride: &RideRequested) -> String {
    serde_json::json!({
        "rider": ride.rider_id.as_str(),
        "city": ride.city.as_str(),
        "pickup": {"lat": ride.pickup.lat(), "lng": ride.pickup.lon()},
        "dropoff": {"lat": ride.dropoff.lat(), "lng": ride.dropoff.lon()},
        "device": ride.device_id.as_str(),
        "card": ride.card.as_str(),
    })
    .to_string()
}

/// What became of one POST.
struct Posted {
    index: u64,
    sent_us: u64,
    result: Result<(), (&'static str, String)>,
    _permit: OwnedSemaphorePermit,
}

/// POSTs every job to `base` until the window is closed, then waits for the
/// answers still in flight.
pub async fn post_rides(
    client: reqwest::Client,
    base: String,
    demand: Arc<Demand>,
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    mut jobs: mpsc::Receiver<Job>,
) {
    let url = format!("{base}/v1/rides");
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Posted>> = FuturesUnordered::new();
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => {
                    if let Some(f) = post(&client, &url, &demand, &ledger, &clock, job) {
                        in_flight.push(f);
                    }
                }
                None => break,
            },
            Some(done) = in_flight.next() => settle(&ledger, &clock, done),
        }
    }
    while let Some(done) = in_flight.next().await {
        settle(&ledger, &clock, done);
    }
}

fn post(
    client: &reqwest::Client,
    url: &str,
    demand: &Demand,
    ledger: &Mutex<Ledger>,
    clock: &Clock,
    job: Job,
) -> Option<BoxFuture<'static, Posted>> {
    let Arrival { index, at_us } = job.arrival;
    let ride = match demand.ride(index, at_us, clock.wall_ms(at_us)) {
        Ok(r) => r,
        Err(e) => {
            lock(ledger).failed(index, "invalid_event", || e.to_string(), clock.elapsed_us());
            return None;
        }
    };
    let key = ride.ride_id.to_string();
    // Known before the answer: the services' answers may come before the 202.
    let gateway_id = hail_gateway::idempotency::ride_id_for_key(key.as_bytes());
    demand.alias(gateway_id.as_str(), index);
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body(&ride));
    let sent_us = clock.elapsed_us();
    Some(
        async move {
            let result = match request.send().await {
                Ok(res) if res.status().as_u16() == 202 => Ok(()),
                Ok(res) => {
                    let status = res.status().as_u16();
                    let text = res.text().await.unwrap_or_default();
                    let kind = if status == 503 {
                        "unavailable"
                    } else {
                        http_kind(status)
                    };
                    Err((kind, format!("{status}: {text}")))
                }
                Err(e) => Err(("http_error", e.to_string())),
            };
            Posted {
                index,
                sent_us,
                result,
                _permit: job.permit,
            }
        }
        .boxed(),
    )
}

/// The failure kind of an HTTP status (bounded: the statuses the gateway answers).
fn http_kind(status: u16) -> &'static str {
    match status {
        400 => "http_400",
        413 => "http_413",
        415 => "http_415",
        422 => "http_422",
        s if s >= 500 => "http_5xx",
        _ => "http_other",
    }
}

fn settle(ledger: &Mutex<Ledger>, clock: &Clock, done: Posted) {
    let now = clock.elapsed_us();
    let mut l = lock(ledger);
    match done.result {
        Ok(()) => l.stored(done.index, done.sent_us, now, false),
        Err((kind, text)) => l.failed(done.index, kind, || text, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_what_the_gateway_reads() {
        let ride = hail_events::sample::ride_requested("r-1", "berlin");
        let cities = hail_gateway::cities::Cities::any();
        let parsed = hail_gateway::request::validate(body(&ride).as_bytes(), &cities).unwrap();
        assert_eq!(
            parsed.event(ride.ride_id.clone(), ride.requested_at_ms),
            ride
        );
    }
}
