//! Every event analytics reads: any hail event, decoded as the kind its subject
//! announces (hail-events' [`AnyEvent`]). Analytics consumes the RIDES stream, so
//! it sees ride kinds only; [`CityTotals`](crate::totals::CityTotals) counts
//! nothing for any other.

pub use hail_events::AnyEvent as RideEvent;

#[cfg(test)]
mod tests {
    use hail_events::{codec, sample};

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
