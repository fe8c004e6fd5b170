//! analytics' handler: validates every ride event by its subject's kind and counts
//! it per city. (Checkpointed exact counts come with the domain services.)

use hail_events::{
    Event, EventError, FareQuoted, RideCompleted, RideMatched, RideRequested, RideScreened,
    RideUnmatched, codec, subjects,
};
use hail_runtime::{Delivery, Handler, Outcome};

use crate::metrics::AnalyticsMetrics;

/// Counts ride events.
#[derive(Debug, Clone)]
pub struct Analytics {
    metrics: AnalyticsMetrics,
}

/// Decodes `bytes` as the event the subject's kind announces; returns its name.
pub fn classify(subject: &str, bytes: &[u8]) -> Result<&'static str, EventError> {
    fn check<E: Event>(bytes: &[u8]) -> Result<&'static str, EventError> {
        codec::decode::<E>(bytes).map(|_| E::NAME)
    }
    match subject.split('.').nth(1) {
        Some("requested") => check::<RideRequested>(bytes),
        Some("matched") => check::<RideMatched>(bytes),
        Some("unmatched") => check::<RideUnmatched>(bytes),
        Some("priced") => check::<FareQuoted>(bytes),
        Some("screened") => check::<RideScreened>(bytes),
        Some("completed") => check::<RideCompleted>(bytes),
        _ => Err(EventError::InvalidField {
            field: "subject",
            reason: format!("{subject:?} is not a ride event subject"),
        }),
    }
}

impl Analytics {
    /// Counts into `metrics`.
    pub fn new(metrics: AnalyticsMetrics) -> Self {
        Analytics { metrics }
    }
}

impl Handler for Analytics {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        let event = match classify(d.subject, d.payload) {
            Ok(e) => e,
            Err(e) => return e.into(),
        };
        let city = subjects::city_of(d.subject).unwrap_or("unknown");
        self.metrics.events.with_label_values(&[city, event]).inc();
        Outcome::done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_subject_and_refuses_mismatch() {
        let req = codec::encode(&hail_events::sample::ride_requested("r1", "berlin")).unwrap();
        assert_eq!(
            classify("rides.requested.berlin", &req),
            Ok("RideRequested")
        );
        assert_eq!(
            classify("rides.priced.berlin", &req).unwrap_err().kind(),
            "wrong_event"
        );
        assert_eq!(
            classify("rides.bogus.berlin", &req).unwrap_err().kind(),
            "invalid_field"
        );
    }
}
