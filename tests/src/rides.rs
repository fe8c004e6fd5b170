//! Creating hail's streams, publishing ride requests and other events, and
//! reading back what the stream and consumers hold.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::DeliverPolicy};
use futures::StreamExt;
use hail_events::{Event, codec, headers, sample, subjects};
use hail_runtime::provision::{StreamSettings, ensure_streams};

/// Cities the test rides are spread over.
pub const CITIES: [&str; 3] = ["berlin", "paris", "lisbon"];

/// A valid request with id `<prefix>-<i>`.
pub fn ride(prefix: &str, i: usize) -> hail_events::RideRequested {
    sample::ride_requested(&format!("{prefix}-{i}"), CITIES[i % CITIES.len()])
}

/// Connects to `nats_url` and creates hail's streams ([`ensure_test_streams`]);
/// the JetStream context.
pub async fn streams(nats_url: &str) -> Result<jetstream::Context> {
    let js = jetstream::new(async_nats::connect(nats_url).await?);
    ensure_test_streams(&js).await?;
    Ok(js)
}

/// Creates hail's streams as the tests use them, before any service starts:
/// RIDES keeping an hour and at most 1 GiB, on one replica.
pub async fn ensure_test_streams(js: &jetstream::Context) -> Result<()> {
    let settings = StreamSettings {
        rides_max_age: Duration::from_secs(3600),
        rides_max_bytes: 1 << 30,
        ..StreamSettings::default()
    };
    Ok(ensure_streams(js, &settings).await?)
}

/// Publishes rides `from..to` of `prefix`, awaiting PubAcks in windows of 1,000.
pub async fn publish(js: &jetstream::Context, prefix: &str, from: usize, to: usize) -> Result<()> {
    publish_all(js, (from..to).map(|i| ride(prefix, i))).await
}

/// Publishes `events` in order, awaiting PubAcks in windows of 1,000.
pub async fn publish_all<E: Event>(
    js: &jetstream::Context,
    events: impl IntoIterator<Item = E>,
) -> Result<()> {
    publish_all_with(js, events, |e| headers::for_event(e)).await
}

/// [`publish_all`] with the headers of each event from `headers_of` (for
/// example a changed message id, so JetStream stores a second copy).
pub async fn publish_all_with<E: Event>(
    js: &jetstream::Context,
    events: impl IntoIterator<Item = E>,
    headers_of: impl Fn(&E) -> async_nats::HeaderMap,
) -> Result<()> {
    let mut pending = Vec::with_capacity(1000);
    for e in events {
        let ack = js
            .publish_with_headers(e.subject(), headers_of(&e), codec::encode(&e)?)
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

/// Every event of type `E` stored on `filter` in `stream`, oldest first.
pub async fn stored_events<E: Event>(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<Vec<E>> {
    let messages = stored(js, stream, filter).await?;
    Ok(messages
        .iter()
        .map(|m| codec::decode(&m.payload))
        .collect::<Result<_, _>>()?)
}

/// A spread in [-1, 1) for item `i`, different per `salt` (splitmix64): the
/// same positions in every run without a random number generator.
pub fn spread(i: usize, salt: u64) -> f64 {
    let mut z = (i as u64).wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
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

/// Every message stored on `filter` in `stream`, oldest first.
pub async fn stored(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<Vec<jetstream::Message>> {
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
        out.push(msg);
    }
    Ok(out)
}

/// Every message on `filter` in `stream`: (count, distinct `Hail-Ride-Id`s).
pub async fn read_subject(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<(usize, HashSet<String>)> {
    let messages = stored(js, stream, filter).await?;
    let ids = messages
        .iter()
        .filter_map(|msg| msg.headers.as_ref()?.get(headers::RIDE_ID))
        .map(|id| id.to_string())
        .collect();
    Ok((messages.len(), ids))
}

/// The dead letters of one service: (reason kind, reason) of each.
pub async fn dead_letters(js: &jetstream::Context, service: &str) -> Result<Vec<(String, String)>> {
    let messages = stored(js, subjects::DLQ_STREAM, &subjects::dlq(service)).await?;
    Ok(messages
        .iter()
        .map(|msg| {
            let h = msg.headers.clone().unwrap_or_default();
            let get = |k: &str| h.get(k).map(|v| v.to_string()).unwrap_or_default();
            (get(headers::dlq::REASON_KIND), get(headers::dlq::REASON))
        })
        .collect())
}
