//! The ride records in KV ([`hail_events::ride_view::BUCKET`]), each updated
//! by read, [`apply`](crate::transition::apply), compare-and-set on the
//! revision read: several instances (and several deliveries of one ride's
//! events at once) never overwrite each other's steps; a conflict reads the
//! record again and re-applies.

use async_nats::jetstream::{
    self,
    kv::{self, UpdateErrorKind},
};
use hail_events::{
    AnyEvent, RideId,
    ride_view::{self, RideView, Step},
};

use crate::transition::{self, Applied};

/// Attempts of one update before it is given up as a transient failure (the
/// runtime then retries the message later).
pub const MAX_ATTEMPTS: usize = 64;

/// The bucket's config: one revision per ride (the latest record), no expiry.
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: ride_view::BUCKET.into(),
        description: "hail ride-view: every ride's status, built from RIDES".into(),
        history: 1,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Binds the bucket (the service, at start): created or updated only when
/// missing or different ([`hail_runtime::provision::bind_bucket`]).
pub async fn bind(js: &jetstream::Context, replicas: usize) -> anyhow::Result<kv::Store> {
    Ok(hail_runtime::provision::bind_bucket(js, bucket_config(replicas)).await?)
}

/// Why an update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing KV failed (unreachable, timed out…).
    #[error("ride-view bucket {op} of {ride}: {reason}")]
    Kv {
        op: &'static str,
        ride: String,
        reason: String,
    },
    /// The stored record is not a ride view.
    #[error("stored record of {ride} is not a ride view: {reason}")]
    Corrupt { ride: String, reason: String },
    /// Other writers kept winning.
    #[error("record of {ride} changed under every one of {MAX_ATTEMPTS} attempts")]
    Contended { ride: String },
}

/// What one update did, and how many compare-and-set conflicts it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Updated {
    pub applied: Applied,
    pub conflicts: usize,
}

/// Applies `event` (stored as `step`) to its ride's record in `kv`.
pub async fn update(
    kv: &kv::Store,
    ride: &RideId,
    event: &AnyEvent,
    step: Step,
) -> Result<Updated, StoreError> {
    let key = ride_view::key(ride);
    let kv_err = |op, e: &dyn std::fmt::Display| StoreError::Kv {
        op,
        ride: ride.to_string(),
        reason: e.to_string(),
    };
    for conflicts in 0..MAX_ATTEMPTS {
        let entry = kv.entry(key).await.map_err(|e| kv_err("read", &e))?;
        // Revision 0 expects no record; a deleted or purged one has a revision
        // but no record.
        let revision = entry.as_ref().map_or(0, |e| e.revision);
        let mut view = match entry {
            Some(e) if e.operation == kv::Operation::Put => decode(ride, &e.value)?,
            _ => RideView::new(ride.clone()),
        };
        if transition::apply(&mut view, event, step.clone()) == Applied::AlreadySeen {
            return Ok(Updated {
                applied: Applied::AlreadySeen,
                conflicts,
            });
        }
        let bytes = serde_json::to_vec(&view)
            .map_err(|e| kv_err("encode", &e))?
            .into();
        let written = match kv.update(key, bytes, revision).await {
            // Another writer stored a revision since the read: read again.
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => false,
            r => r.map(|_| true).map_err(|e| kv_err("update", &e))?,
        };
        if written {
            return Ok(Updated {
                applied: Applied::Changed,
                conflicts,
            });
        }
    }
    Err(StoreError::Contended {
        ride: ride.to_string(),
    })
}

fn decode(ride: &RideId, bytes: &[u8]) -> Result<RideView, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        ride: ride.to_string(),
        reason: e.to_string(),
    })
}
