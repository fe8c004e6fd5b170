//! Whether RIDES holds a ride's `RideMatched`: asked only when a redelivery or
//! replay finds a match whose claim lapsed and whose driver another ride holds
//! now, so first deliveries never pay for it.
//!
//! Matches are stored on `rides.matched.<city>` beside every other ride's, so
//! the question is a bounded read of that subject's headers, from the request
//! to the stream's end ([`hail_runtime::answered`]).

use async_nats::jetstream;
use hail_events::subjects;
use hail_runtime::answered::{self, Search};

use crate::claims::ClaimsError;

/// What RIDES says about a ride's match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The match is stored: it is the ride's answer.
    Yes,
    /// No match of the ride is stored: it has no answer yet.
    No,
}

/// Reads `subject` (the subject the ride's `RideMatched` is published on) from
/// `since` (the request's sequence: no match of it is older) to the end of
/// RIDES and says whether it holds `ride`'s match.
pub async fn stored_match(
    js: &jetstream::Context,
    subject: &str,
    ride: &str,
    since: u64,
) -> Result<Stored, ClaimsError> {
    let failed = |e: async_nats::Error| ClaimsError::Nats {
        op: "look up the stored match",
        key: subject.to_string(),
        source: e,
    };
    let through = js
        .get_stream(subjects::RIDES_STREAM)
        .await
        .map_err(|e| failed(Box::new(e)))?
        .cached_info()
        .state
        .last_sequence;
    let search = Search {
        stream: subjects::RIDES_STREAM,
        subjects: vec![subject.to_string()],
        ride,
        from: since,
        through,
    };
    match answered::find(js, &search).await {
        Ok(Some(_)) => Ok(Stored::Yes),
        Ok(None) => Ok(Stored::No),
        Err(e) => Err(failed(e.into())),
    }
}
