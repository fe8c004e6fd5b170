//! What a handler sees and what it decides.

use std::future::Future;

use async_nats::{HeaderMap, header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE};
use bytes::Bytes;
use hail_events::{Event, EventError, codec, headers};
use time::OffsetDateTime;

/// One delivered message, as the handler sees it.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// Subject it was published on.
    pub subject: &'a str,
    /// Raw payload.
    pub payload: &'a [u8],
    /// Headers, if any.
    pub headers: Option<&'a HeaderMap>,
    /// Sequence in the stream.
    pub stream_seq: u64,
    /// How many times it has been delivered, this time included.
    pub delivered: i64,
    /// When the stream stored it.
    pub published: OffsetDateTime,
}

impl Delivery<'_> {
    /// Decodes and validates the payload as `E`.
    pub fn decode<E: Event>(&self) -> Result<E, EventError> {
        codec::decode(self.payload)
    }

    /// The `Hail-Event` header when it names a known event type, else `"unknown"`
    /// (safe as a metric label).
    pub fn event_name(&self) -> &'static str {
        event_name(self.headers)
    }
}

pub(crate) fn event_name(h: Option<&HeaderMap>) -> &'static str {
    h.and_then(|h| h.get(headers::EVENT))
        .and_then(|v| {
            hail_events::EVENT_NAMES
                .iter()
                .find(|n| **n == v.as_str())
                .copied()
        })
        .unwrap_or("unknown")
}

/// A message to publish (to JetStream, PubAck awaited) before the input is acked.
#[derive(Debug, Clone)]
pub struct Output {
    /// Subject to publish on.
    pub subject: String,
    /// Encoded event.
    pub payload: Bytes,
    /// Headers, `Nats-Msg-Id` included.
    pub headers: HeaderMap,
    /// Event type name, for metrics.
    pub event: &'static str,
}

impl Output {
    /// Encodes an event with its subject and standard headers. An event about one
    /// ride is an answer, stored at most once: it is published on the ride's own
    /// subject with `Nats-Expected-Last-Subject-Sequence: 0`, so the stream refuses
    /// it when that subject already holds one, at any age (the worker then counts
    /// it as already stored, not as an error).
    ///
    /// ```
    /// let fare = hail_events::sample::fare_quoted("r1", "berlin");
    /// let out = hail_runtime::Output::event(&fare).unwrap();
    /// assert_eq!(out.subject, "rides.priced.berlin.r1");
    /// assert_eq!(out.headers.get("Nats-Expected-Last-Subject-Sequence").unwrap().as_str(), "0");
    /// ```
    pub fn event<E: Event>(event: &E) -> Result<Output, EventError> {
        let mut headers = headers::for_event(event);
        if event.ride_id().is_some() {
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        }
        Ok(Output {
            subject: event.subject(),
            payload: codec::encode(event)?,
            headers,
            event: E::NAME,
        })
    }
}

/// The handler's decision about one message; the runtime maps it to an ack.
#[derive(Debug)]
pub enum Outcome {
    /// Processed: publish these outputs (PubAcks awaited), then ack.
    Done(Vec<Output>),
    /// Failed for now: nak with the consumer's backoff delay; dead-lettered on the
    /// last allowed delivery.
    Retry {
        /// Why, for logs and the dead letter.
        reason: String,
    },
    /// Can never succeed: copy to `dlq.<service>` with the reason, then term.
    Poison {
        /// Short stable name of the reason (a metric label).
        kind: &'static str,
        /// What exactly was wrong.
        reason: String,
    },
}

impl Outcome {
    /// Done with no outputs.
    pub fn done() -> Self {
        Outcome::Done(Vec::new())
    }
}

impl From<EventError> for Outcome {
    fn from(e: EventError) -> Self {
        Outcome::Poison {
            kind: e.kind(),
            reason: e.to_string(),
        }
    }
}

/// A service's logic. The runtime calls it concurrently for many messages, so
/// state inside lives behind its own locks (never held across an `.await`).
pub trait Handler: Send + Sync + 'static {
    /// Decides what to do with one message.
    fn handle(&self, delivery: &Delivery<'_>) -> impl Future<Output = Outcome> + Send;
}
