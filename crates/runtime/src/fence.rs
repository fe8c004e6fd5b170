//! The answer fence: a service stores at most one answer per ride, whatever the
//! age of the delivery that produces it (docs/DESIGN.md, "Exactly once at any
//! age").
//!
//! Each service has one fence subject per ride, `fence.<service>.<ride>` in
//! RIDES, empty unless a redelivery ever answered the ride.
//!
//! - A **first delivery** publishes its answer on `rides.<kind>.<city>` with
//!   `Nats-Expected-Last-Subject-Sequence: 0` on the fence subject
//!   ([`first_delivery`]): the server stores it only while the fence is empty,
//!   a lookup of a subject it does not hold. Nothing else is asked or written.
//! - A **redelivery or replay**, or a first delivery the fence refused, takes
//!   the careful path ([`publish_checked`]): it stores a marker on the fence
//!   (sequence `m`), so that no first delivery still in flight anywhere can
//!   store an answer after `m`; it reads the service's answers of the ride's
//!   city from the request through `m` ([`crate::answered`]); if none is the
//!   ride's, it publishes the answer on the condition that the fence's last
//!   sequence is still `m`, i.e. no other careful delivery has looked since. If
//!   one has, it looks again.
//!
//! So whichever order and age deliveries come in, the answer stored is the
//! first one; every later one finds it and stores nothing.

use async_nats::{
    HeaderMap,
    header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
    jetstream::{self, context::PublishErrorKind},
};
use hail_events::{RideId, subjects};

use crate::{Output, answered::Answers};

/// The header that names the subject `Nats-Expected-Last-Subject-Sequence`
/// is checked on (nats-server 2.11+).
pub const CHECK_SUBJECT: &str = "Nats-Expected-Last-Subject-Sequence-Subject";

/// Times the careful path looks again after another delivery moved the fence.
const ROUNDS: usize = 5;

/// Adds the first delivery's condition to an answer's headers: stored only
/// while `service`'s fence of `ride` is empty.
///
/// ```
/// let mut h = async_nats::HeaderMap::new();
/// let ride = hail_events::RideId::new("r1").unwrap();
/// hail_runtime::fence::first_delivery(&mut h, "pricing", &ride);
/// assert_eq!(h.get("Nats-Expected-Last-Subject-Sequence").unwrap().as_str(), "0");
/// assert_eq!(h.get("Nats-Expected-Last-Subject-Sequence-Subject").unwrap().as_str(), "fence.pricing.r1");
/// ```
pub fn first_delivery(headers: &mut HeaderMap, service: &str, ride: &RideId) {
    headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
    headers.insert(CHECK_SUBJECT, subjects::fence(service, ride).as_str());
}

/// What the careful path found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The answer is stored now, by this call.
    Now,
    /// The ride already had an answer from the service: nothing was stored.
    Before,
}

/// Where the careful path looks for an earlier answer.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// The service answering.
    pub service: &'a str,
    /// The service's answer subjects in the ride's city.
    pub subjects: Vec<String>,
    /// The sequence of the request answered (for a replay: of the original).
    pub since: u64,
}

/// Stores `out`, the answer to `ride`, unless the service answered the ride
/// already (at any age): the careful path described above.
pub async fn publish_checked(
    js: &jetstream::Context,
    answers: &Answers,
    scope: &Scope<'_>,
    ride: &RideId,
    out: &Output,
) -> anyhow::Result<Stored> {
    let fence = subjects::fence(scope.service, ride);
    for _ in 0..ROUNDS {
        let marker = js
            .publish(fence.clone(), bytes::Bytes::new())
            .await?
            .await?
            .sequence;
        let found = answers
            .find(&scope.subjects, ride.as_str(), scope.since, marker)
            .await?;
        if found.is_some() {
            return Ok(Stored::Before);
        }
        let mut headers = out.headers.clone();
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            marker.to_string().as_str(),
        );
        headers.insert(CHECK_SUBJECT, fence.as_str());
        match js
            .publish_with_headers(out.subject.clone(), headers, out.payload.clone())
            .await?
            .await
        {
            // A copy with the same message id is stored (within the duplicate window).
            Ok(ack) if ack.duplicate => return Ok(Stored::Before),
            Ok(_) => return Ok(Stored::Now),
            // Another careful delivery marked the fence after us: look again.
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("{fence} kept moving: {ROUNDS} other deliveries of the ride answered at once")
}
