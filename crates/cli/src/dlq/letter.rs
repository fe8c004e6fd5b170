//! One dead letter as stored in the DLQ stream, its summary, and reading them:
//! all of a filter in DLQ order, or one by its DLQ sequence.

use anyhow::{Context as _, Result, bail};
use async_nats::{
    HeaderMap,
    jetstream::{
        ErrorCode,
        stream::{RawMessageErrorKind, Stream},
    },
};
use hail_events::{headers, subjects};
use serde::Serialize;
use time::OffsetDateTime;

use crate::read_all::{info, read_all};

/// One dead letter as stored in the DLQ stream.
pub(super) struct Letter {
    pub(super) seq: u64,
    pub(super) stored: OffsetDateTime,
    pub(super) headers: HeaderMap,
    pub(super) payload: Vec<u8>,
}

impl Letter {
    fn get(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.as_str())
    }

    fn stream_seq(&self) -> Option<u64> {
        self.get(headers::dlq::STREAM_SEQ).parse().ok()
    }

    pub(super) fn summary(&self) -> Summary {
        Summary {
            dlq_seq: self.seq,
            stored_at: utc(self.stored),
            service: self.get(headers::dlq::SERVICE).to_string(),
            kind: self.get(headers::dlq::REASON_KIND).to_string(),
            subject: self.get(headers::dlq::SUBJECT).to_string(),
            stream: self.get(headers::dlq::STREAM).to_string(),
            stream_seq: self.stream_seq(),
            deliveries: self.get(headers::dlq::DELIVERIES).parse().ok(),
            reason: self.get(headers::dlq::REASON).to_string(),
        }
    }
}

/// What `ls` prints per dead letter, and the head of `show`.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    pub(super) dlq_seq: u64,
    pub(super) stored_at: String,
    pub(super) service: String,
    pub(super) kind: String,
    pub(super) subject: String,
    pub(super) stream: String,
    pub(super) stream_seq: Option<u64>,
    pub(super) deliveries: Option<i64>,
    pub(super) reason: String,
}

/// Every dead letter on `filter`, in DLQ order.
pub(super) async fn read(stream: &Stream, filter: &str, headers_only: bool) -> Result<Vec<Letter>> {
    read_all(stream, filter, headers_only, |msg| {
        let i = info(msg)?;
        Ok(Letter {
            seq: i.stream_sequence,
            stored: i.published,
            headers: msg.headers.clone().unwrap_or_default(),
            payload: msg.payload.to_vec(),
        })
    })
    .await
}

/// The DLQ subjects of `service`, or of every service.
pub(super) fn filter_of(service: Option<&str>) -> String {
    service.map_or_else(|| subjects::DLQ_ALL.to_string(), subjects::dlq)
}

/// One dead letter by DLQ sequence, with its body.
pub(super) async fn fetch(stream: &Stream, seq: u64) -> Result<Letter> {
    match stream.get_raw_message(seq).await {
        Ok(m) => Ok(Letter {
            seq,
            stored: m.time,
            headers: m.headers,
            payload: m.payload.to_vec(),
        }),
        Err(e) if no_message(&e.kind()) => {
            bail!("no dead letter with DLQ sequence {seq} (see `hail dlq ls`)")
        }
        Err(e) => Err(e).with_context(|| format!("cannot read dead letter {seq}")),
    }
}

fn no_message(kind: &RawMessageErrorKind) -> bool {
    match kind {
        RawMessageErrorKind::NoMessageFound => true,
        RawMessageErrorKind::JetStream(j) => j.error_code() == ErrorCode::NO_MESSAGE_FOUND,
        _ => false,
    }
}

/// `-` for a value the headers did not have.
pub(super) fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn utc(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A dead letter (DLQ #3) fraud gave up on: RIDES #12, a ride request.
    pub(crate) fn letter(payload: Vec<u8>, extra: &[(&str, &str)]) -> Letter {
        let mut h = HeaderMap::new();
        h.insert(headers::EVENT, "RideRequested");
        h.insert(headers::RIDE_ID, "r1");
        h.insert(headers::MSG_ID, "dlq:fraud:RIDES:12");
        h.insert(headers::dlq::SERVICE, "fraud");
        h.insert(headers::dlq::SUBJECT, "rides.requested.berlin");
        h.insert(headers::dlq::STREAM_SEQ, "12");
        h.insert(headers::dlq::REASON_KIND, "max_deliveries");
        for (k, v) in extra {
            h.insert(*k, *v);
        }
        Letter {
            seq: 3,
            stored: OffsetDateTime::UNIX_EPOCH,
            headers: h,
            payload,
        }
    }

    #[test]
    fn summarises_the_dead_letter_headers() {
        let s = letter(Vec::new(), &[]).summary();
        assert_eq!((s.dlq_seq, s.stream_seq, s.deliveries), (3, Some(12), None));
        assert_eq!(
            (s.service.as_str(), s.kind.as_str()),
            ("fraud", "max_deliveries")
        );
        assert_eq!(s.stored_at, "1970-01-01T00:00:00Z");
        assert_eq!(
            (opt(s.stream_seq), opt(s.deliveries)),
            ("12".into(), "-".into())
        );
        assert_eq!(filter_of(Some("fraud")), "dlq.fraud.>");
        assert_eq!(filter_of(None), "dlq.>");
    }
}
