//! Publishing ride requests and reading back what the stream and consumers hold.

use std::collections::HashSet;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::DeliverPolicy};
use futures::StreamExt;
use hail_events::{Event, codec, headers, sample, subjects};

/// Cities the test rides are spread over.
pub const CITIES: [&str; 3] = ["berlin", "paris", "lisbon"];

/// A valid request with id `<prefix>-<i>`.
pub fn ride(prefix: &str, i: usize) -> hail_events::RideRequested {
    sample::ride_requested(&format!("{prefix}-{i}"), CITIES[i % CITIES.len()])
}

/// Publishes rides `from..to` of `prefix`, awaiting PubAcks in windows of 1,000.
pub async fn publish(js: &jetstream::Context, prefix: &str, from: usize, to: usize) -> Result<()> {
    let mut pending = Vec::with_capacity(1000);
    for i in from..to {
        let r = ride(prefix, i);
        let ack = js
            .publish_with_headers(r.subject(), headers::for_event(&r), codec::encode(&r)?)
            .await?;
        pending.push(ack);
        if pending.len() == 1000 {
            for a in pending.drain(..) {
                a.await.context("publish not acknowledged")?;
            }
        }
    }
    for a in pending {
        a.await.context("publish not acknowledged")?;
    }
    Ok(())
}

/// Publishes raw bytes on a subject with an optional message id, PubAck awaited.
pub async fn publish_raw(
    js: &jetstream::Context,
    subject: &str,
    payload: Vec<u8>,
    event: Option<&str>,
) -> Result<u64> {
    let mut h = async_nats::HeaderMap::new();
    if let Some(e) = event {
        h.insert(headers::EVENT, e);
    }
    let ack = js
        .publish_with_headers(subject.to_string(), h, payload.into())
        .await?
        .await?;
    Ok(ack.sequence)
}

/// (num_pending, num_ack_pending) of a durable on RIDES.
pub async fn consumer_backlog(js: &jetstream::Context, durable: &str) -> Result<(u64, usize)> {
    let mut stream = js.get_stream(subjects::RIDES_STREAM).await?;
    let info = stream.consumer_info(durable).await?;
    let _ = &mut stream;
    Ok((info.num_pending, info.num_ack_pending))
}

/// True once a durable has nothing pending and nothing unacknowledged.
pub async fn drained(js: &jetstream::Context, durable: &str) -> bool {
    matches!(consumer_backlog(js, durable).await, Ok((0, 0)))
}

/// Every message on `filter` in `stream`: (count, distinct `Hail-Ride-Id`s).
pub async fn read_subject(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<(usize, HashSet<String>)> {
    let ids = read_all(js, stream, filter, |msg| {
        let id = msg.headers.as_ref().and_then(|h| h.get(headers::RIDE_ID));
        Ok(id.map(|v| v.to_string()))
    })
    .await?;
    Ok((ids.len(), ids.into_iter().flatten().collect()))
}

/// The dead letters of one service: (reason kind, reason) of each.
pub async fn dead_letters(js: &jetstream::Context, service: &str) -> Result<Vec<(String, String)>> {
    read_all(js, subjects::DLQ_STREAM, &subjects::dlq(service), |msg| {
        let h = msg.headers.clone().unwrap_or_default();
        let get = |k: &str| h.get(k).map(|v| v.to_string()).unwrap_or_default();
        Ok((get(headers::dlq::REASON_KIND), get(headers::dlq::REASON)))
    })
    .await
}

/// Every message on `filter` in `stream` when called, in stream order, each
/// turned into a `T` by `each`.
pub async fn read_all<T>(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
    mut each: impl FnMut(&jetstream::Message) -> Result<T>,
) -> Result<Vec<T>> {
    let consumer = js
        .get_stream(stream)
        .await?
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let total = consumer.cached_info().num_pending as usize;
    let mut out = Vec::with_capacity(total);
    let mut messages = consumer.messages().await?;
    while out.len() < total {
        let msg = messages
            .next()
            .await
            .context("ordered consumer ended early")??;
        out.push(each(&msg)?);
    }
    Ok(out)
}
