//! The headers every hail message carries, and a W3C `traceparent` derived from
//! the ride id so that every event of one ride shares one trace.

use async_nats::HeaderMap;

use crate::Event;

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
/// traceparent and content type.
///
/// ```
/// # let e = hail_events::sample::ride_requested("r1", "berlin");
/// let h = hail_events::headers::for_event(&e);
/// assert_eq!(h.get("Nats-Msg-Id").unwrap().as_str(), "requested:r1");
/// ```
pub fn for_event<E: Event>(event: &E) -> HeaderMap {
    let msg_id = event.msg_id();
    let mut h = HeaderMap::new();
    h.insert(EVENT, E::NAME);
    h.insert(CONTENT_TYPE, MSGPACK);
    let trace_key = event.ride_id().map(|r| r.as_str()).unwrap_or(&msg_id);
    h.insert(TRACEPARENT, traceparent(trace_key, &msg_id).as_str());
    if let Some(ride) = event.ride_id() {
        h.insert(RIDE_ID, ride.as_str());
    }
    h.insert(MSG_ID, msg_id.as_str());
    h
}

/// `00-<trace id from trace_key>-<span id from span_key>-01`.
pub fn traceparent(trace_key: &str, span_key: &str) -> String {
    let hi = fnv1a(trace_key.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let lo = fnv1a(trace_key.as_bytes(), 0x8422_2325_cbf2_9ce4);
    let span = fnv1a(span_key.as_bytes(), 0xcbf2_9ce4_8422_2325).max(1);
    format!("00-{hi:016x}{lo:016x}-{span:016x}-01")
}

/// FNV-1a: stable across builds and platforms, unlike `std`'s hasher.
fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, sample};

    #[test]
    fn same_event_same_headers() {
        let a = for_event(&sample::ride_requested("r1", "berlin"));
        let b = for_event(&sample::ride_requested("r1", "berlin"));
        assert_eq!(a.get(MSG_ID), b.get(MSG_ID));
        assert_eq!(a.get(TRACEPARENT), b.get(TRACEPARENT));
        assert_eq!(a.get(EVENT).unwrap().as_str(), crate::RideRequested::NAME);
        assert_eq!(a.get(RIDE_ID).unwrap().as_str(), "r1");
    }

    #[test]
    fn traceparent_shape() {
        let t = traceparent("r1", "priced:r1");
        assert_eq!(t.len(), 55);
        assert!(t.starts_with("00-") && t.ends_with("-01"));
        // Events of one ride share the trace id, not the span id.
        let u = traceparent("r1", "matched:r1");
        assert_eq!(t[3..35], u[3..35]);
        assert_ne!(t[36..52], u[36..52]);
    }

    #[test]
    fn distinct_events_of_a_ride_have_distinct_ids() {
        let r = sample::ride_requested("r1", "berlin");
        assert_ne!(r.msg_id(), sample::fare_quoted("r1", "berlin").msg_id());
    }
}
