//! The ride records in KV ([`hail_events::ride_view::BUCKET`]), each updated
//! by read, [`apply`](crate::transition::apply), compare-and-set on the
//! revision read: several instances (and several deliveries of one ride's
//! events at once) never overwrite each other's steps; a conflict reads the
//! record again and re-applies. [`Records`] keeps the last record it wrote per
//! ride, so a ride's next event usually skips the read. One write may carry
//! several events of a ride ([`crate::group_commit`]).

use std::{collections::HashMap, sync::Mutex};

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
#[derive(Debug, Clone, thiserror::Error)]
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

/// What one write did: for each event given, whether it changed the record,
/// and how many compare-and-set conflicts the write met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub applied: Vec<Applied>,
    pub conflicts: usize,
    /// Whether the record was stored (false when every event was already in it).
    pub stored: bool,
}

/// Records this instance wrote last, about this many (two generations of
/// half each): a ride's next event is then written without reading the
/// record first.
pub const CACHE_RIDES: usize = 65_536;

/// The bucket, with the last record this instance wrote per ride.
///
/// The cache only saves reads: a cached record is at worst older than the
/// stored one (steps are only ever added), so a step it holds is in the store
/// too, and a write built on it fails the compare-and-set when another writer
/// got there first, which reads the record again.
pub struct Records {
    kv: kv::Store,
    cache: Mutex<Cache>,
}

/// The last records written, in two generations: when the young one is full
/// it becomes the old one, so a ride written recently is always found.
#[derive(Default)]
struct Cache {
    young: HashMap<String, (u64, RideView)>,
    old: HashMap<String, (u64, RideView)>,
}

impl Records {
    /// The records in the bound bucket `kv`.
    pub fn new(kv: kv::Store) -> Self {
        Records {
            kv,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Applies `events` (each with where RIDES stored it) to their ride's
    /// record and stores it once: a read (unless cached), then a
    /// compare-and-set, both again on conflict.
    pub async fn write(
        &self,
        ride: &RideId,
        events: &[(AnyEvent, Step)],
    ) -> Result<Written, StoreError> {
        let key = ride_view::key(ride);
        let mut known = self.cached(key);
        for conflicts in 0..MAX_ATTEMPTS {
            let (revision, mut view) = match known.take() {
                Some(k) => k,
                None => self.read(ride).await?,
            };
            let applied: Vec<Applied> = events
                .iter()
                .map(|(event, step)| transition::apply(&mut view, event, step.clone()))
                .collect();
            if applied.iter().all(|a| *a == Applied::AlreadySeen) {
                return Ok(Written {
                    applied,
                    conflicts,
                    stored: false,
                });
            }
            let bytes = serde_json::to_vec(&view)
                .map_err(|e| kv_err(ride, "encode", &e))?
                .into();
            match self.kv.update(key, bytes, revision).await {
                Ok(written) => {
                    self.remember(key, written, view);
                    return Ok(Written {
                        applied,
                        conflicts,
                        stored: true,
                    });
                }
                // Another writer stored a revision since: read it, apply again.
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(kv_err(ride, "update", &e)),
            }
        }
        Err(StoreError::Contended {
            ride: ride.to_string(),
        })
    }

    /// The stored record and its revision; revision 0 and a new record when
    /// there is none (a deleted or purged one has a revision but no record).
    async fn read(&self, ride: &RideId) -> Result<(u64, RideView), StoreError> {
        let entry = self
            .kv
            .entry(ride_view::key(ride))
            .await
            .map_err(|e| kv_err(ride, "read", &e))?;
        let revision = entry.as_ref().map_or(0, |e| e.revision);
        let view = match entry {
            Some(e) if e.operation == kv::Operation::Put => decode(ride, &e.value)?,
            _ => RideView::new(ride.clone()),
        };
        Ok((revision, view))
    }

    fn cached(&self, key: &str) -> Option<(u64, RideView)> {
        let cache = self.lock();
        cache.young.get(key).or_else(|| cache.old.get(key)).cloned()
    }

    fn remember(&self, key: &str, revision: u64, view: RideView) {
        let mut cache = self.lock();
        if cache.young.len() >= CACHE_RIDES / 2 && !cache.young.contains_key(key) {
            cache.old = std::mem::take(&mut cache.young);
        }
        cache.old.remove(key);
        cache.young.insert(key.to_string(), (revision, view));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn kv_err(ride: &RideId, op: &'static str, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Kv {
        op,
        ride: ride.to_string(),
        reason: e.to_string(),
    }
}

fn decode(ride: &RideId, bytes: &[u8]) -> Result<RideView, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        ride: ride.to_string(),
        reason: e.to_string(),
    })
}
