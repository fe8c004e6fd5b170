//! W3C trace context (`traceparent`, <https://www.w3.org/TR/trace-context/>):
//! a random trace id per ride, a new span id per hop.
//!
//! Whoever starts a ride (the gateway, `hail request`, the load generator)
//! makes a [`TraceContext::root`] — or, the gateway, takes the caller's with
//! [`TraceContext::parse`] and continues it with [`TraceContext::child`] — and
//! publishes it with [`crate::headers::for_event_in`]. The runtime gives every
//! answer a service publishes for a message a child of that message's
//! context, so all the events of a ride share its trace id and each hop has a
//! span of its own.
//!
//! ```
//! use hail_events::trace::TraceContext;
//!
//! let root = TraceContext::root();
//! let hop = root.child();
//! assert_eq!(hop.trace_id(), root.trace_id());
//! assert_ne!(hop.span_id(), root.span_id());
//! assert_eq!(TraceContext::parse(&hop.to_header()), Some(hop));
//!
//! let t = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert!(t.sampled());
//! assert_eq!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
//! ```

use std::fmt;

use async_nats::HeaderMap;

use crate::headers::TRACEPARENT;

/// The only `traceparent` version this understands (and writes).
pub const VERSION: u8 = 0;
/// The `sampled` bit of the trace flags.
pub const SAMPLED: u8 = 0x01;

/// One span's place in a trace: the trace id (16 bytes, never all zero), the
/// span id (8 bytes, never all zero) and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// A new trace: random trace id and span id, sampled.
    pub fn root() -> Self {
        TraceContext {
            trace_id: nonzero_random::<16>(),
            span_id: nonzero_random::<8>(),
            flags: SAMPLED,
        }
    }

    /// The next hop of the same trace: same trace id and flags, a new random
    /// span id.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: nonzero_random::<8>(),
            ..*self
        }
    }

    /// Parses a `traceparent` header value strictly: version `00`, exactly
    /// `00-<32 hex>-<16 hex>-<2 hex>` in lowercase, neither id all zero.
    /// Anything else is `None` (the W3C rule: start a new trace then).
    pub fn parse(header: &str) -> Option<Self> {
        let b = header.as_bytes();
        if b.len() != 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex::<1>(&b[0..2])?;
        if version[0] != VERSION {
            return None;
        }
        let trace_id = hex::<16>(&b[3..35])?;
        let span_id = hex::<8>(&b[36..52])?;
        let flags = hex::<1>(&b[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The context a message carries in its `traceparent` header, if valid.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Option<Self> {
        TraceContext::parse(headers?.get(TRACEPARENT)?.as_str())
    }

    /// The `traceparent` header value: `00-<trace id>-<span id>-<flags>`.
    pub fn to_header(&self) -> String {
        // `00-` + 32 + `-` + 16 + `-` + 2
        let mut header = String::with_capacity(55);
        push_hex(&mut header, &[VERSION]);
        header.push('-');
        push_hex(&mut header, &self.trace_id);
        header.push('-');
        push_hex(&mut header, &self.span_id);
        header.push('-');
        push_hex(&mut header, &[self.flags]);
        header
    }

    /// The trace id's bytes.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id's bytes.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace flags.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller asked for the trace to be recorded.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The trace id as 32 lowercase hex digits (what logs show).
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        to_hex(&self.span_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

fn nonzero_random<const N: usize>() -> [u8; N] {
    loop {
        let mut bytes = [0u8; N];
        rand::fill(&mut bytes);
        if bytes != [0; N] {
            return bytes;
        }
    }
}

/// `2 × N` lowercase hex digits → N bytes.
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Lowercase hex, into one string sized up front: this runs for every
/// message (its log span and each output's `traceparent`), where a string per
/// byte from `format!` was a few percent of a service's CPU.
fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    push_hex(&mut out, bytes);
    out
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_example_round_trips() {
        let t = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(t.flags(), 1);
        assert_eq!(t.to_header(), EXAMPLE);
        assert_eq!(t.to_string(), EXAMPLE);
        let unsampled = TraceContext::parse(&EXAMPLE.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled());
        assert_eq!(unsampled.to_header(), EXAMPLE.replace("-01", "-00"));
    }

    #[test]
    fn anything_not_strictly_version_00_is_refused() {
        let bad = [
            "",
            "00",
            // all-zero ids
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // other versions, including the forbidden ff
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // uppercase hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            // wrong lengths, separators, characters, trailing data
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for b in bad {
            assert_eq!(TraceContext::parse(b), None, "{b:?}");
        }
    }

    #[test]
    fn roots_are_random_and_children_keep_the_trace() {
        let a = TraceContext::root();
        let b = TraceContext::root();
        assert_ne!(a.trace_id(), b.trace_id());
        assert!(a.sampled());
        let c = a.child();
        assert_eq!((c.trace_id(), c.flags()), (a.trace_id(), a.flags()));
        assert_ne!(c.span_id(), a.span_id());
        assert_ne!(c.child().span_id(), c.span_id());
        for t in [a, b, c] {
            let h = t.to_header();
            assert_eq!(h.len(), 55);
            assert_eq!(TraceContext::parse(&h), Some(t));
        }
    }

    #[test]
    fn a_message_without_a_valid_header_has_no_context() {
        let mut h = HeaderMap::new();
        assert_eq!(TraceContext::from_headers(None), None);
        assert_eq!(TraceContext::from_headers(Some(&h)), None);
        h.insert(TRACEPARENT, "garbage");
        assert_eq!(TraceContext::from_headers(Some(&h)), None);
        h.insert(TRACEPARENT, EXAMPLE);
        assert_eq!(
            TraceContext::from_headers(Some(&h)).map(|t| t.to_header()),
            Some(EXAMPLE.to_string())
        );
    }
}
