//! ride-view's records against what RIDES holds: the expected record of
//! every ride, worked out here independently of the service from every message
//! of `rides.>`, and the stored ones, read from the bucket's stream.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, ensure};
use async_nats::jetstream;
use hail_events::{
    AnyEvent, DriverId, Verdict,
    ride_view::{self, RideState, RideView},
    subjects,
};

use crate::rides;

/// One ride as RIDES holds it: every message's (sequence, subject, event
/// name, stored at) in stream order, and the facts its record must show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expected {
    pub steps: Vec<(u64, String, String, u64)>,
    pub state: Option<RideState>,
    pub driver: Option<DriverId>,
    pub fare_minor: Option<u64>,
    pub verdict: Option<Verdict>,
}

/// Every ride's [`Expected`], from every message on `rides.>`. Each fact is
/// the first one stored (lowest sequence); the state is the furthest the
/// ride got: completed, else cancelled, else matched, else unmatched, else
/// requested.
pub async fn expected(js: &jetstream::Context) -> Result<BTreeMap<String, Expected>> {
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    let mut kinds: BTreeMap<String, Vec<RideState>> = BTreeMap::new();
    for msg in rides::stored(js, subjects::RIDES_STREAM, subjects::RIDES_ALL).await? {
        let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (seq, at) = (info.stream_sequence, info.published);
        let event = AnyEvent::decode(&msg.subject, &msg.payload)
            .with_context(|| format!("RIDES #{seq} on {}", msg.subject))?;
        let Some(ride) = event.ride_id() else {
            continue;
        };
        let ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000)?;
        let e = out.entry(ride.to_string()).or_default();
        e.steps
            .push((seq, msg.subject.to_string(), event.name().into(), ms));
        let states = kinds.entry(ride.to_string()).or_default();
        match &event {
            AnyEvent::Matched(m) => {
                e.driver.get_or_insert_with(|| m.driver_id.clone());
                states.push(RideState::Matched);
            }
            AnyEvent::Unmatched(_) => states.push(RideState::Unmatched),
            AnyEvent::Priced(f) => {
                e.fare_minor.get_or_insert(f.amount_minor);
            }
            AnyEvent::Screened(s) => {
                e.verdict.get_or_insert(s.verdict);
            }
            AnyEvent::Completed(_) => states.push(RideState::Completed),
            AnyEvent::Cancelled(_) => states.push(RideState::Cancelled),
            _ => {}
        }
    }
    let order = [
        RideState::Completed,
        RideState::Cancelled,
        RideState::Matched,
        RideState::Unmatched,
    ];
    for (ride, e) in &mut out {
        let states = kinds.get(ride).map(Vec::as_slice).unwrap_or_default();
        e.state = Some(
            order
                .into_iter()
                .find(|s| states.contains(s))
                .unwrap_or(RideState::Requested),
        );
    }
    Ok(out)
}

/// Every record stored in the ride-view bucket, by ride id.
pub async fn stored(js: &jetstream::Context) -> Result<BTreeMap<String, RideView>> {
    let stream = format!("KV_{}", ride_view::BUCKET);
    let filter = format!("$KV.{}.>", ride_view::BUCKET);
    let mut out = BTreeMap::new();
    for msg in rides::stored(js, &stream, &filter).await? {
        let view: RideView = serde_json::from_slice(&msg.payload)
            .with_context(|| format!("record on {}", msg.subject))?;
        out.insert(view.ride_id.to_string(), view);
    }
    Ok(out)
}

/// Checks every ride RIDES holds has its record, right in state, driver,
/// fare, verdict and every step; returns how many rides were checked.
pub async fn check_all(js: &jetstream::Context) -> Result<usize> {
    let want = expected(js).await?;
    let have = stored(js).await?;
    ensure!(
        want.len() == have.len(),
        "RIDES holds {} rides, the bucket {} records",
        want.len(),
        have.len()
    );
    for (ride, e) in &want {
        let v = have
            .get(ride)
            .with_context(|| format!("no record of {ride}"))?;
        check_one(ride, e, v)?;
    }
    Ok(want.len())
}

fn check_one(ride: &str, e: &Expected, v: &RideView) -> Result<()> {
    ensure!(
        Some(v.state) == e.state,
        "{ride}: state {:?}, RIDES says {:?}",
        v.state,
        e.state
    );
    let driver = v.matched.as_ref().map(|m| &m.driver_id);
    ensure!(
        driver == e.driver.as_ref(),
        "{ride}: driver {driver:?}, RIDES says {:?}",
        e.driver
    );
    let fare = v.fare.as_ref().map(|f| f.amount_minor);
    ensure!(
        fare == e.fare_minor,
        "{ride}: fare {fare:?}, RIDES says {:?}",
        e.fare_minor
    );
    let verdict = v.screening.as_ref().map(|s| s.verdict);
    ensure!(
        verdict == e.verdict,
        "{ride}: verdict {verdict:?}, RIDES says {:?}",
        e.verdict
    );
    let steps: Vec<_> = v
        .steps
        .iter()
        .map(|s| (s.seq, s.subject.clone(), s.event.clone(), s.stored_at_ms))
        .collect();
    ensure!(
        steps == e.steps,
        "{ride}: steps {steps:?}, RIDES holds {:?}",
        e.steps
    );
    Ok(())
}
