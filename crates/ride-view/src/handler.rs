//! One message of RIDES → its ride's record: decode, note where it is stored
//! (the step), apply with compare-and-set, carried by one write with the
//! ride's other events in flight ([`crate::group_commit`]).

use hail_events::{AnyEvent, ride_view::Step};
use hail_runtime::{Delivery, Handler, Outcome};

use crate::{
    group_commit::GroupCommit, metrics::RideViewMetrics, store::StoreError, transition::Applied,
};

/// ride-view's handler.
pub struct RideViewHandler {
    records: GroupCommit,
    metrics: RideViewMetrics,
}

impl RideViewHandler {
    /// A handler writing into `records` (the bound ride-view bucket).
    pub fn new(records: GroupCommit, metrics: RideViewMetrics) -> Self {
        RideViewHandler { records, metrics }
    }
}

/// Where and when the stream stored a delivery, as a step of its ride.
pub fn step_of(d: &Delivery<'_>, event: &AnyEvent) -> Step {
    let ms = d.published.unix_timestamp_nanos() / 1_000_000;
    Step {
        seq: d.stream_seq,
        subject: d.subject.to_string(),
        event: event.name().to_string(),
        stored_at_ms: u64::try_from(ms).unwrap_or(0),
    }
}

impl Handler for RideViewHandler {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        // Not an event, invalid, unknown version: dead-lettered with the reason.
        let event = match AnyEvent::decode(d.subject, d.payload) {
            Ok(e) => e,
            Err(e) => return e.into(),
        };
        let Some(ride) = event.ride_id().cloned() else {
            return Outcome::done();
        };
        let step = step_of(d, &event);
        match self.records.update(&ride, &event, step).await {
            Ok(u) => {
                let result = match u.applied {
                    Applied::Changed => "changed",
                    Applied::AlreadySeen => "already_seen",
                };
                self.metrics.updates.with_label_values(&[result]).inc();
                self.metrics.conflicts.inc_by(u.conflicts as u64);
                self.metrics.writes.inc_by(u.writes as u64);
                Outcome::done()
            }
            Err(e @ StoreError::Corrupt { .. }) => {
                // Not this message's fault, but nothing to build on: an
                // operator must look (the message ends in the DLQ, replayable).
                tracing::error!(error = %e, "stored ride record unreadable");
                Outcome::Retry {
                    reason: e.to_string(),
                }
            }
            Err(e) => Outcome::Retry {
                reason: e.to_string(),
            },
        }
    }
}
