//! fraud's handler. This first cut has no rules yet: every request is screened
//! `allow` with score 0 and no rule fired.

use hail_events::{RideRequested, RideScreened, Verdict};
use hail_runtime::{Delivery, Handler, Outcome, Output};

/// Screens every request.
#[derive(Debug, Clone, Default)]
pub struct Fraud;

impl Fraud {
    /// The screening of a request (pure).
    pub fn screen(&self, req: &RideRequested, now_ms: u64) -> RideScreened {
        RideScreened {
            ride_id: req.ride_id.clone(),
            city: req.city.clone(),
            rider_id: req.rider_id.clone(),
            score: 0.0,
            verdict: Verdict::Allow,
            rules: Vec::new(),
            requested_at_ms: req.requested_at_ms,
            at_ms: now_ms,
        }
    }
}

impl Handler for Fraud {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        let req: RideRequested = match d.decode() {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        match Output::event(&self.screen(&req, hail_runtime::now_ms())) {
            Ok(out) => Outcome::Done(vec![out]),
            Err(e) => e.into(),
        }
    }
}
