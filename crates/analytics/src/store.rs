//! The checkpoint in KV, written with compare-and-set on its revision.
//!
//! analytics runs as one instance. A second one sharing the durable would count
//! into a state of its own; the revision check makes the slower of the two fail
//! its next write ([`StoreError::Conflict`]) instead of silently overwriting the
//! other's counts, and analytics then exits (see `checkpointer`).
//! A write that timed out may still have been stored: a later conflict caused
//! by our own write is recognised by the writer name and adopted.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    kv::{self, Operation, UpdateErrorKind},
    stream::StorageType,
};

use crate::checkpoint::{BUCKET, Checkpoint, CheckpointError, KEY};

/// The checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket could not be created, updated or opened.
    #[error("cannot open KV bucket {BUCKET}: {0}")]
    Bucket(String),
    /// Reading the key failed.
    #[error("cannot read {BUCKET}/{KEY}: {0}")]
    Read(String),
    /// The stored value is not a checkpoint this build reads.
    #[error("{BUCKET}/{KEY}: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// Someone else wrote the key since we last did.
    #[error(
        "{BUCKET}/{KEY} revision {expected} was replaced by {writer:?} (now revision {found}): another analytics instance is writing"
    )]
    Conflict {
        expected: u64,
        found: u64,
        writer: String,
    },
    /// Writing failed for another reason (may succeed on retry).
    #[error("cannot write {BUCKET}/{KEY}: {0}")]
    Write(String),
}

/// The writer's handle on the checkpoint key.
pub struct CheckpointStore {
    kv: kv::Store,
    revision: u64,
    writer: String,
}

/// The bucket: one key, the last value only, file storage.
pub fn bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: BUCKET.into(),
        description:
            "hail analytics: checkpointed per-city totals and the RIDES sequences they cover".into(),
        history: 1,
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

impl CheckpointStore {
    /// Creates or updates the bucket and loads the checkpoint, if any.
    pub async fn open(
        js: &jetstream::Context,
        replicas: usize,
        writer: String,
    ) -> Result<(Self, Option<Checkpoint>), StoreError> {
        let kv = hail_runtime::provision::ensure_kv(js, bucket_config(replicas))
            .await
            .map_err(|e| StoreError::Bucket(e.to_string()))?;
        let mut store = CheckpointStore {
            kv,
            revision: 0,
            writer,
        };
        let loaded = store.load().await?;
        Ok((store, loaded))
    }

    /// Reads the key and remembers its revision for the next write.
    async fn load(&mut self) -> Result<Option<Checkpoint>, StoreError> {
        let Some((cp, revision)) = read_entry(&self.kv).await? else {
            return Ok(None);
        };
        self.revision = revision;
        Ok(cp)
    }

    /// The revision the next write expects.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Writes `cp` if nobody else wrote since our last write or load; returns
    /// the stored size in bytes.
    pub async fn save(&mut self, cp: &Checkpoint) -> Result<usize, StoreError> {
        let bytes = cp.encode()?;
        let size = bytes.len();
        match self.kv.update(KEY, bytes.clone(), self.revision).await {
            Ok(revision) => self.revision = revision,
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                self.adopt_own_write().await?;
                self.revision = self
                    .kv
                    .update(KEY, bytes, self.revision)
                    .await
                    .map_err(|e| StoreError::Write(e.to_string()))?;
            }
            Err(e) => return Err(StoreError::Write(e.to_string())),
        }
        Ok(size)
    }

    /// After a revision mismatch: if the stored checkpoint is ours (a write
    /// whose acknowledgement was lost), continue from its revision; else it is
    /// another instance's, and that is a [`StoreError::Conflict`].
    async fn adopt_own_write(&mut self) -> Result<(), StoreError> {
        let expected = self.revision;
        let (cp, found) = read_entry(&self.kv)
            .await?
            .ok_or_else(|| StoreError::Read("the key vanished during a write".into()))?;
        match cp {
            Some(cp) if cp.writer == self.writer => {
                tracing::info!(expected, found, "adopting our own checkpoint write");
                self.revision = found;
                Ok(())
            }
            other => Err(StoreError::Conflict {
                expected,
                found,
                writer: other.map_or_else(|| "a delete".into(), |cp| cp.writer),
            }),
        }
    }
}

/// The checkpoint (`None` if deleted) and its revision, or `None` if the key
/// was never written.
async fn read_entry(kv: &kv::Store) -> Result<Option<(Option<Checkpoint>, u64)>, StoreError> {
    let entry = kv
        .entry(KEY)
        .await
        .map_err(|e| StoreError::Read(e.to_string()))?;
    let Some(entry) = entry else {
        return Ok(None);
    };
    let cp = match entry.operation {
        Operation::Put => Some(Checkpoint::decode(&entry.value)?),
        Operation::Delete | Operation::Purge => None,
    };
    Ok(Some((cp, entry.revision)))
}

/// Reads the stored checkpoint and its revision without writing anything (for
/// `hail analytics`); `None` when analytics has not written one yet.
pub async fn read(
    js: &jetstream::Context,
    timeout: Duration,
) -> Result<Option<(Checkpoint, u64)>, StoreError> {
    let read = async {
        let kv = js
            .get_key_value(BUCKET)
            .await
            .map_err(|e| StoreError::Bucket(e.to_string()))?;
        Ok(read_entry(&kv)
            .await?
            .and_then(|(cp, rev)| cp.map(|cp| (cp, rev))))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| StoreError::Read(format!("no answer within {timeout:?}")))?
}
