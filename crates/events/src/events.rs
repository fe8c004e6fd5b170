//! Every event of hail. Field names are part of the wire format (MessagePack maps
//! with named fields): add fields with `#[serde(default)]`, never rename one.
//!
//! Times are milliseconds since the Unix epoch (`*_ms`), distances metres,
//! durations seconds, money minor units of the named currency.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    City, DriverId, EventError, LatLng, RideId, RiderId,
    ids::{CardFingerprint, DeviceId},
    subjects,
};

/// What every event type tells the codec, the subject builders and the headers.
pub trait Event: Serialize + DeserializeOwned {
    /// The type name, carried in the payload and the `Hail-Event` header.
    const NAME: &'static str;
    /// The schema version this build writes and the newest it reads.
    const VERSION: u16;
    /// The subject the event is published on.
    fn subject(&self) -> String;
    /// The ride it belongs to, if any.
    fn ride_id(&self) -> Option<&RideId>;
    /// The deterministic message id: the same logical event always gets the same id,
    /// so a retried publish is dropped by JetStream's duplicate window.
    fn msg_id(&self) -> String;
    /// Checks what serde alone cannot (ranges of plain numbers).
    fn validate(&self) -> Result<(), EventError> {
        Ok(())
    }
}

/// A rider asks for a ride. Published once by the gateway or the load generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RideRequested {
    pub ride_id: RideId,
    pub rider_id: RiderId,
    pub city: City,
    pub pickup: LatLng,
    pub dropoff: LatLng,
    pub requested_at_ms: u64,
    pub device_id: DeviceId,
    pub card: CardFingerprint,
}

/// A driver's position and availability, last value per driver kept in DRIVERS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverLocationUpdated {
    pub driver_id: DriverId,
    pub city: City,
    pub position: LatLng,
    pub status: DriverStatus,
    pub at_ms: u64,
}

/// Whether a driver can take a ride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverStatus {
    Available,
    OnTrip,
    Offline,
}

/// matching found a driver for the ride.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RideMatched {
    pub ride_id: RideId,
    pub city: City,
    pub driver_id: DriverId,
    pub pickup_distance_m: f64,
    pub eta_s: u32,
    pub requested_at_ms: u64,
    pub matched_at_ms: u64,
}

/// matching found no driver for the ride.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RideUnmatched {
    pub ride_id: RideId,
    pub city: City,
    pub reason: UnmatchedReason,
    pub requested_at_ms: u64,
    pub at_ms: u64,
}

/// Why a ride found no driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedReason {
    /// No available driver within the search radius.
    NoDriverInRadius,
    /// Drivers were in range but all were claimed by other rides.
    AllNearbyClaimed,
    /// The pickup lies outside its city's service area.
    OutsideServiceArea,
    /// The rider cancelled the ride before it was answered.
    Cancelled,
}

impl UnmatchedReason {
    /// The snake_case name, as on the wire, for labels and text.
    ///
    /// ```
    /// # use hail_events::UnmatchedReason;
    /// assert_eq!(UnmatchedReason::AllNearbyClaimed.as_str(), "all_nearby_claimed");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            UnmatchedReason::NoDriverInRadius => "no_driver_in_radius",
            UnmatchedReason::AllNearbyClaimed => "all_nearby_claimed",
            UnmatchedReason::OutsideServiceArea => "outside_service_area",
            UnmatchedReason::Cancelled => "cancelled",
        }
    }
}

/// pricing quoted a fare for the ride.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FareQuoted {
    pub ride_id: RideId,
    pub city: City,
    /// Amount in minor units of `currency` (cents, pence).
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    pub surge: f64,
    pub distance_m: f64,
    pub duration_s: u32,
    pub requested_at_ms: u64,
    pub at_ms: u64,
}

/// fraud's decision on a ride request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Review,
    Block,
}

impl Verdict {
    /// The lowercase name, for labels and text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Review => "review",
            Verdict::Block => "block",
        }
    }
}

/// fraud screened the ride request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RideScreened {
    pub ride_id: RideId,
    pub city: City,
    pub rider_id: RiderId,
    /// 0.0 (clean) to 1.0 (certain fraud).
    pub score: f64,
    pub verdict: Verdict,
    /// The names of the rules that fired.
    pub rules: Vec<String>,
    pub requested_at_ms: u64,
    pub at_ms: u64,
}

/// The trip is over; matching releases the driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RideCompleted {
    pub ride_id: RideId,
    pub city: City,
    pub driver_id: DriverId,
    pub at_ms: u64,
}

/// The rider cancelled the ride; matching releases its driver, if it has one,
/// and answers a request it has not answered yet `RideUnmatched` (`cancelled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RideCancelled {
    pub ride_id: RideId,
    pub city: City,
    /// The rider who cancelled, when the publisher knows it.
    #[serde(default)]
    pub rider_id: Option<RiderId>,
    pub at_ms: u64,
    /// Free text from the rider or the app, at most [`MAX_CANCEL_REASON`] bytes.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The longest [`RideCancelled::reason`], in bytes.
pub const MAX_CANCEL_REASON: usize = 256;

fn check_non_negative(field: &'static str, v: f64) -> Result<(), EventError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(EventError::InvalidField {
            field,
            reason: format!("{v} is not a finite non-negative number"),
        })
    }
}

pub(crate) fn no_checks<T>(_: &T) -> Result<(), EventError> {
    Ok(())
}

pub(crate) fn check_matched(e: &RideMatched) -> Result<(), EventError> {
    check_non_negative("pickup_distance_m", e.pickup_distance_m)
}

pub(crate) fn check_fare(e: &FareQuoted) -> Result<(), EventError> {
    check_non_negative("distance_m", e.distance_m)?;
    check_non_negative("surge", e.surge)?;
    if e.currency.len() != 3 || !e.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(EventError::InvalidField {
            field: "currency",
            reason: format!("{:?} is not an ISO 4217 code", e.currency),
        });
    }
    Ok(())
}

pub(crate) fn check_cancelled(e: &RideCancelled) -> Result<(), EventError> {
    match &e.reason {
        Some(r) if r.len() > MAX_CANCEL_REASON => Err(EventError::InvalidField {
            field: "reason",
            reason: format!("{} bytes, more than {MAX_CANCEL_REASON}", r.len()),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_screened(e: &RideScreened) -> Result<(), EventError> {
    if !(0.0..=1.0).contains(&e.score) {
        return Err(EventError::InvalidField {
            field: "score",
            reason: format!("{} is outside [0, 1]", e.score),
        });
    }
    Ok(())
}

impl Event for DriverLocationUpdated {
    const NAME: &'static str = "DriverLocationUpdated";
    const VERSION: u16 = 1;
    fn subject(&self) -> String {
        subjects::driver(&self.city, &self.driver_id)
    }
    fn ride_id(&self) -> Option<&RideId> {
        None
    }
    fn msg_id(&self) -> String {
        format!("driver:{}:{}", self.driver_id, self.at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codec, sample};

    #[test]
    fn a_cancellation_round_trips_on_its_subject_and_id() {
        let e = sample::ride_cancelled("r1", "berlin");
        assert_eq!(e.subject(), "rides.cancelled.berlin");
        assert_eq!(e.msg_id(), "cancelled:r1");
        let bytes = codec::encode(&e).unwrap();
        assert_eq!(codec::decode::<RideCancelled>(&bytes).unwrap(), e);
    }

    #[test]
    fn a_cancellation_needs_no_rider_nor_reason() {
        let e = RideCancelled {
            rider_id: None,
            reason: None,
            ..sample::ride_cancelled("r1", "berlin")
        };
        let bytes = codec::encode(&e).unwrap();
        assert_eq!(codec::decode::<RideCancelled>(&bytes).unwrap(), e);
    }

    #[test]
    fn a_long_cancel_reason_is_refused() {
        let e = RideCancelled {
            reason: Some("x".repeat(MAX_CANCEL_REASON + 1)),
            ..sample::ride_cancelled("r1", "berlin")
        };
        let err = codec::encode(&e).unwrap_err();
        assert_eq!(err.kind(), "invalid_field");
        assert!(err.to_string().contains("reason"), "{err}");
    }

    #[test]
    fn cancelled_is_an_unmatched_reason() {
        assert_eq!(UnmatchedReason::Cancelled.as_str(), "cancelled");
        let wire = rmp_serde::to_vec(&UnmatchedReason::Cancelled).unwrap();
        assert_eq!(rmp_serde::from_slice::<String>(&wire).unwrap(), "cancelled");
    }
}
