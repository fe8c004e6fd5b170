//! The replay protocol, both halves: how a dead letter goes back to its original
//! subject for the one service that gave up on it (`hail dlq replay`), and how a
//! service reads that a delivery is such a replay (the worker, the feeds).
//!
//! A replay carries the original payload and headers, minus every `Hail-Dlq-*`
//! header, plus `Hail-Replay-For` (the other services ack it without handling
//! it), `Hail-Replay-Of` (the stream sequence of the original) and the
//! `Nats-Msg-Id` `replay:<service>:<seq>`, so replaying the same dead letter
//! twice inside the duplicate window is stored once.
//!
//! ```
//! use async_nats::HeaderMap;
//! use hail_runtime::{dead_letter::{dead_letter_headers, Origin}, replay::{self, Replay}};
//! let origin = Origin {
//!     service: "fraud",
//!     stream: "RIDES",
//!     stream_seq: 12,
//!     subject: "rides.requested.berlin",
//!     delivered: 5,
//! };
//! let (_, stored) = dead_letter_headers(None, &origin, "max_deliveries", "gave up");
//! let r = Replay::of_dead_letter(&stored).unwrap();
//! assert_eq!((r.subject.as_str(), r.stream_seq), ("rides.requested.berlin", 12));
//! assert_eq!(replay::target(Some(&r.headers)), Some("fraud"));
//! assert!(replay::is_for_another(Some(&r.headers), "pricing"));
//! ```

use async_nats::HeaderMap;
use hail_events::headers;

use crate::dead_letter::{is_dead_letter_header, is_publish_condition};

/// The replay of one dead letter: where it goes and with which headers.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The subject the original was published on.
    pub subject: String,
    /// The original headers minus `Hail-Dlq-*`, plus the replay's own.
    pub headers: HeaderMap,
    /// The one service it is for: the one that gave up on it.
    pub service: String,
    /// The original's sequence in its stream.
    pub stream_seq: u64,
}

/// Why a stored dead letter cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A dead-letter header the replay needs is absent or empty.
    #[error("no {0} header")]
    MissingHeader(&'static str),
    /// The stream sequence header is not a number.
    #[error("a bad {header} header ({value:?} is not a stream sequence)")]
    BadSequence { header: &'static str, value: String },
}

impl Replay {
    /// The replay of a dead letter, from the headers it was stored with.
    ///
    /// A dead letter that is itself a failed replay keeps pointing at the first
    /// original (its `Hail-Replay-Of`), and gets a message id of its own so it is
    /// not dropped as a duplicate of the replay that failed.
    pub fn of_dead_letter(stored: &HeaderMap) -> Result<Replay, ReplayError> {
        let service = required(stored, headers::dlq::SERVICE)?;
        let subject = required(stored, headers::dlq::SUBJECT)?;
        let seq = required(stored, headers::dlq::STREAM_SEQ)?;
        let stream_seq = seq.parse::<u64>().map_err(|_| ReplayError::BadSequence {
            header: headers::dlq::STREAM_SEQ,
            value: seq.to_string(),
        })?;
        let original = stored
            .get(headers::REPLAY_OF)
            .map_or_else(|| stream_seq.to_string(), |v| v.as_str().to_string());
        let mut h = without_dead_letter_headers(stored);
        h.insert(headers::REPLAY_FOR, service);
        h.insert(headers::REPLAY_OF, original.as_str());
        h.insert(headers::MSG_ID, msg_id(service, stream_seq).as_str());
        Ok(Replay {
            subject: subject.to_string(),
            headers: h,
            service: service.to_string(),
            stream_seq,
        })
    }
}

/// The message id of the replay of `service`'s dead letter of `stream_seq`.
pub fn msg_id(service: &str, stream_seq: u64) -> String {
    format!("replay:{service}:{stream_seq}")
}

/// The service a delivered message is a replay for; `None` when it is not a replay.
pub fn target(headers: Option<&HeaderMap>) -> Option<&str> {
    headers?.get(headers::REPLAY_FOR).map(|v| v.as_str())
}

/// Whether a delivered message is a replay (of any service's dead letter): a
/// copy of an original already stored, not a new message.
pub fn is_replay(headers: Option<&HeaderMap>) -> bool {
    target(headers).is_some()
}

/// The stream sequence of the original a delivered replay stands for; `None`
/// when it is not a replay (or the header is not a number).
pub fn original_seq(headers: Option<&HeaderMap>) -> Option<u64> {
    headers?.get(headers::REPLAY_OF)?.as_str().parse().ok()
}

/// Whether a delivered message is a replay of another service's dead letter:
/// not `service`'s to handle (it processed the original).
pub fn is_for_another(headers: Option<&HeaderMap>, service: &str) -> bool {
    target(headers).is_some_and(|target| target != service)
}

fn required<'a>(h: &'a HeaderMap, name: &'static str) -> Result<&'a str, ReplayError> {
    h.get(name)
        .map(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .ok_or(ReplayError::MissingHeader(name))
}

/// `stored` minus the `Hail-Dlq-*` headers and the ones a replay sets itself.
fn without_dead_letter_headers(stored: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, values) in stored.iter() {
        let n: &str = name.as_ref();
        let replaced = [headers::MSG_ID, headers::REPLAY_FOR, headers::REPLAY_OF]
            .iter()
            .any(|r| r.eq_ignore_ascii_case(n));
        // The dead letter's own condition (and any other): the replay goes to a
        // subject that already holds the original.
        if is_dead_letter_header(n) || is_publish_condition(n) || replaced {
            continue;
        }
        for v in values {
            h.append(name.clone(), v.clone());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::{Origin, dead_letter_headers};

    /// What the runtime stores when fraud gives up on RIDES #12.
    fn dead_letter(original: HeaderMap) -> HeaderMap {
        let origin = Origin {
            service: "fraud",
            stream: "RIDES",
            stream_seq: 12,
            subject: "rides.requested.berlin",
            delivered: 5,
        };
        dead_letter_headers(Some(&original), &origin, "max_deliveries", "gave up").1
    }

    fn original() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::EVENT, "RideRequested");
        h.insert(headers::RIDE_ID, "r1");
        h.insert(headers::MSG_ID, "requested:r1");
        h
    }

    #[test]
    fn what_is_built_is_read_back() {
        let r = Replay::of_dead_letter(&dead_letter(original())).unwrap();
        assert_eq!(r.subject, "rides.requested.berlin");
        assert_eq!((r.service.as_str(), r.stream_seq), ("fraud", 12));
        let h = Some(&r.headers);
        assert_eq!(target(h), Some("fraud"));
        assert_eq!(original_seq(h), Some(12));
        assert!(is_replay(h));
        assert!(!is_for_another(h, "fraud"));
        assert!(is_for_another(h, "pricing"));
    }

    #[test]
    fn drops_dead_letter_headers_and_keeps_the_originals() {
        let r = Replay::of_dead_letter(&dead_letter(original())).unwrap();
        assert!(
            r.headers
                .iter()
                .all(|(n, _)| !is_dead_letter_header(n.as_ref()))
        );
        let get = |k: &str| r.headers.get(k).unwrap().as_str().to_string();
        assert_eq!(get(headers::MSG_ID), "replay:fraud:12");
        assert_eq!(get(headers::RIDE_ID), "r1");
        assert_eq!(get(headers::EVENT), "RideRequested");
    }

    #[test]
    fn a_failed_replay_replays_as_the_first_original() {
        let first = Replay::of_dead_letter(&dead_letter(original())).unwrap();
        let mut again = first.headers.clone();
        again.insert(headers::REPLAY_OF, "7");
        let r = Replay::of_dead_letter(&dead_letter(again)).unwrap();
        assert_eq!(original_seq(Some(&r.headers)), Some(7));
        assert_eq!(
            r.headers.get(headers::MSG_ID).unwrap().as_str(),
            "replay:fraud:12"
        );
    }

    #[test]
    fn messages_that_are_not_replays_read_as_such() {
        let h = original();
        assert_eq!((target(Some(&h)), original_seq(Some(&h))), (None, None));
        assert!(!is_replay(Some(&h)) && !is_replay(None));
        assert!(!is_for_another(Some(&h), "fraud"));
        assert!(!is_for_another(None, "fraud"));
    }

    #[test]
    fn missing_or_bad_origin_is_named() {
        let e = Replay::of_dead_letter(&original()).unwrap_err();
        assert_eq!(e, ReplayError::MissingHeader(headers::dlq::SERVICE));
        assert_eq!(e.to_string(), "no Hail-Dlq-Service header");
        let mut h = dead_letter(original());
        h.insert(headers::dlq::STREAM_SEQ, "twelve");
        let e = Replay::of_dead_letter(&h).unwrap_err().to_string();
        assert!(
            e.contains(headers::dlq::STREAM_SEQ) && e.contains("twelve"),
            "{e}"
        );
    }
}
