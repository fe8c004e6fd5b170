//! Building the copy of a message that goes to the DLQ: the original bytes and
//! headers plus why, who, where from and how often delivered.

use async_nats::{HeaderMap, header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE};
use hail_events::{headers, subjects};

/// Where a dead-lettered message came from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The service giving up.
    pub service: &'a str,
    /// Its stream.
    pub stream: &'a str,
    /// Sequence in the stream.
    pub stream_seq: u64,
    /// Subject it was published on.
    pub subject: &'a str,
    /// Deliveries so far.
    pub delivered: i64,
}

/// The subject and headers of the dead letter. Its subject,
/// `dlq.<service>.<stream>.<seq>`, is the message's own and is published to only
/// while empty (`Nats-Expected-Last-Subject-Sequence: 0`), so a poison message
/// delivered again, at any age and on any instance, is dead-lettered once; the
/// `Nats-Msg-Id` is derived from the same three.
pub fn dead_letter_headers(
    original: Option<&HeaderMap>,
    origin: &Origin<'_>,
    kind: &str,
    reason: &str,
) -> (String, HeaderMap) {
    // The original's publish conditions (an answer's fence) are not the dead
    // letter's: it gets its own below.
    let mut h = HeaderMap::new();
    for (name, values) in original.into_iter().flat_map(HeaderMap::iter) {
        if !is_publish_condition(name.as_ref()) {
            for v in values {
                h.append(name.clone(), v.clone());
            }
        }
    }
    h.insert(headers::dlq::REASON, single_line(reason).as_str());
    h.insert(headers::dlq::REASON_KIND, kind);
    h.insert(headers::dlq::SERVICE, origin.service);
    h.insert(headers::dlq::STREAM, origin.stream);
    h.insert(
        headers::dlq::STREAM_SEQ,
        origin.stream_seq.to_string().as_str(),
    );
    h.insert(headers::dlq::SUBJECT, origin.subject);
    h.insert(
        headers::dlq::DELIVERIES,
        origin.delivered.to_string().as_str(),
    );
    let id = format!(
        "dlq:{}:{}:{}",
        origin.service, origin.stream, origin.stream_seq
    );
    h.insert(headers::MSG_ID, id.as_str());
    h.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
    let subject = subjects::dead_letter(origin.service, origin.stream, origin.stream_seq);
    (subject, h)
}

/// Whether `name` is a condition JetStream checks on a publish
/// (`Nats-Expected-*`, any case): it belongs to one publish and is never copied.
///
/// ```
/// use hail_runtime::dead_letter::is_publish_condition;
/// assert!(is_publish_condition("Nats-Expected-Last-Subject-Sequence-Subject"));
/// assert!(is_publish_condition("nats-expected-last-subject-sequence"));
/// assert!(!is_publish_condition("Nats-Msg-Id"));
/// ```
pub fn is_publish_condition(name: &str) -> bool {
    const PREFIX: &str = "nats-expected-";
    name.len() >= PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

/// Whether `name` is one of the `Hail-Dlq-*` headers added here (any case).
///
/// ```
/// use hail_runtime::dead_letter::is_dead_letter_header;
/// assert!(is_dead_letter_header("hail-dlq-reason"));
/// assert!(!is_dead_letter_header("Hail-Event"));
/// ```
pub fn is_dead_letter_header(name: &str) -> bool {
    const PREFIX: &str = "Hail-Dlq-";
    name.get(..PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

/// Header values cannot hold line breaks; keep the reason readable and bounded.
fn single_line(s: &str) -> String {
    let mut line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > 1024 {
        let cut = (0..=1024)
            .rev()
            .find(|i| line.is_char_boundary(*i))
            .unwrap_or(0);
        line.truncate(cut);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_original_headers_and_adds_reason() {
        let mut orig = HeaderMap::new();
        orig.insert(headers::EVENT, "RideRequested");
        orig.insert(headers::MSG_ID, "requested:r1");
        let origin = Origin {
            service: "pricing",
            stream: "RIDES",
            stream_seq: 42,
            subject: "rides.requested.berlin",
            delivered: 1,
        };
        let (subject, h) =
            dead_letter_headers(Some(&orig), &origin, "invalid_coordinate", "bad\nlat");
        assert_eq!(subject, "dlq.pricing.RIDES.42");
        assert_eq!(
            h.get("Nats-Expected-Last-Subject-Sequence")
                .unwrap()
                .as_str(),
            "0"
        );
        assert_eq!(h.get(headers::EVENT).unwrap().as_str(), "RideRequested");
        assert_eq!(h.get(headers::dlq::REASON).unwrap().as_str(), "bad lat");
        assert_eq!(h.get(headers::dlq::STREAM_SEQ).unwrap().as_str(), "42");
        assert_eq!(
            h.get(headers::MSG_ID).unwrap().as_str(),
            "dlq:pricing:RIDES:42"
        );
        let added = h.iter().filter(|(n, _)| is_dead_letter_header(n.as_ref()));
        assert_eq!(added.count(), 7);
    }

    #[test]
    fn an_answers_fence_is_not_copied_and_a_replay_has_no_condition() {
        let mut orig = HeaderMap::new();
        orig.insert(headers::EVENT, "FareQuoted");
        orig.insert("Nats-Expected-Last-Subject-Sequence", "0");
        orig.insert(
            "Nats-Expected-Last-Subject-Sequence-Subject",
            "fence.pricing.r1",
        );
        let origin = Origin {
            service: "analytics",
            stream: "RIDES",
            stream_seq: 7,
            subject: "rides.priced.berlin",
            delivered: 5,
        };
        let (_, h) = dead_letter_headers(Some(&orig), &origin, "max_deliveries", "gave up");
        assert!(
            h.get("Nats-Expected-Last-Subject-Sequence-Subject")
                .is_none()
        );
        assert_eq!(
            h.get("Nats-Expected-Last-Subject-Sequence")
                .unwrap()
                .as_str(),
            "0"
        );
        let replay = crate::replay::Replay::of_dead_letter(&h).unwrap();
        assert!(
            replay
                .headers
                .iter()
                .all(|(n, _)| !is_publish_condition(n.as_ref()))
        );
        assert_eq!(
            replay.headers.get(headers::EVENT).unwrap().as_str(),
            "FareQuoted"
        );
    }
}
