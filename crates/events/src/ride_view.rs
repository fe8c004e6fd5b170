//! The ride view: one record per ride, the read model that the `ride-view`
//! service builds from every event on RIDES and that the gateway serves as a
//! ride's status. It lives in the KV bucket [`BUCKET`], under the ride's id
//! ([`key`]), encoded as JSON so that any client (and `nats kv get`) can read it.
//!
//! The record also keeps where each event of the ride sits in RIDES ([`Step`]),
//! so that `hail trace` reads one ride's events by sequence instead of scanning
//! the stream.

use serde::{Deserialize, Serialize};

use crate::{DriverId, RideId, UnmatchedReason, Verdict};

/// The KV bucket that holds every ride's [`RideView`].
pub const BUCKET: &str = "ride_view";

/// The key of a ride's record in [`BUCKET`]: its id (ride ids are valid KV keys).
pub fn key(ride: &RideId) -> &str {
    ride.as_str()
}

/// Where a ride stands, from the rider's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RideState {
    /// Requested; matching has not answered yet.
    Requested,
    /// A driver is on the way.
    Matched,
    /// No driver was found (see [`RideView::unmatched_reason`]).
    Unmatched,
    /// The trip is over.
    Completed,
    /// The rider cancelled.
    Cancelled,
}

/// One ride's status, built from its events. Every field but the id and state is
/// filled in as the event that carries it arrives; events may arrive in any order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RideView {
    pub ride_id: RideId,
    pub state: RideState,
    pub city: Option<String>,
    pub requested_at_ms: Option<u64>,
    pub matched: Option<Match>,
    pub unmatched_reason: Option<UnmatchedReason>,
    pub unmatched_at_ms: Option<u64>,
    pub fare: Option<Fare>,
    pub screening: Option<Screening>,
    pub completed_at_ms: Option<u64>,
    pub cancelled_at_ms: Option<u64>,
    /// Every event of the ride that ride-view has seen, in stream order.
    pub steps: Vec<Step>,
}

/// matching's answer when it found a driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub driver_id: DriverId,
    pub eta_s: u32,
    pub pickup_distance_m: f64,
    pub at_ms: u64,
}

/// pricing's quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fare {
    pub amount_minor: u64,
    pub currency: String,
    pub surge: f64,
    pub at_ms: u64,
}

/// fraud's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Screening {
    pub verdict: Verdict,
    pub score: f64,
    pub rules: Vec<String>,
    pub at_ms: u64,
}

/// One event of the ride as stored in RIDES: enough to fetch it again by
/// sequence (`$JS.API.DIRECT.GET`) and to say who produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The RIDES stream sequence.
    pub seq: u64,
    pub subject: String,
    /// The `Hail-Event` type name.
    pub event: String,
    /// When the stream stored it (ms since the epoch).
    pub stored_at_ms: u64,
}

impl RideView {
    /// A ride ride-view has seen no event of yet.
    pub fn new(ride_id: RideId) -> Self {
        RideView {
            ride_id,
            state: RideState::Requested,
            city: None,
            requested_at_ms: None,
            matched: None,
            unmatched_reason: None,
            unmatched_at_ms: None,
            fare: None,
            screening: None,
            completed_at_ms: None,
            cancelled_at_ms: None,
            steps: Vec::new(),
        }
    }
}
