//! What the claims bucket remembers about a ride, stored as JSON so that
//! `nats kv get hail_claims ride.<id>` is readable.

use hail_events::{DriverId, UnmatchedReason};
use serde::{Deserialize, Serialize};

/// The state of one ride in the claims bucket (key `ride.<ride id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RideRecord {
    /// A claim on the driver is being made. It counts only once the driver's key
    /// holds this ride; a redelivery that finds it checks that key.
    Pending(Pickup),
    /// The ride holds the driver: every redelivery publishes this same match.
    Matched(Pickup),
    /// No driver was found: every redelivery publishes this same answer.
    Unmatched { reason: UnmatchedReason, at_ms: u64 },
}

/// A driver chosen for a ride, with everything its `RideMatched` carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pickup {
    pub driver_id: DriverId,
    pub distance_m: f64,
    pub eta_s: u32,
    pub matched_at_ms: u64,
}

impl RideRecord {
    /// JSON bytes.
    pub fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self)
            .expect("a ride record always serializes")
            .into()
    }

    /// Parses JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_tagged_json() {
        let pickup = Pickup {
            driver_id: DriverId::new("d-1").unwrap(),
            distance_m: 253.73282676648785,
            eta_s: 46,
            matched_at_ms: 1_800_000_000_000,
        };
        let matched = RideRecord::Matched(pickup);
        let bytes = matched.encode();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(r#"{"state":"matched","driver_id":"d-1""#),
            "{text}"
        );
        assert_eq!(RideRecord::decode(&bytes).unwrap(), matched);
        let none = RideRecord::Unmatched {
            reason: UnmatchedReason::AllNearbyClaimed,
            at_ms: 5,
        };
        assert_eq!(RideRecord::decode(&none.encode()).unwrap(), none);
        assert!(RideRecord::decode(br#"{"state":"lost"}"#).is_err());
    }
}
