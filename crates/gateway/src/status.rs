//! `GET /v1/rides/{id}`: a ride's status as the rider sees it, made from the
//! ride view record ([`hail_events::ride_view::RideView`]) that ride-view keeps.

use hail_events::ride_view::{RideState, RideView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a ride stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Requested; no driver found yet.
    Requested,
    /// A driver is on the way (see `driver`).
    Matched,
    /// No driver was found (see `unmatched`).
    Unmatched,
    /// The trip is over.
    Completed,
    /// The rider cancelled.
    Cancelled,
}

impl From<RideState> for State {
    fn from(s: RideState) -> Self {
        match s {
            RideState::Requested => State::Requested,
            RideState::Matched => State::Matched,
            RideState::Unmatched => State::Unmatched,
            RideState::Completed => State::Completed,
            RideState::Cancelled => State::Cancelled,
        }
    }
}

/// A ride's status. Times are milliseconds since the Unix epoch; a part is
/// absent until the service that provides it has answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RideStatus {
    /// The ride's id.
    pub ride_id: String,
    /// Where it stands.
    pub state: State,
    /// Its city.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// When it was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at_ms: Option<u64>,
    /// The driver matching found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    /// Why no driver was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<Unmatched>,
    /// pricing's quote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fare: Option<Fare>,
    /// fraud's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraud: Option<Fraud>,
    /// When the trip ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at_ms: Option<u64>,
    /// When the rider cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at_ms: Option<u64>,
}

/// The driver on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Driver {
    pub driver_id: String,
    /// Estimated time to the pickup, in seconds.
    pub eta_s: u32,
    /// The driver's distance to the pickup when matched, in metres.
    pub pickup_distance_m: f64,
    pub matched_at_ms: u64,
}

/// Why the ride found no driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Unmatched {
    /// `no_driver_in_radius`, `all_nearby_claimed`, `outside_service_area` or `cancelled`.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// The fare pricing quoted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fare {
    /// In minor units of `currency` (cents).
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// The surge multiplier applied (1.0: none).
    pub surge: f64,
    pub at_ms: u64,
}

/// fraud's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fraud {
    /// `allow`, `review` or `block`.
    pub verdict: String,
    /// 0.0 (clean) to 1.0 (certain fraud).
    pub score: f64,
    /// The rules that fired.
    pub rules: Vec<String>,
    pub at_ms: u64,
}

impl RideStatus {
    /// A ride the gateway accepted that ride-view has not recorded yet.
    pub fn requested(ride_id: &str, city: &str, requested_at_ms: u64) -> Self {
        RideStatus {
            ride_id: ride_id.to_string(),
            state: State::Requested,
            city: Some(city.to_string()),
            requested_at_ms: Some(requested_at_ms),
            driver: None,
            unmatched: None,
            fare: None,
            fraud: None,
            completed_at_ms: None,
            cancelled_at_ms: None,
        }
    }
}

impl From<&RideView> for RideStatus {
    fn from(v: &RideView) -> Self {
        RideStatus {
            ride_id: v.ride_id.to_string(),
            state: v.state.into(),
            city: v.city.clone(),
            requested_at_ms: v.requested_at_ms,
            driver: v.matched.as_ref().map(|m| Driver {
                driver_id: m.driver_id.to_string(),
                eta_s: m.eta_s,
                pickup_distance_m: m.pickup_distance_m,
                matched_at_ms: m.at_ms,
            }),
            unmatched: v.unmatched_reason.map(|r| Unmatched {
                reason: r.as_str().to_string(),
                at_ms: v.unmatched_at_ms,
            }),
            fare: v.fare.as_ref().map(|f| Fare {
                amount_minor: f.amount_minor,
                currency: f.currency.clone(),
                surge: f.surge,
                at_ms: f.at_ms,
            }),
            fraud: v.screening.as_ref().map(|s| Fraud {
                verdict: s.verdict.as_str().to_string(),
                score: s.score,
                rules: s.rules.clone(),
                at_ms: s.at_ms,
            }),
            completed_at_ms: v.completed_at_ms,
            cancelled_at_ms: v.cancelled_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use hail_events::{
        DriverId, RideId, UnmatchedReason, Verdict,
        ride_view::{Fare as F, Match, Screening},
    };

    use super::*;

    #[test]
    fn a_view_becomes_the_riders_status() {
        let mut v = RideView::new(RideId::new("r1").unwrap());
        v.state = RideState::Matched;
        v.city = Some("berlin".into());
        v.matched = Some(Match {
            driver_id: DriverId::new("d1").unwrap(),
            eta_s: 120,
            pickup_distance_m: 800.0,
            at_ms: 5,
        });
        v.fare = Some(F {
            amount_minor: 1250,
            currency: "EUR".into(),
            surge: 1.2,
            at_ms: 6,
        });
        v.screening = Some(Screening {
            verdict: Verdict::Review,
            score: 0.5,
            rules: vec!["velocity".into()],
            at_ms: 7,
        });
        let s = RideStatus::from(&v);
        assert_eq!(s.state, State::Matched);
        assert_eq!(s.driver.as_ref().unwrap().eta_s, 120);
        assert_eq!(s.fraud.as_ref().unwrap().verdict, "review");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["fare"]["amount_minor"], 1250);
        assert!(json.get("unmatched").is_none(), "{json}");

        v.state = RideState::Unmatched;
        v.unmatched_reason = Some(UnmatchedReason::OutsideServiceArea);
        let s = RideStatus::from(&v);
        assert_eq!(s.unmatched.unwrap().reason, "outside_service_area");
    }
}
