//! matching's handler. This first cut keeps no driver index yet, so every request
//! is answered `RideUnmatched` (no driver in radius); completions are acknowledged.

use hail_events::{RideCompleted, RideRequested, RideUnmatched, UnmatchedReason};
use hail_runtime::{Delivery, Handler, Outcome, Output};

/// Answers requests and takes note of completions.
#[derive(Debug, Clone, Default)]
pub struct Matching;

impl Matching {
    /// The answer to a request (pure).
    pub fn answer(&self, req: &RideRequested, now_ms: u64) -> RideUnmatched {
        RideUnmatched {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            reason: UnmatchedReason::NoDriverInRadius,
            requested_at_ms: req.requested_at_ms,
            at_ms: now_ms,
        }
    }
}

impl Handler for Matching {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        if d.subject.starts_with("rides.completed.") {
            return match d.decode::<RideCompleted>() {
                Ok(_) => Outcome::done(),
                Err(e) => e.into(),
            };
        }
        let req: RideRequested = match d.decode() {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        match Output::event(&self.answer(&req, hail_runtime::now_ms())) {
            Ok(out) => Outcome::Done(vec![out]),
            Err(e) => e.into(),
        }
    }
}
