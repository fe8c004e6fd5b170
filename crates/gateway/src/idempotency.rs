//! `Idempotency-Key`: a retried `POST /v1/rides` with the same key gets the
//! same ride, also from another gateway instance or after a restart.
//!
//! The key maps to a [`Record`] in the KV bucket [`BUCKET`] (kept a day). The
//! first request creates it (create-if-absent: of two concurrent requests with
//! one key, one creates it and the other reads it), publishes the ride and
//! marks the record `accepted` after the PubAck. A retry that finds the record
//! accepted answers at once; one that finds it not accepted (the first attempt
//! failed, is still in flight or died) publishes the very same event again,
//! whose `Nats-Msg-Id` (`requested:<ride>`) the stream's duplicate window
//! drops if it was stored after all.

use std::time::Duration;

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use hail_events::RideId;
use sha2::{Digest, Sha256};

use crate::request::NewRide;

/// The KV bucket of idempotency keys.
pub const BUCKET: &str = "hail_gateway_idempotency";

/// How long a key is remembered.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// The bucket's config.
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: BUCKET.into(),
        description: "hail gateway: Idempotency-Key to ride".into(),
        history: 1,
        max_age: TTL,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// What a key stands for: the ride and the request it was made with, so a
/// retry publishes the identical event and a different request is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub ride_id: String,
    pub requested_at_ms: u64,
    pub request: NewRide,
    /// Set once the ride's PubAck came.
    #[serde(default)]
    pub accepted: bool,
}

/// The ride id of a request with this `Idempotency-Key`: `ride-` and the first
/// 128 bits of SHA-256 of the key, in hex. Derived, not random, so a client
/// knows its ride's id before the answer (the load generator matches the
/// services' answers to its rides with it), and a retry after the key's record
/// has expired still names the same ride.
///
/// ```
/// let a = hail_gateway::idempotency::ride_id_for_key(b"order-1");
/// assert_eq!(a, hail_gateway::idempotency::ride_id_for_key(b"order-1"));
/// assert!(a.as_str().starts_with("ride-") && a.as_str().len() == 37);
/// ```
pub fn ride_id_for_key(key: &[u8]) -> RideId {
    let digest = Sha256::new()
        .chain_update(b"hail-gateway ride id\0")
        .chain_update(key)
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    RideId::new(format!("ride-{hex}")).expect("a valid ride id")
}

/// Checks a header value and turns it into a bucket key: printable ASCII, 1
/// to [`MAX_KEY_LEN`] bytes, hex-encoded (KV keys allow fewer characters).
pub fn bucket_key(header: &[u8]) -> Result<String, String> {
    if header.is_empty() || header.len() > MAX_KEY_LEN {
        return Err(format!(
            "must be 1 to {MAX_KEY_LEN} bytes, got {}",
            header.len()
        ));
    }
    if let Some(b) = header.iter().find(|b| !(0x21..=0x7e).contains(*b)) {
        return Err(format!(
            "holds byte 0x{b:02x}; only printable ASCII without spaces is allowed"
        ));
    }
    let hex: String = header.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("k.{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_encoded() {
        assert_eq!(bucket_key(b"a-1").unwrap(), "k.612d31");
        assert!(bucket_key(b"").is_err());
        assert!(bucket_key(b"a b").unwrap_err().contains("0x20"));
        assert!(bucket_key(&[b'x'; 256]).is_err());
        assert!(bucket_key(&[b'x'; 255]).is_ok());
    }
}
