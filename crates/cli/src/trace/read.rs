//! The bounded lookups behind `hail trace`: never a scan of RIDES or DLQ.
//!
//! - the ride's record in ride-view's bucket (one KV get): its steps are the
//!   RIDES sequences of its events;
//! - each step's message by sequence (`STREAM.MSG.GET`, one request each),
//!   for its headers (`traceparent`);
//! - dead letters: the DLQ has one subject per dead letter,
//!   `dlq.<service>.RIDES.<seq>`, so each (service, step) is one
//!   last-by-subject lookup;
//! - redeliveries: each answering service's fence `fence.<service>.<ride>`
//!   holds a marker only when the ride was answered by a redelivery, a replay
//!   or a late delivery: one last-by-subject lookup each;
//! - every durable's info, for its ack floor.

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{
    self, ErrorCode,
    message::StreamMessage,
    stream::{LastRawMessageErrorKind, RawMessageErrorKind, Stream},
};
use futures::future::join_all;
use hail_events::{
    RideId,
    ride_view::{self, RideView},
    subjects,
};
use hail_runtime::service::Service;

/// The ride's record; a clear error when ride-view never ran or has no
/// record of the ride (saying whether any instance runs and how far behind
/// its durable is).
pub async fn record(js: &jetstream::Context, ride: &RideId) -> Result<RideView> {
    let Ok(kv) = js.get_key_value(ride_view::BUCKET).await else {
        bail!(
            "ride-view is not running here: there is no KV bucket {} (start hail-ride-view; \
             `hail up` starts it)",
            ride_view::BUCKET
        );
    };
    let entry = kv
        .entry(ride_view::key(ride))
        .await
        .with_context(|| format!("cannot read {}/{ride}", ride_view::BUCKET))?;
    match entry {
        Some(e) if e.operation == jetstream::kv::Operation::Put => serde_json::from_slice(&e.value)
            .with_context(|| {
                format!(
                    "the record of {ride} in {} is not a ride view",
                    ride_view::BUCKET
                )
            }),
        _ => bail!(
            "unknown ride {ride}: ride-view has no record of it ({})",
            ride_view_state(js).await
        ),
    }
}

/// Whether ride-view runs and how far behind it is, for the unknown-ride error.
async fn ride_view_state(js: &jetstream::Context) -> String {
    let client = js.client();
    let running = match client
        .request(format!("$SRV.PING.{}", Service::RideView.name()), "".into())
        .await
    {
        Ok(reply) => reply.status.is_none(),
        Err(_) => false,
    };
    let lag = match js.get_stream(subjects::RIDES_STREAM).await {
        Ok(s) => s
            .consumer_info(Service::RideView.durable())
            .await
            .ok()
            .map(|c| c.num_pending + c.num_ack_pending as u64),
        Err(_) => None,
    };
    match (running, lag) {
        (false, _) => "no ride-view instance is running; start hail-ride-view".into(),
        (true, Some(0)) => "ride-view is running and caught up: RIDES holds no event of it".into(),
        (true, Some(n)) => format!("ride-view is running, {n} messages behind: try again shortly"),
        (true, None) => "ride-view is running".into(),
    }
}

/// The message at `seq` in `stream`; `None` when the stream no longer holds it.
pub async fn by_seq(stream: &Stream, seq: u64) -> Result<Option<StreamMessage>> {
    match stream.get_raw_message(seq).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if no_message(&e.kind()) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read #{seq}")),
    }
}

/// The last message on `subject` in `stream`, if any.
pub async fn last_on(stream: &Stream, subject: &str) -> Result<Option<StreamMessage>> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if no_last(&e.kind()) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the last message on {subject}")),
    }
}

/// Each of `seqs` from `stream`, asked at once, in order.
pub async fn all_by_seq(stream: &Stream, seqs: &[u64]) -> Result<Vec<Option<StreamMessage>>> {
    join_all(seqs.iter().map(|seq| by_seq(stream, *seq)))
        .await
        .into_iter()
        .collect()
}

/// The dead letters of the RIDES messages `seqs`, by any service: (service,
/// RIDES sequence, the letter).
pub async fn dead_letters(
    dlq: &Stream,
    seqs: &[u64],
) -> Result<Vec<(Service, u64, StreamMessage)>> {
    let asks = seqs.iter().flat_map(|seq| {
        Service::EVERY.into_iter().map(move |s| async move {
            let subject = subjects::dead_letter(s.name(), subjects::RIDES_STREAM, *seq);
            Ok::<_, anyhow::Error>(last_on(dlq, &subject).await?.map(|m| (s, *seq, m)))
        })
    });
    let found: Result<Vec<_>> = join_all(asks).await.into_iter().collect();
    Ok(found?.into_iter().flatten().collect())
}

/// The answer fence markers of the ride, by service.
pub async fn fences(rides: &Stream, ride: &RideId) -> Result<Vec<(Service, StreamMessage)>> {
    let answering = Service::EVERY
        .into_iter()
        .filter(|s| !s.outputs().is_empty());
    let asks = answering.map(|s| async move {
        let found = last_on(rides, &subjects::fence(s.name(), ride)).await?;
        Ok::<_, anyhow::Error>(found.map(|m| (s, m)))
    });
    let found: Result<Vec<_>> = join_all(asks).await.into_iter().collect();
    Ok(found?.into_iter().flatten().collect())
}

/// Each durable that exists: (name, filters, ack floor).
pub async fn durables(rides: &Stream) -> Vec<(String, Vec<String>, u64)> {
    let asks = Service::EVERY.map(|s| async move {
        let c = rides.consumer_info(s.durable()).await.ok()?;
        let mut filters = c.config.filter_subjects.clone();
        if !c.config.filter_subject.is_empty() {
            filters.push(c.config.filter_subject.clone());
        }
        if filters.is_empty() {
            filters.push(">".into());
        }
        Some((
            s.durable().to_string(),
            filters,
            c.ack_floor.stream_sequence,
        ))
    });
    join_all(asks).await.into_iter().flatten().collect()
}

fn no_message(kind: &RawMessageErrorKind) -> bool {
    match kind {
        RawMessageErrorKind::NoMessageFound => true,
        RawMessageErrorKind::JetStream(j) => j.error_code() == ErrorCode::NO_MESSAGE_FOUND,
        _ => false,
    }
}

fn no_last(kind: &LastRawMessageErrorKind) -> bool {
    match kind {
        LastRawMessageErrorKind::NoMessageFound => true,
        LastRawMessageErrorKind::JetStream(j) => j.error_code() == ErrorCode::NO_MESSAGE_FOUND,
        _ => false,
    }
}
