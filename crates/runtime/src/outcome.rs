//! What a handler sees and what it decides.

use std::future::Future;

use async_nats::HeaderMap;
use bytes::Bytes;
use hail_events::{Event, EventError, RideId, codec, headers, trace::TraceContext};
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
    /// The ride it answers, for an event about one ride: the worker stores at
    /// most one answer per ride and service ([`crate::fence`]).
    pub ride: Option<RideId>,
}

impl Output {
    /// Encodes an event with its subject and standard headers but the
    /// `traceparent`, which [`Output::in_trace`] sets. An event about one
    /// ride names the ride: the worker then stores it only if the service has
    /// not answered that ride yet, at any age ([`crate::fence`]).
    ///
    /// ```
    /// let fare = hail_events::sample::fare_quoted("r1", "berlin");
    /// let out = hail_runtime::Output::event(&fare).unwrap();
    /// assert_eq!(out.subject, "rides.priced.berlin");
    /// assert_eq!(out.ride.unwrap().as_str(), "r1");
    /// ```
    pub fn event<E: Event>(event: &E) -> Result<Output, EventError> {
        Ok(Output {
            subject: event.subject(),
            payload: codec::encode(event)?,
            // The worker gives every output its span of the input's trace
            // ([`Output::in_trace`]): no root context drawn here to be replaced.
            headers: headers::untraced(event),
            event: E::NAME,
            ride: event.ride_id().cloned(),
        })
    }

    /// The output as a hop of `parent`'s trace: its `traceparent` becomes a
    /// new span ([`TraceContext::child`]) of the input's context. The worker
    /// does this to every output, so a service's answers share the trace id
    /// of the request they answer.
    ///
    /// ```
    /// use hail_events::trace::TraceContext;
    /// let request = TraceContext::root();
    /// let out = hail_runtime::Output::event(&hail_events::sample::fare_quoted("r1", "berlin"))
    ///     .unwrap()
    ///     .in_trace(&request);
    /// let t = TraceContext::from_headers(Some(&out.headers)).unwrap();
    /// assert_eq!(t.trace_id(), request.trace_id());
    /// assert_ne!(t.span_id(), request.span_id());
    /// ```
    pub fn in_trace(mut self, parent: &TraceContext) -> Self {
        let span = parent.child().to_header();
        self.headers.insert(headers::TRACEPARENT, span.as_str());
        self
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

    /// `done`, `retry` or `poison`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Done(_) => "done",
            Outcome::Retry { .. } => "retry",
            Outcome::Poison { .. } => "poison",
        }
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
