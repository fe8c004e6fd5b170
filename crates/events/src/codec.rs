//! The wire format: a MessagePack map with named fields,
//! `{"v": <schema version>, "t": <event name>, "e": {<event fields>}}`.
//!
//! Decoding first reads only `v` and `t` (skipping the body), so an unknown version
//! or the wrong event type is reported as such rather than as a field error, then
//! decodes and validates the body. Where they come first, as [`encode`] writes
//! them, `v` and `t` are read straight from the bytes ([`head`]); serde's
//! probe would walk the whole body to skip it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Event, EventError};

/// Largest payload encoded or decoded, in bytes. Real events are a few hundred bytes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

#[derive(Serialize)]
struct EnvelopeRef<'a, E> {
    v: u16,
    t: &'a str,
    e: &'a E,
}

#[derive(Deserialize)]
struct Envelope<E> {
    e: E,
}

/// Only the version and type of a payload, the body skipped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Probe {
    /// Schema version.
    pub v: u16,
    /// Event type name.
    pub t: String,
}

/// Encodes a valid event.
///
/// ```
/// use hail_events::{codec, LatLng, RideRequested};
/// # let e = hail_events::sample::ride_requested("r1", "berlin");
/// let bytes = codec::encode(&e).unwrap();
/// let back: RideRequested = codec::decode(&bytes).unwrap();
/// assert_eq!(back, e);
/// ```
pub fn encode<E: Event>(event: &E) -> Result<Bytes, EventError> {
    event.validate()?;
    let env = EnvelopeRef {
        v: E::VERSION,
        t: E::NAME,
        e: event,
    };
    let bytes = rmp_serde::to_vec_named(&env).map_err(|e| EventError::Encode(e.to_string()))?;
    check_size(bytes.len())?;
    Ok(Bytes::from(bytes))
}

/// Reads the version and type of a payload without decoding its body.
pub fn probe(bytes: &[u8]) -> Result<Probe, EventError> {
    check_size(bytes.len())?;
    if let Some((v, t)) = head(bytes) {
        return Ok(Probe { v, t: t.into() });
    }
    if bytes.is_empty() {
        return Err(EventError::NotAnEvent("empty payload".into()));
    }
    rmp_serde::from_slice::<Probe>(bytes).map_err(|e| EventError::NotAnEvent(e.to_string()))
}

/// Decodes and validates an event of type `E`.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<E, EventError> {
    check_size(bytes.len())?;
    let (v, t) = match head(bytes) {
        Some((v, t)) if t == E::NAME => (v, E::NAME),
        _ => {
            let probe = probe(bytes)?;
            if probe.t != E::NAME {
                return Err(EventError::WrongEvent {
                    expected: E::NAME,
                    found: probe.t,
                });
            }
            (probe.v, E::NAME)
        }
    };
    if v == 0 || v > E::VERSION {
        return Err(EventError::UnknownVersion {
            event: t.into(),
            found: v,
            supported: E::VERSION,
        });
    }
    let env: Envelope<E> = rmp_serde::from_slice(bytes).map_err(body_error)?;
    env.e.validate()?;
    Ok(env.e)
}

/// `v` and `t` read straight from the bytes when the payload is a map that
/// starts with them, in that order (as [`encode`] writes it); `None` for
/// anything else, which the serde probe then reads or names.
fn head(bytes: &[u8]) -> Option<(u16, &str)> {
    let mut rest = bytes;
    let mut byte = || {
        let (first, tail) = rest.split_first()?;
        rest = tail;
        Some(*first)
    };
    let entries = match byte()? {
        b @ 0x80..=0x8f => b & 0x0f,
        0xde => u8::try_from(u16::from_be_bytes([byte()?, byte()?])).unwrap_or(u8::MAX),
        _ => return None,
    };
    if entries < 2 {
        return None;
    }
    let (key, rest) = str_at(rest)?;
    if key != "v" {
        return None;
    }
    let (v, rest) = uint_at(rest)?;
    let (key, rest) = str_at(rest)?;
    if key != "t" {
        return None;
    }
    let (t, _) = str_at(rest)?;
    Some((v, t))
}

/// A MessagePack string at the start of `bytes`, and what follows it.
fn str_at(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = match *bytes.first()? {
        b @ 0xa0..=0xbf => (usize::from(b & 0x1f), &bytes[1..]),
        0xd9 => (usize::from(*bytes.get(1)?), bytes.get(2..)?),
        0xda => (
            usize::from(u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?])),
            bytes.get(3..)?,
        ),
        _ => return None,
    };
    let text = std::str::from_utf8(rest.get(..len)?).ok()?;
    Some((text, &rest[len..]))
}

/// A MessagePack unsigned integer that fits a `u16` at the start of `bytes`,
/// and what follows it.
fn uint_at(bytes: &[u8]) -> Option<(u16, &[u8])> {
    match *bytes.first()? {
        b @ 0x00..=0x7f => Some((u16::from(b), &bytes[1..])),
        0xcc => Some((u16::from(*bytes.get(1)?), bytes.get(2..)?)),
        0xcd => Some((
            u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]),
            bytes.get(3..)?,
        )),
        _ => None,
    }
}

fn check_size(size: usize) -> Result<(), EventError> {
    if size > MAX_PAYLOAD_BYTES {
        return Err(EventError::PayloadTooLarge {
            size,
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// Field validation runs inside serde (`try_from`), so its error arrives as text;
/// recover the named kind from the text our own validators wrote.
fn body_error(e: rmp_serde::decode::Error) -> EventError {
    let text = e.to_string();
    let message = text
        .strip_prefix("syntax error: ")
        .unwrap_or(&text)
        .to_string();
    let kind =
        if message.starts_with("invalid latitude") || message.starts_with("invalid longitude") {
            "invalid_coordinate"
        } else if message.starts_with("invalid ") && message.contains(" id: ")
            || message.starts_with("invalid city")
            || message.starts_with("invalid card")
        {
            "invalid_id"
        } else {
            return EventError::NotAnEvent(message);
        };
    EventError::Invalid { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RideMatched, RideRequested, sample};

    #[test]
    fn round_trips() {
        let e = sample::ride_requested("r1", "berlin");
        let b = encode(&e).unwrap();
        assert_eq!(decode::<RideRequested>(&b).unwrap(), e);
        assert_eq!(
            probe(&b).unwrap(),
            Probe {
                v: 1,
                t: "RideRequested".into()
            }
        );
    }

    #[test]
    fn names_each_kind_of_bad_input() {
        assert_eq!(probe(b"").unwrap_err().kind(), "not_an_event");
        assert_eq!(
            decode::<RideRequested>(b"\xc1garbage").unwrap_err().kind(),
            "not_an_event"
        );
        let big = vec![0u8; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            decode::<RideRequested>(&big).unwrap_err().kind(),
            "payload_too_large"
        );

        let e = sample::ride_requested("r1", "berlin");
        let b = encode(&e).unwrap();
        let err = decode::<RideMatched>(&b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a RideMatched event, got RideRequested"
        );

        let future = rmp_serde::to_vec_named(&EnvelopeRef {
            v: 9,
            t: "RideRequested",
            e: &e,
        })
        .unwrap();
        let err = decode::<RideRequested>(&future).unwrap_err();
        assert_eq!(err.kind(), "unknown_version");
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn the_fast_head_reads_what_serde_reads() {
        let e = sample::ride_requested("r1", "berlin");
        let b = encode(&e).unwrap();
        assert_eq!(head(&b), Some((1, "RideRequested")));
        // Large versions and long type names take the wider encodings.
        for v in [0u16, 127, 128, 255, 256, u16::MAX] {
            for t in ["T", &"x".repeat(31), &"y".repeat(32), &"z".repeat(300)] {
                let b = rmp_serde::to_vec_named(&EnvelopeRef { v, t, e: &e }).unwrap();
                assert_eq!(head(&b), Some((v, t)), "v {v}, t of {} bytes", t.len());
                let serde: Probe = rmp_serde::from_slice(&b).unwrap();
                assert_eq!(probe(&b).unwrap(), serde);
            }
        }
        // Another order, or a truncated payload: left to serde, same answers.
        #[derive(Serialize)]
        struct Reordered<'a> {
            t: &'a str,
            e: &'a RideRequested,
            v: u16,
        }
        let b = rmp_serde::to_vec_named(&Reordered {
            t: "RideRequested",
            e: &e,
            v: 1,
        })
        .unwrap();
        assert_eq!(head(&b), None);
        assert_eq!(decode::<RideRequested>(&b).unwrap(), e);
        let b = encode(&e).unwrap();
        for cut in 0..b.len() {
            let _ = head(&b[..cut]);
            assert!(decode::<RideRequested>(&b[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bad_coordinates_are_named_on_decode() {
        let bytes = sample::ride_requested_raw("r1", "berlin", 123.0, 13.4);
        let err = decode::<RideRequested>(&bytes).unwrap_err();
        assert_eq!(err.kind(), "invalid_coordinate");
        assert!(
            err.to_string().starts_with("invalid latitude: 123"),
            "{err}"
        );
        let bytes = sample::ride_requested_raw("", "berlin", 52.0, 13.4);
        let err = decode::<RideRequested>(&bytes).unwrap_err();
        assert_eq!(err.kind(), "invalid_id");
        assert_eq!(err.to_string(), "invalid ride id: empty");
    }
}
