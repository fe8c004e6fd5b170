//! The services' answers, heard on core NATS subscriptions.
//!
//! Outputs are stored in RIDES, but a plain subscription sees each as it is
//! published, without a consumer of the generator's own on the stream. Only the
//! `Hail-Ride-Id` header is read, except for a RideMatched (the fleet needs its
//! driver), a RideUnmatched (the reason is counted) and a FareQuoted (its surge is
//! counted).

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use async_nats::{Client, Message, Subscriber};
use futures::StreamExt;
use hail_events::{AnyEvent, DriverId, RideId, headers};
use hail_runtime::service::Service;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    demand::Demand,
    ledger::{Answer, Ledger, lock},
    schedule::Clock,
    surge::Place,
};

/// The subjects of every answer to a request: every service's outputs.
pub fn answer_subjects() -> impl Iterator<Item = &'static str> {
    Service::ALL.into_iter().flat_map(Service::outputs).copied()
}

/// A ride of this run got a driver: its trip can start.
#[derive(Debug, Clone)]
pub struct MatchedRide {
    pub index: u64,
    /// When the ride was meant to be requested, microseconds after the start.
    pub intended_us: u64,
    pub ride: RideId,
    pub driver: DriverId,
    /// When it was heard, microseconds after the start.
    pub at_us: u64,
}

/// Subscribes to every answer subject, and makes sure the server has the
/// subscriptions before the first ride goes out.
pub async fn subscribe(client: &Client, url: &str) -> Result<Vec<Subscriber>> {
    let mut subs = Vec::new();
    for subject in answer_subjects() {
        let sub = client
            .subscribe(subject)
            .await
            .with_context(|| format!("subscribing to {subject} at {url}"))?;
        subs.push(sub);
    }
    client
        .flush()
        .await
        .with_context(|| format!("flushing the subscriptions to {url}"))?;
    Ok(subs)
}

/// Records every answer until `stop`; the matched rides of this run go to `matched`.
pub async fn listen(
    subs: Vec<Subscriber>,
    demand: Arc<Demand>,
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    matched: mpsc::Sender<MatchedRide>,
    stop: CancellationToken,
) {
    let mut all = futures::stream::select_all(subs);
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            msg = all.next() => msg,
        };
        let Some(msg) = msg else {
            tracing::warn!("answer subscriptions closed; answers from now on are missed");
            return;
        };
        if let Some(m) = heard(&msg, &demand, &ledger, clock.elapsed_us()) {
            // Bounded: if the fleet lags this far, hearing answers waits for it.
            if matched.send(m).await.is_err() {
                return;
            }
        }
    }
}

/// Enters one answer in the ledger; a first RideMatched of this run is returned.
fn heard(
    msg: &Message,
    demand: &Demand,
    ledger: &Mutex<Ledger>,
    now_us: u64,
) -> Option<MatchedRide> {
    let answer = Answer::of_subject(&msg.subject)?;
    let ride = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::RIDE_ID))
        .map(|v| v.as_str());
    let index = ride.and_then(|r| demand.index_of(r));
    // Decoded outside the lock; only what the ledger and the fleet need.
    let event = index.and_then(|_| decode(answer, msg));
    let mut l = lock(ledger);
    if !l.answer(index, answer, now_us) {
        return None;
    }
    match event? {
        AnyEvent::Unmatched(u) => {
            l.unmatched_because(u.reason.as_str());
            None
        }
        AnyEvent::Priced(q) => {
            let (i, intended) = (index?, l.intended(index?)?);
            let place = match demand.trip(i, intended) {
                Ok(t) if demand.in_wave_hotspot(&t, intended) => Place::WaveHotspot,
                Ok(t) if demand.away_from_hotspots(&t, intended) => Place::Background,
                _ => Place::Other,
            };
            l.surge.add(q.city.as_str(), q.surge, place);
            None
        }
        AnyEvent::Matched(m) => Some(MatchedRide {
            intended_us: l.intended(index?)?,
            index: index?,
            ride: m.ride_id,
            driver: m.driver_id,
            at_us: now_us,
        }),
        _ => None,
    }
}

/// The event of an answer whose body the run needs: a RideMatched, a
/// RideUnmatched or a FareQuoted. The others are not decoded.
fn decode(answer: Answer, msg: &Message) -> Option<AnyEvent> {
    if !matches!(answer, Answer::Matched | Answer::Unmatched | Answer::Priced) {
        return None;
    }
    AnyEvent::decode(&msg.subject, &msg.payload)
        .map_err(|e| tracing::warn!(error = %e, "undecodable answer; its ride counts as answered"))
        .ok()
}
