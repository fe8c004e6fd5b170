//! What each null consumer publishes: the same event the real service publishes
//! for a request, with the real codec and headers (so the same bytes on the wire),
//! built from the `Hail-Ride-Id` header and the subject without decoding the payload.

use async_nats::HeaderMap;
use hail_events::{
    City, FareQuoted, RideId, RideScreened, RideUnmatched, UnmatchedReason, Verdict, headers,
    subjects,
};
use hail_runtime::Output;

use hail_runtime::service::Service;

use crate::rides::rider_of;

/// The output of `role` for a message on `subject`: `None` when the role only
/// reads it (analytics, or a completion for matching); an error when the message
/// lacks a usable ride id or city.
pub fn for_message(
    role: Service,
    subject: &str,
    hdrs: Option<&HeaderMap>,
) -> Result<Option<Output>, String> {
    let is_request = subjects::matches(subjects::RIDES_REQUESTED_ALL, subject);
    if role == Service::Analytics || !is_request {
        return Ok(None);
    }
    let (ride_id, city) = ride_and_city(subject, hdrs)?;
    let now = hail_runtime::now_ms();
    let out = match role {
        Service::Matching => Output::event(&RideUnmatched {
            ride_id,
            city,
            reason: UnmatchedReason::NoDriverInRadius,
            requested_at_ms: now,
            at_ms: now,
        }),
        Service::Pricing => Output::event(&FareQuoted {
            ride_id,
            city,
            amount_minor: 1250,
            currency: "EUR".into(),
            surge: 1.0,
            distance_m: 3_800.0,
            duration_s: 600,
            requested_at_ms: now,
            at_ms: now,
        }),
        Service::Fraud => Output::event(&RideScreened {
            rider_id: rider_of(&ride_id).map_err(|e| e.to_string())?,
            ride_id,
            city,
            score: 0.0,
            verdict: Verdict::Allow,
            rules: Vec::new(),
            requested_at_ms: now,
            at_ms: now,
        }),
        Service::Analytics | Service::RideView => return Ok(None),
    };
    out.map(Some).map_err(|e| e.to_string())
}

fn ride_and_city(subject: &str, hdrs: Option<&HeaderMap>) -> Result<(RideId, City), String> {
    let ride = hdrs
        .and_then(|h| h.get(headers::RIDE_ID))
        .ok_or_else(|| format!("no {} header", headers::RIDE_ID))?;
    let ride_id = RideId::new(ride.as_str()).map_err(|e| e.to_string())?;
    let city = subjects::city_of(subject).ok_or_else(|| format!("no city in {subject}"))?;
    let city = City::new(city).map_err(|e| e.to_string())?;
    Ok((ride_id, city))
}

#[cfg(test)]
mod tests {
    use hail_events::sample;

    use super::*;

    fn request_headers() -> HeaderMap {
        headers::for_event(&sample::ride_requested("run-7", "paris"))
    }

    #[test]
    fn each_role_answers_a_request_like_its_service() {
        let h = request_headers();
        let subj = "rides.requested.paris";
        let out = |r| for_message(r, subj, Some(&h)).unwrap();
        let m = out(Service::Matching).unwrap();
        assert_eq!(m.subject, "rides.unmatched.paris");
        assert_eq!(
            m.headers.get(headers::MSG_ID).unwrap().as_str(),
            "unmatched:run-7"
        );
        assert_eq!(out(Service::Pricing).unwrap().subject, "rides.priced.paris");
        assert_eq!(out(Service::Fraud).unwrap().subject, "rides.screened.paris");
        assert!(out(Service::Analytics).is_none());
        assert!(
            for_message(Service::Matching, "rides.completed.paris", Some(&h))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn each_answer_is_on_one_of_its_services_outputs() {
        let h = request_headers();
        for service in Service::ALL {
            let out = for_message(service, "rides.requested.paris", Some(&h)).unwrap();
            let Some(out) = out else { continue };
            let subject = out.subject;
            assert!(
                service
                    .outputs()
                    .iter()
                    .any(|p| subject.starts_with(p.trim_end_matches('>'))),
                "{service}: {subject} is none of {:?}",
                service.outputs()
            );
        }
    }

    #[test]
    fn a_request_without_ride_header_is_an_error() {
        let err = for_message(Service::Pricing, "rides.requested.paris", None).unwrap_err();
        assert_eq!(err, "no Hail-Ride-Id header");
    }
}
