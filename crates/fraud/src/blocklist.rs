//! The card blocklist: a KV bucket whose keys are card fingerprints.
//!
//! Operators change it with `hail fraud block|unblock <card>`. The service keeps
//! an in-memory copy live through a KV watch: it loads every key before it starts
//! consuming, then applies each put and delete as it happens (typically within
//! milliseconds), so the screening path never waits on KV.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{
    self,
    kv::{self, Operation},
};
use futures::StreamExt;
use hail_events::CardFingerprint;
use prometheus::IntGauge;
use serde::{Deserialize, Serialize};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The KV bucket of blocked cards.
pub const BUCKET: &str = "hail_fraud_blocklist";

/// How long loading the blocklist at start may take.
const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The value stored under a blocked card's key: when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockEntry {
    pub blocked_at_ms: u64,
    #[serde(default)]
    pub reason: String,
}

/// The bucket's config: one value per key, kept until deleted.
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: BUCKET.into(),
        description: "hail fraud: blocked card fingerprints".into(),
        history: 1,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Creates the bucket or updates its config (the service, at start).
pub async fn ensure_bucket(js: &jetstream::Context, replicas: usize) -> Result<kv::Store> {
    hail_runtime::provision::ensure_kv(js, bucket_config(replicas))
        .await
        .with_context(|| format!("cannot create or update KV bucket {BUCKET}"))
}

/// Opens the bucket, creating it with one replica only if it does not exist, so a
/// CLI call never changes the config a service set (the CLI).
pub async fn open_or_create(js: &jetstream::Context) -> Result<kv::Store> {
    match js.get_key_value(BUCKET).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_key_value(bucket_config(1))
            .await
            .with_context(|| format!("cannot create KV bucket {BUCKET}")),
    }
}

/// The service's live copy of the blocked cards.
#[derive(Debug, Clone, Default)]
pub struct Blocklist {
    cards: Arc<RwLock<HashSet<String>>>,
}

impl Blocklist {
    /// Whether `card` is blocked.
    pub fn contains(&self, card: &CardFingerprint) -> bool {
        self.read().contains(card.as_str())
    }

    /// How many cards are blocked.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no card is blocked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one change of the bucket.
    pub fn apply(&self, key: &str, operation: Operation) {
        let mut cards = self.cards.write().unwrap_or_else(|e| e.into_inner());
        match operation {
            Operation::Put => cards.insert(key.to_string()),
            Operation::Delete | Operation::Purge => cards.remove(key),
        };
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<String>> {
        self.cards.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Loads every blocked card into `list`, then keeps it live in a task tracked by
/// `tracker` until `shutdown` fires; `size` follows the number of blocked cards.
pub async fn follow(
    store: &kv::Store,
    list: Blocklist,
    size: IntGauge,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<()> {
    let status = store
        .status()
        .await
        .context("cannot read the blocklist bucket status")?;
    let mut watch = store
        .watch_with_history(">")
        .await
        .context("cannot watch the blocklist bucket")?;
    // Until the watch reaches the bucket's current state, entries are the snapshot.
    let mut loaded = status.values() == 0;
    while !loaded {
        let entry = tokio::select! {
            _ = shutdown.cancelled() => anyhow::bail!("interrupted while loading the blocklist"),
            // Only if the bucket was emptied between the status and the watch.
            _ = tokio::time::sleep(LOAD_TIMEOUT) => {
                tracing::warn!(timeout = ?LOAD_TIMEOUT, "blocklist snapshot incomplete; going on with the live watch");
                break;
            }
            e = watch.next() => e.context("blocklist watch ended while loading")?,
        }
        .context("reading the blocklist")?;
        list.apply(&entry.key, entry.operation);
        loaded = entry.seen_current;
    }
    size.set(list.len() as i64);
    tracing::info!(cards = list.len(), "blocklist loaded");
    tracker.spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = watch.next() => e,
            };
            match next {
                Some(Ok(entry)) => {
                    list.apply(&entry.key, entry.operation);
                    size.set(list.len() as i64);
                    tracing::info!(card = entry.key, op = ?entry.operation, "blocklist changed");
                }
                Some(Err(e)) => tracing::warn!(error = %e, "reading the blocklist watch"),
                None => {
                    tracing::error!("blocklist watch ended; blocklist changes are no longer seen");
                    break;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_block_and_deletes_unblock() {
        let list = Blocklist::default();
        let card: CardFingerprint = "card-1".parse().unwrap();
        assert!(!list.contains(&card));
        list.apply("card-1", Operation::Put);
        assert!(list.contains(&card));
        list.apply("card-1", Operation::Put);
        assert_eq!(list.len(), 1);
        list.apply("card-1", Operation::Delete);
        assert!(!list.contains(&card));
        list.apply("card-1", Operation::Put);
        list.apply("card-1", Operation::Purge);
        assert!(list.is_empty());
    }

    #[test]
    fn entries_read_back() {
        let e = BlockEntry {
            blocked_at_ms: 7,
            reason: "chargeback".into(),
        };
        let bytes = serde_json::to_vec(&e).unwrap();
        assert_eq!(serde_json::from_slice::<BlockEntry>(&bytes).unwrap(), e);
        let bare: BlockEntry = serde_json::from_slice(br#"{"blocked_at_ms":1}"#).unwrap();
        assert_eq!(bare.reason, "");
    }
}
