//! The headers every hail message carries, with its W3C `traceparent`
//! ([`crate::trace`]).

use async_nats::HeaderMap;

use crate::{Event, trace::TraceContext};

/// JetStream's de-duplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The event type name.
pub const EVENT: &str = "Hail-Event";
/// The ride the event belongs to.
pub const RIDE_ID: &str = "Hail-Ride-Id";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Always `application/msgpack`.
pub const CONTENT_TYPE: &str = "Content-Type";
/// The payload encoding.
pub const MSGPACK: &str = "application/msgpack";

/// On a message replayed from the DLQ: the one service it is for. The other
/// services acknowledge it without handling it (they processed the original).
pub const REPLAY_FOR: &str = "Hail-Replay-For";
/// On a replayed message: the stream sequence of the original it stands for.
pub const REPLAY_OF: &str = "Hail-Replay-Of";

/// Dead-letter headers, added to the original headers by the runtime.
pub mod dlq {
    /// Why the message was dead-lettered (human readable).
    pub const REASON: &str = "Hail-Dlq-Reason";
    /// Short machine-readable kind of the reason (`not_an_event`, `invalid_coordinate`…).
    pub const REASON_KIND: &str = "Hail-Dlq-Reason-Kind";
    /// The service that gave up on it.
    pub const SERVICE: &str = "Hail-Dlq-Service";
    /// The stream it came from.
    pub const STREAM: &str = "Hail-Dlq-Stream";
    /// Its sequence in that stream.
    pub const STREAM_SEQ: &str = "Hail-Dlq-Stream-Seq";
    /// The subject it was published on.
    pub const SUBJECT: &str = "Hail-Dlq-Subject";
    /// How many times it had been delivered.
    pub const DELIVERIES: &str = "Hail-Dlq-Deliveries";
}

/// The standard headers of an event: deterministic `Nats-Msg-Id`, type, ride id,
/// content type, and a `traceparent` that starts a new trace
/// ([`TraceContext::root`]): the event has no parent. An event published for
/// another (a service's answer) uses [`for_event_in`] with a child of its
/// input's context; the runtime does that for every output.
///
/// ```
/// # let e = hail_events::sample::ride_requested("r1", "berlin");
/// let h = hail_events::headers::for_event(&e);
/// assert_eq!(h.get("Nats-Msg-Id").unwrap().as_str(), "requested:r1");
/// assert!(hail_events::trace::TraceContext::from_headers(Some(&h)).is_some());
/// ```
pub fn for_event<E: Event>(event: &E) -> HeaderMap {
    for_event_in(event, &TraceContext::root())
}

/// [`for_event`] with `trace` as the message's `traceparent`: the span of
/// this message (a [`TraceContext::child`] of its parent's, or a root).
///
/// ```
/// use hail_events::{headers, sample, trace::TraceContext};
/// let parent = TraceContext::root();
/// let span = parent.child();
/// let h = headers::for_event_in(&sample::fare_quoted("r1", "berlin"), &span);
/// assert_eq!(h.get("traceparent").unwrap().as_str(), span.to_header());
/// ```
pub fn for_event_in<E: Event>(event: &E, trace: &TraceContext) -> HeaderMap {
    let mut h = untraced(event);
    h.insert(TRACEPARENT, trace.to_header().as_str());
    h
}

/// [`for_event`] without a `traceparent`, for a caller that sets its own
/// (the runtime's outputs take a span of their input's trace): no root
/// context drawn only to be replaced.
pub fn untraced<E: Event>(event: &E) -> HeaderMap {
    let msg_id = event.msg_id();
    let mut h = HeaderMap::new();
    h.insert(EVENT, E::NAME);
    h.insert(CONTENT_TYPE, MSGPACK);
    if let Some(ride) = event.ride_id() {
        h.insert(RIDE_ID, ride.as_str());
    }
    h.insert(MSG_ID, msg_id.as_str());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, sample};

    #[test]
    fn same_event_same_ids_new_trace() {
        let a = for_event(&sample::ride_requested("r1", "berlin"));
        let b = for_event(&sample::ride_requested("r1", "berlin"));
        assert_eq!(a.get(MSG_ID), b.get(MSG_ID));
        assert_eq!(a.get(EVENT).unwrap().as_str(), crate::RideRequested::NAME);
        assert_eq!(a.get(RIDE_ID).unwrap().as_str(), "r1");
        // Each publish without a parent starts a trace of its own.
        let (ta, tb) = (
            TraceContext::from_headers(Some(&a)).unwrap(),
            TraceContext::from_headers(Some(&b)).unwrap(),
        );
        assert_ne!(ta.trace_id(), tb.trace_id());
    }

    #[test]
    fn an_event_in_a_trace_carries_exactly_that_span() {
        let parent = TraceContext::root();
        let span = parent.child();
        let h = for_event_in(&sample::fare_quoted("r1", "berlin"), &span);
        let got = TraceContext::from_headers(Some(&h)).unwrap();
        assert_eq!(got, span);
        assert_eq!(got.trace_id(), parent.trace_id());
        assert_eq!(h.get(MSG_ID).unwrap().as_str(), "priced:r1");
    }

    #[test]
    fn distinct_events_of_a_ride_have_distinct_ids() {
        let r = sample::ride_requested("r1", "berlin");
        assert_ne!(r.msg_id(), sample::fare_quoted("r1", "berlin").msg_id());
    }
}
