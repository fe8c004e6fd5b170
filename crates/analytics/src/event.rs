//! Every event analytics reads, decoded as the kind its subject announces.

use hail_events::{
    City, Event, EventError, FareQuoted, RideCompleted, RideMatched, RideRequested, RideScreened,
    RideUnmatched, codec,
};

/// One ride event from `rides.<kind>.<city>`.
#[derive(Debug, Clone, PartialEq)]
pub enum RideEvent {
    Requested(RideRequested),
    Matched(RideMatched),
    Unmatched(RideUnmatched),
    Priced(FareQuoted),
    Screened(RideScreened),
    Completed(RideCompleted),
}

impl RideEvent {
    /// Decodes and validates `bytes` as the event `subject`'s kind announces.
    pub fn decode(subject: &str, bytes: &[u8]) -> Result<Self, EventError> {
        Ok(match subject.split('.').nth(1) {
            Some("requested") => RideEvent::Requested(codec::decode(bytes)?),
            Some("matched") => RideEvent::Matched(codec::decode(bytes)?),
            Some("unmatched") => RideEvent::Unmatched(codec::decode(bytes)?),
            Some("priced") => RideEvent::Priced(codec::decode(bytes)?),
            Some("screened") => RideEvent::Screened(codec::decode(bytes)?),
            Some("completed") => RideEvent::Completed(codec::decode(bytes)?),
            _ => {
                return Err(EventError::InvalidField {
                    field: "subject",
                    reason: format!("{subject:?} is not a ride event subject"),
                });
            }
        })
    }

    /// The city it happened in.
    pub fn city(&self) -> &City {
        match self {
            RideEvent::Requested(e) => &e.city,
            RideEvent::Matched(e) => &e.city,
            RideEvent::Unmatched(e) => &e.city,
            RideEvent::Priced(e) => &e.city,
            RideEvent::Screened(e) => &e.city,
            RideEvent::Completed(e) => &e.city,
        }
    }

    /// The event type name (`RideRequested`…).
    pub fn name(&self) -> &'static str {
        match self {
            RideEvent::Requested(_) => RideRequested::NAME,
            RideEvent::Matched(_) => RideMatched::NAME,
            RideEvent::Unmatched(_) => RideUnmatched::NAME,
            RideEvent::Priced(_) => FareQuoted::NAME,
            RideEvent::Screened(_) => RideScreened::NAME,
            RideEvent::Completed(_) => RideCompleted::NAME,
        }
    }
}

#[cfg(test)]
mod tests {
    use hail_events::sample;

    use super::*;

    #[test]
    fn decodes_by_subject_and_refuses_mismatch() {
        let req = codec::encode(&sample::ride_requested("r1", "berlin")).unwrap();
        let e = RideEvent::decode("rides.requested.berlin", &req).unwrap();
        assert_eq!((e.name(), e.city().as_str()), ("RideRequested", "berlin"));
        let err = RideEvent::decode("rides.priced.berlin", &req).unwrap_err();
        assert_eq!(err.kind(), "wrong_event");
        let err = RideEvent::decode("rides.bogus.berlin", &req).unwrap_err();
        assert_eq!(err.kind(), "invalid_field");
        assert!(err.to_string().contains("rides.bogus.berlin"), "{err}");
    }
}
