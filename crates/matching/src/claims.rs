//! The claims bucket (`hail_claims`), the arbiter between matching instances.
//!
//! - `driver.<driver id>` holds the id of the ride that has the driver. It is
//!   created only if absent, so two rides can never hold one driver, whichever
//!   instance asks; releasing deletes it. Every claim expires after `claim_ttl`
//!   (a per-message TTL): whatever goes wrong — a commit or release that failed,
//!   a request dead-lettered, a ride that never completes — the driver is free
//!   again within that bound. The server leaves a marker when it expires the
//!   claim (`Nats-Marker-Reason`), which every instance's feed reads as a release.
//! - `ride.<ride id>` holds the ride's [`RideRecord`], so a redelivered request
//!   gets the answer it got before. It is written with an expected revision, so
//!   two deliveries of one request handled at once cannot both decide. Every
//!   record, and the purge marker a finished ride leaves, expires after
//!   `forget_after`, at least as long as RIDES keeps a request (checked at
//!   start), so any delivery of a request still in RIDES finds its record; and
//!   the bucket does not grow with every ride ever requested.
//!
//! Every write returns the bucket revision (stream sequence) it made, which the
//! driver index uses to order its own writes against the bucket's feed.

use std::time::Duration;

use async_nats::{
    HeaderMap, HeaderValue,
    header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_TTL, NATS_ROLLUP},
    jetstream::{
        self,
        context::PublishErrorKind,
        kv::{self, Operation},
        stream::StorageType,
    },
};
use bytes::Bytes;
use hail_events::{DriverId, RideId};

use crate::record::RideRecord;

/// The bucket's name.
pub const BUCKET: &str = "hail_claims";
/// Key prefix of driver claims.
pub const DRIVER_PREFIX: &str = "driver.";
/// Key prefix of ride records.
pub const RIDE_PREFIX: &str = "ride.";

/// A claims bucket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    /// The key changed since it was read: someone else is working on it.
    #[error("{key} changed since revision {expected}")]
    Conflict { key: String, expected: u64 },
    /// NATS refused or did not answer.
    #[error("{op} {key} in {BUCKET}: {source}")]
    Nats {
        op: &'static str,
        key: String,
        source: async_nats::Error,
    },
    /// A ride record that is not one this service writes.
    #[error("{key} in {BUCKET} is not a ride record: {source}")]
    BadRecord {
        key: String,
        source: serde_json::Error,
    },
}

/// What the bucket holds for a ride.
#[derive(Debug, Clone, PartialEq)]
pub enum RideEntry {
    /// Nothing: the request was never handled (or long enough ago to be forgotten).
    Absent,
    /// A record, at a revision.
    Record { record: RideRecord, revision: u64 },
    /// The ride completed and its claim was released.
    Finished,
}

/// The result of trying to claim a driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverClaim {
    /// The ride now holds the driver, at this revision.
    Won { revision: u64 },
    /// Another ride holds the driver.
    Taken,
}

/// A handle on the claims bucket.
#[derive(Debug, Clone)]
pub struct Claims {
    js: jetstream::Context,
    store: kv::Store,
    lifetimes: Lifetimes,
}

/// How long the bucket keeps what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A driver claim: the longest a driver stays claimed if nothing releases it.
    pub claim_ttl: Duration,
    /// A ride record or finished marker.
    pub forget_after: Duration,
}

/// The bucket's config, as `hail provision` and the service make it.
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: BUCKET.into(),
        description: "matching: driver claims and ride outcomes".into(),
        history: 1,
        storage: StorageType::File,
        num_replicas: replicas,
        // Enables per-message TTLs (claims and records); the duration is how
        // long the server keeps the marker it leaves when a TTL expires.
        limit_markers: Some(Duration::from_secs(60)),
        ..Default::default()
    }
}

impl Claims {
    /// Binds the bucket ([`hail_runtime::provision::bind_bucket`]: created or
    /// updated only when missing or different; any number of instances may start at once).
    pub async fn open(
        js: &jetstream::Context,
        replicas: usize,
        lifetimes: Lifetimes,
    ) -> anyhow::Result<Self> {
        let store = hail_runtime::provision::bind_bucket(js, bucket_config(replicas)).await?;
        Ok(Self {
            js: js.clone(),
            store,
            lifetimes,
        })
    }

    /// The JetStream context the bucket is reached through.
    pub fn js(&self) -> &jetstream::Context {
        &self.js
    }

    /// The name of the stream behind the bucket.
    pub fn stream_name(&self) -> &str {
        &self.store.stream_name
    }

    /// The subject a key is stored under.
    pub fn subject(&self, key: &str) -> String {
        format!("{}{key}", self.store.prefix)
    }

    /// What the bucket holds for `ride`.
    pub async fn ride(&self, ride: &RideId) -> Result<RideEntry, ClaimsError> {
        let key = ride_key(ride);
        let entry = self.store.entry(key.as_str()).await;
        let entry = entry.map_err(|e| nats_error("read", &key, e))?;
        let Some(entry) = entry else {
            return Ok(RideEntry::Absent);
        };
        if entry.operation != Operation::Put {
            return Ok(RideEntry::Finished);
        }
        let record = RideRecord::decode(&entry.value)
            .map_err(|source| ClaimsError::BadRecord { key, source })?;
        Ok(RideEntry::Record {
            record,
            revision: entry.revision,
        })
    }

    /// Writes `record` for `ride` if the key is still at revision `expected` (0: if
    /// nothing was ever written, not even a purge marker). It expires after
    /// `forget_after`.
    pub async fn write_ride(
        &self,
        ride: &RideId,
        record: &RideRecord,
        expected: u64,
    ) -> Result<u64, ClaimsError> {
        let mut headers = expect(expected);
        headers.insert(NATS_MESSAGE_TTL, ttl(self.lifetimes.forget_after));
        self.publish("write", &ride_key(ride), headers, record.encode(), expected)
            .await
    }

    /// Marks `ride` finished if its record is still at `revision`: the record is
    /// purged and the marker left in its place expires after `forget_after`.
    pub async fn finish_ride(&self, ride: &RideId, revision: u64) -> Result<u64, ClaimsError> {
        let mut headers = expect(revision);
        headers.insert("KV-Operation", "PURGE");
        headers.insert(NATS_ROLLUP, "sub");
        headers.insert(NATS_MESSAGE_TTL, ttl(self.lifetimes.forget_after));
        self.publish("purge", &ride_key(ride), headers, Bytes::new(), revision)
            .await
    }

    /// Claims `driver` for `ride` if no ride holds it, for `claim_ttl` at most.
    ///
    /// `released_at` is the revision of the driver's last release as this
    /// process applied it from the claims feed — a deletion or an expiry
    /// marker, never a claim — or 0 when it knows none. The claim is first
    /// written expecting it, so claiming a driver released before (nearly every
    /// claim after the first minutes) is one write. When the key moved on since,
    /// it is read: a newer tombstone is written over at its revision, an empty
    /// key expecting nothing, a claim is taken. (Expecting a *claim's*
    /// revision would write over that claim: never pass one.)
    ///
    /// Not the client's `create_with_ttl`: over a released or expired claim it
    /// writes without the TTL, and such a claim would never expire.
    pub async fn claim_driver(
        &self,
        driver: &DriverId,
        ride: &RideId,
        released_at: u64,
    ) -> Result<DriverClaim, ClaimsError> {
        let key = driver_key(driver);
        let value = Bytes::copy_from_slice(ride.as_str().as_bytes());
        let mut expected = released_at;
        // The known release, then what the read found: a further round would
        // mean another ride claimed and released it meanwhile, which is as
        // good as taken.
        for _ in 0..3 {
            let mut headers = expect(expected);
            headers.insert(NATS_MESSAGE_TTL, ttl(self.lifetimes.claim_ttl));
            match self
                .publish("claim", &key, headers, value.clone(), expected)
                .await
            {
                Ok(revision) => return Ok(DriverClaim::Won { revision }),
                Err(ClaimsError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
            let entry = self.store.entry(key.as_str()).await;
            match entry.map_err(|e| nats_error("read", &key, e))? {
                Some(e) if e.operation != Operation::Put && e.revision != expected => {
                    expected = e.revision
                }
                // Nothing stored under the key (never claimed, or its claim
                // expired and was removed), while a revision was expected.
                None if expected != 0 => expected = 0,
                // Held; or gone between the two reads, so someone is at it.
                _ => return Ok(DriverClaim::Taken),
            }
        }
        Ok(DriverClaim::Taken)
    }

    /// The ride holding `driver` and the revision of that claim, if any.
    pub async fn holder(&self, driver: &DriverId) -> Result<Option<(String, u64)>, ClaimsError> {
        let key = driver_key(driver);
        let entry = self.store.entry(key.as_str()).await;
        let entry = entry.map_err(|e| nats_error("read", &key, e))?;
        Ok(entry
            .filter(|e| e.operation == Operation::Put)
            .map(|e| (String::from_utf8_lossy(&e.value).into_owned(), e.revision)))
    }

    /// Deletes the claim on `driver` if it is still at `revision`; returns the
    /// revision of the deletion.
    pub async fn release_driver(
        &self,
        driver: &DriverId,
        revision: u64,
    ) -> Result<u64, ClaimsError> {
        let mut headers = expect(revision);
        headers.insert("KV-Operation", "DEL");
        self.publish(
            "delete",
            &driver_key(driver),
            headers,
            Bytes::new(),
            revision,
        )
        .await
    }

    async fn publish(
        &self,
        op: &'static str,
        key: &str,
        headers: HeaderMap,
        payload: Bytes,
        expected: u64,
    ) -> Result<u64, ClaimsError> {
        let subject = self.subject(key);
        let sent = self
            .js
            .publish_with_headers(subject, headers, payload)
            .await;
        let acked = match sent {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                Err(ClaimsError::Conflict {
                    key: key.to_string(),
                    expected,
                })
            }
            Err(e) => Err(nats_error(op, key, e)),
        }
    }
}

/// `driver.<id>`
pub fn driver_key(driver: &DriverId) -> String {
    format!("{DRIVER_PREFIX}{driver}")
}

/// `ride.<id>`
pub fn ride_key(ride: &RideId) -> String {
    format!("{RIDE_PREFIX}{ride}")
}

/// A `Nats-TTL` value: whole seconds, at least 1.
fn ttl(lifetime: Duration) -> HeaderValue {
    HeaderValue::from(lifetime.as_secs().max(1))
}

fn expect(revision: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
        HeaderValue::from(revision),
    );
    headers
}

fn nats_error(
    op: &'static str,
    key: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> ClaimsError {
    ClaimsError::Nats {
        op,
        key: key.to_string(),
        source: Box::new(e),
    }
}
