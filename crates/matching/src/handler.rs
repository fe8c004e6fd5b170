//! matching's handler: decodes a delivery, asks the [`Matcher`], and turns its
//! answer into the event to publish and the outcome for the runtime.

use hail_events::{RideCancelled, RideCompleted, RideRequested, RideUnmatched, subjects};
use hail_runtime::{Delivery, Handler, Outcome, Output};

use crate::{
    claims::ClaimsError,
    matcher::{Answer, Completion, Decided, Matcher, matched_event},
    metrics::{LAPSED, Metrics, REPLAYED},
};

/// Answers requests and releases the drivers of completed and cancelled rides.
pub struct Matching {
    matcher: Matcher,
    metrics: Metrics,
}

impl Matching {
    /// A handler around `matcher`.
    pub fn new(matcher: Matcher, metrics: Metrics) -> Self {
        Self { matcher, metrics }
    }

    async fn requested(&self, d: &Delivery<'_>) -> Outcome {
        let req: RideRequested = match d.decode() {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        match self.matcher.request(&req, hail_runtime::now_ms()).await {
            Ok(decided) => {
                self.count(&req, &decided);
                answer_event(&req, decided.answer)
            }
            Err(e) => claims_failure(e),
        }
    }

    async fn completed(&self, d: &Delivery<'_>) -> Outcome {
        let done: RideCompleted = match d.decode() {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        let outcome = match self.matcher.complete(&done).await {
            Ok(Completion::Released { .. }) => "released",
            Ok(Completion::NothingHeld) => "nothing_held",
            Ok(Completion::AlreadyReleased) => "already_released",
            // Its request may still be in flight: wait for it, up to --max-deliver.
            Ok(Completion::Unknown) => {
                return Outcome::Retry {
                    reason: format!("no claim for ride {} (yet)", done.ride_id),
                };
            }
            Err(e) => return claims_failure(e),
        };
        self.metrics.completion(&done.city, outcome);
        Outcome::done()
    }

    async fn cancelled(&self, d: &Delivery<'_>) -> Outcome {
        let cancel: RideCancelled = match d.decode() {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        match self.matcher.cancel(&cancel, hail_runtime::now_ms()).await {
            Ok(done) => {
                self.metrics.cancellation(&cancel.city, done.as_str());
                Outcome::done()
            }
            Err(e) => claims_failure(e),
        }
    }

    fn count(&self, req: &RideRequested, decided: &Decided) {
        let outcome = match &decided.answer {
            Answer::Matched {
                replay: false,
                pickup,
            } => {
                self.metrics.pickup(&req.city, pickup.distance_m);
                "matched"
            }
            Answer::Unmatched {
                replay: false,
                reason,
                ..
            } => reason.as_str(),
            Answer::Lapsed { driver } => {
                tracing::warn!(
                    ride = %req.ride_id,
                    %driver,
                    "the ride's claim lapsed and its driver has another ride: no answer"
                );
                LAPSED
            }
            _ => REPLAYED,
        };
        self.metrics
            .request(&req.city, outcome, decided.claims_lost);
    }
}

impl Handler for Matching {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        if subjects::matches(subjects::RIDES_COMPLETED_ALL, d.subject) {
            self.completed(d).await
        } else if subjects::matches(subjects::RIDES_CANCELLED_ALL, d.subject) {
            self.cancelled(d).await
        } else {
            self.requested(d).await
        }
    }
}

/// The event an answer publishes: built from the record, so every delivery of a
/// request publishes the same bytes.
fn answer_event(req: &RideRequested, answer: Answer) -> Outcome {
    let output = match answer {
        Answer::Matched { pickup, .. } => Output::event(&matched_event(req, pickup)),
        Answer::Unmatched { reason, at_ms, .. } => Output::event(&RideUnmatched {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            reason,
            requested_at_ms: req.requested_at_ms,
            at_ms,
        }),
        Answer::Finished | Answer::Lapsed { .. } => return Outcome::done(),
    };
    match output {
        Ok(out) => Outcome::Done(vec![out]),
        Err(e) => e.into(),
    }
}

fn claims_failure(e: ClaimsError) -> Outcome {
    match e {
        ClaimsError::BadRecord { .. } => Outcome::Poison {
            kind: "bad_claim_record",
            reason: e.to_string(),
        },
        e => Outcome::Retry {
            reason: format!("claims bucket: {e}"),
        },
    }
}
