//! Whether RIDES holds a ride's `RideMatched`: asked only when a redelivery or
//! replay finds a match whose claim lapsed and whose driver another ride holds
//! now, so first deliveries never pay for it.
//!
//! Matches are stored on `rides.matched.<city>` beside every other ride's, so
//! the question is a bounded read of that subject's headers, from shortly
//! before matching recorded the match (the match is published after its
//! record) to the stream's end ([`hail_runtime::answered`]). It starts by
//! time, not at the delivered request's sequence, because the request
//! delivered may be a second one for the ride, published after the first was
//! answered.

use async_nats::jetstream;
use hail_events::subjects;
use hail_runtime::answered::{self, Search, Start};

use crate::claims::ClaimsError;

/// What RIDES says about a ride's match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The match is stored: it is the ride's answer.
    Yes,
    /// No match of the ride is stored: it has no answer yet.
    No,
}

/// How long before the record's `matched_at_ms` the read starts: room for
/// matching's clock running ahead of the server's.
pub const CLOCK_SLACK: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads `subject` (the subject the ride's `RideMatched` is published on) from
/// [`CLOCK_SLACK`] before `matched_at_ms` (when matching recorded the match)
/// to the end of RIDES and says whether it holds `ride`'s match.
pub async fn stored_match(
    js: &jetstream::Context,
    subject: &str,
    ride: &str,
    matched_at_ms: u64,
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
        from: Start::Time(start_time(matched_at_ms)),
        through,
    };
    match answered::find(js, &search).await {
        Ok(Some(_)) => Ok(Stored::Yes),
        Ok(None) => Ok(Stored::No),
        Err(e) => Err(failed(e.into())),
    }
}

/// The server time to start reading at for a match recorded at `matched_at_ms`.
fn start_time(matched_at_ms: u64) -> time::OffsetDateTime {
    let matched = time::OffsetDateTime::UNIX_EPOCH
        + time::Duration::milliseconds(i64::try_from(matched_at_ms).unwrap_or(i64::MAX));
    (matched - CLOCK_SLACK).max(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_a_minute_before_the_match_and_never_before_the_epoch() {
        let t = start_time(1_700_000_000_000);
        assert_eq!(t.unix_timestamp(), 1_700_000_000 - 60);
        assert_eq!(start_time(5), time::OffsetDateTime::UNIX_EPOCH);
    }
}
