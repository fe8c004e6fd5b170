//! Whether RIDES holds a ride's `RideMatched`: asked only when a redelivery or
//! replay finds a match whose claim lapsed and whose driver another ride holds
//! now, so first deliveries never pay for it.
//!
//! The last message on the match's subject answers it. With one subject per ride
//! (`rides.matched.<city>.<ride>`) that is exact: found means stored, none means
//! never stored. [`Stored::Unknown`] remains for a subject whose last message
//! names another ride, which hail's own publishers never produce.

use async_nats::jetstream::{self, stream::LastRawMessageErrorKind};
use hail_events::{headers, subjects};

use crate::claims::ClaimsError;

/// What RIDES says about a ride's match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The match is stored: it is the ride's answer.
    Yes,
    /// No match of the ride is stored: it has no answer yet.
    No,
    /// The subject's last match is another ride's: this one may be stored too.
    Unknown,
}

/// Reads the last message on `subject` (the subject the ride's `RideMatched` is
/// published on) and says whether it is `ride`'s.
pub async fn stored_match(
    js: &jetstream::Context,
    subject: &str,
    ride: &str,
) -> Result<Stored, ClaimsError> {
    let failed = |e: async_nats::Error| ClaimsError::Nats {
        op: "look up the stored match",
        key: subject.to_string(),
        source: e,
    };
    let stream = js
        .get_stream_no_info(subjects::RIDES_STREAM)
        .await
        .map_err(|e| failed(Box::new(e)))?;
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(msg) => Ok(classify(
            Some(msg.headers.get(headers::RIDE_ID).map(|v| v.as_str())),
            ride,
        )),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(classify(None, ride)),
        Err(e) => Err(failed(Box::new(e))),
    }
}

/// `last`: the subject's last message (`None`: there is none) and its ride id.
fn classify(last: Option<Option<&str>>, ride: &str) -> Stored {
    match last {
        None => Stored::No,
        Some(Some(id)) if id == ride => Stored::Yes,
        Some(_) => Stored::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_subject_says_never_stored() {
        assert_eq!(classify(None, "r1"), Stored::No);
        assert_eq!(classify(Some(Some("r1")), "r1"), Stored::Yes);
        assert_eq!(classify(Some(Some("r2")), "r1"), Stored::Unknown);
        assert_eq!(classify(Some(None), "r1"), Stored::Unknown);
    }
}
