//! Rebuilding the history at start, before the durable is bound.
//!
//! The history is not stored anywhere: RIDES already holds every request. At
//! start, fraud reads back `rides.requested.>` with an ordered consumer from one
//! horizon (plus the clock skew) before the oldest request its durable has not
//! acknowledged, up to the last one the durable was given. Everything after that
//! the durable delivers anyway, and anything read twice (an unacknowledged request
//! that is also redelivered) is recorded once, since the history is keyed by ride.
//! Starting from the ack floor rather than from now means a service that was down
//! for hours still has the history of the requests it catches up on.

use std::{sync::Mutex, time::Instant};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    context::ConsumerInfoErrorKind,
    stream::Stream,
};
use futures::StreamExt;
use hail_events::{RideRequested, codec, subjects};
use time::OffsetDateTime;

use crate::{handler::unix_ms, history::Sighting, screener::Screener};

/// The stretch of RIDES to read back.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    from: DeliverPolicy,
    /// Last stream sequence to read (the durable's last delivered).
    to_seq: u64,
}

/// Reads the requests the durable `durable` has already been given (within the
/// horizon) into `screener`; returns how many were recorded.
pub async fn rebuild(
    js: &jetstream::Context,
    durable: &str,
    screener: &Mutex<Screener>,
    lookback: std::time::Duration,
) -> Result<u64> {
    let started = Instant::now();
    let stream = js
        .get_stream(subjects::RIDES_STREAM)
        .await
        .context("cannot open the RIDES stream")?;
    let Some(span) = span(&stream, durable, lookback).await? else {
        tracing::info!(
            durable,
            "no history to replay: the durable has not been given anything"
        );
        return Ok(0);
    };
    let recorded = read(&stream, span, screener).await?;
    tracing::info!(
        recorded,
        to_seq = span.to_seq,
        elapsed = ?started.elapsed(),
        "history replayed"
    );
    Ok(recorded)
}

/// Where to start and stop, from the durable's state; None on a first start.
async fn span(
    stream: &Stream,
    durable: &str,
    lookback: std::time::Duration,
) -> Result<Option<Span>> {
    let info = match stream.consumer_info(durable).await {
        Ok(info) => info,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read consumer {durable}")),
    };
    let to_seq = info.delivered.stream_sequence;
    if to_seq == 0 {
        return Ok(None);
    }
    let floor = info.ack_floor.stream_sequence;
    let from = match stream.get_raw_message(floor.max(1)).await {
        Ok(msg) => DeliverPolicy::ByStartTime {
            start_time: msg.time - lookback,
        },
        // The floor aged out of the stream: so did everything before it.
        Err(e) => {
            tracing::debug!(floor, error = %e, "ack floor not in the stream; replaying from its start");
            DeliverPolicy::All
        }
    };
    Ok(Some(Span { from, to_seq }))
}

async fn read(stream: &Stream, span: Span, screener: &Mutex<Screener>) -> Result<u64> {
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subjects::RIDES_REQUESTED_ALL.into(),
            deliver_policy: span.from,
            ..Default::default()
        })
        .await
        .context("cannot create the replay consumer on RIDES")?;
    let available = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.context("cannot read RIDES")?;
    let (mut read, mut recorded) = (0u64, 0u64);
    while read < available {
        let msg = messages
            .next()
            .await
            .context("RIDES ended while replaying")?
            .context("replaying RIDES")?;
        read += 1;
        let info = msg
            .info()
            .map_err(|e| anyhow::anyhow!("replayed message without metadata: {e}"))?;
        if info.stream_sequence > span.to_seq {
            break;
        }
        if record(&msg.payload, info.published, screener) {
            recorded += 1;
        }
        if info.stream_sequence == span.to_seq {
            break;
        }
    }
    Ok(recorded)
}

/// Records one replayed request; undecodable ones are skipped here (the durable
/// dead-letters them with the reason).
fn record(payload: &[u8], stored: OffsetDateTime, screener: &Mutex<Screener>) -> bool {
    match codec::decode::<RideRequested>(payload) {
        Ok(req) => screener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(&Sighting::of(&req, unix_ms(stored))),
        Err(e) => {
            tracing::debug!(error = %e, "skipping an undecodable request in the replay");
            false
        }
    }
}
