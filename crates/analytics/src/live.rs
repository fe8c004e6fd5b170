//! The state in memory, shared by the handlers (who apply events to it) and the
//! checkpointer (who snapshots and stores it), and the signal telling waiting
//! handlers how far the stored checkpoint reaches.
//!
//! Every change bumps a version. A handler applies its event, notes the version,
//! and waits until a stored checkpoint has at least that version; only then is
//! its message acked. The lock is never held across an `.await`.
//!
//! On a message's last delivery a handler whose checkpoint did not come settles
//! it one way or the other ([`Live::last_delivery`]): acked if the stored
//! checkpoint already counts it, else withdrawn from the totals before the
//! runtime dead-letters it.

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, watch};

use crate::{
    event::RideEvent,
    state::{Applied, State},
};

/// The last stored checkpoint, as handlers and `/metrics` see it.
#[derive(Debug, Clone)]
pub struct Durable {
    /// Version of the state it holds.
    pub version: u64,
    /// The state it holds.
    pub state: Arc<State>,
    /// Why checkpointing stopped for good (another writer), if it did.
    pub failed: Option<Arc<str>>,
}

/// How [`Live::last_delivery`] settled a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastDelivery {
    /// The stored checkpoint counts it: ack.
    Stored,
    /// Taken back out of the totals: let it be dead-lettered.
    Withdrawn,
    /// Not counted anyway (e.g. withdrawn by an earlier attempt).
    NotCounted,
}

/// Why a handler stopped waiting for its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// No checkpoint covered it in time.
    #[error("no checkpoint stored within {0:?}")]
    Timeout(Duration),
    /// Checkpointing stopped for good.
    #[error("checkpointing stopped: {0}")]
    Failed(Arc<str>),
}

struct Inner {
    state: State,
    version: u64,
    snapshotted: u64,
}

/// Shared between the handlers and the checkpointer.
pub struct Live {
    inner: Mutex<Inner>,
    durable: watch::Sender<Durable>,
    wake: Notify,
    in_flight: AtomicUsize,
    checkpoint_every: u64,
}

/// Counts a handler in flight until dropped.
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Live {
    /// Starts from `state`, as loaded from the last checkpoint (version 0, durable).
    pub fn new(state: State, checkpoint_every: u64) -> Self {
        let durable = Durable {
            version: 0,
            state: Arc::new(state.clone()),
            failed: None,
        };
        Live {
            inner: Mutex::new(Inner {
                state,
                version: 0,
                snapshotted: 0,
            }),
            durable: watch::Sender::new(durable),
            wake: Notify::new(),
            in_flight: AtomicUsize::new(0),
            checkpoint_every,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock leaves plain counters behind, still consistent
        // with their coverage: keep going rather than poison every handler.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a handler in flight until the guard drops.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(&self.in_flight)
    }

    /// Handlers in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Applies `event` at `seq`; returns what happened and the version a
    /// checkpoint must reach before the message may be acked.
    pub fn apply(&self, seq: u64, event: &RideEvent) -> (Applied, u64) {
        let mut inner = self.lock();
        let applied = inner.state.apply(seq, event);
        self.changed(inner, applied)
    }

    /// [`Live::apply`] for a replayed dead letter: counted under `original`
    /// (see [`State::apply_replay`]).
    pub fn apply_replay(&self, seq: u64, original: u64, event: &RideEvent) -> (Applied, u64) {
        let mut inner = self.lock();
        let applied = inner.state.apply_replay(seq, original, event);
        self.changed(inner, applied)
    }

    fn changed(&self, mut inner: MutexGuard<'_, Inner>, applied: Applied) -> (Applied, u64) {
        if applied != Applied::Skipped {
            inner.version += 1;
        }
        let (version, waiting) = (inner.version, inner.version - inner.snapshotted);
        drop(inner);
        if waiting >= self.checkpoint_every {
            self.wake.notify_one();
        }
        (applied, version)
    }

    /// Settles the last delivery of a message counted under `key` whose
    /// checkpoint did not come in time: [`LastDelivery::Stored`] if the stored
    /// checkpoint counts it (ack it), else it is withdrawn from the totals, so
    /// the next checkpoint does not hold it, and the runtime dead-letters it.
    pub fn last_delivery(&self, key: u64, event: &RideEvent) -> LastDelivery {
        let stored = self.durable.borrow().state.clone();
        let mut inner = self.lock();
        if inner.state.counts(key) && stored.counts(key) {
            return LastDelivery::Stored;
        }
        if !inner.state.withdraw(key, event) {
            return LastDelivery::NotCounted;
        }
        inner.version += 1;
        drop(inner);
        // A checkpoint being stored may still count it: store the withdrawal
        // right after that one rather than at the next tick.
        self.wake.notify_one();
        LastDelivery::Withdrawn
    }

    /// Covers `seq` without counting (a message being dead-lettered).
    pub fn settle(&self, seq: u64) {
        let mut inner = self.lock();
        if inner.state.settle(seq) {
            inner.version += 1;
        }
    }

    /// Raises the coverage floor to the consumer's ack floor.
    pub fn raise_floor(&self, floor: u64) {
        let mut inner = self.lock();
        if inner.state.raise_floor(floor) {
            inner.version += 1;
        }
    }

    /// A copy of the state and its version, if it changed since the last
    /// stored checkpoint.
    pub fn snapshot(&self) -> Option<(u64, State)> {
        let stored = self.durable.borrow().version;
        let mut inner = self.lock();
        if inner.version == stored {
            return None;
        }
        inner.snapshotted = inner.version;
        Some((inner.version, inner.state.clone()))
    }

    /// Resolves when enough updates wait for a checkpoint (see `checkpoint_every`).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Records that the checkpoint of `version` is stored; wakes its handlers.
    pub fn stored(&self, version: u64, state: Arc<State>) {
        self.durable.send_modify(|d| {
            d.version = version;
            d.state = state;
        });
    }

    /// Checkpointing stopped for good: every waiting handler gives up.
    pub fn fail(&self, reason: &str) {
        self.durable
            .send_modify(|d| d.failed = Some(Arc::from(reason)));
    }

    /// Why checkpointing stopped for good, if it did.
    pub fn failure(&self) -> Option<Arc<str>> {
        self.durable.borrow().failed.clone()
    }

    /// The last stored checkpoint, as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Durable> {
        self.durable.subscribe()
    }

    /// Waits until a stored checkpoint has reached `version`.
    pub async fn wait_stored(&self, version: u64, timeout: Duration) -> Result<(), WaitError> {
        let mut rx = self.durable.subscribe();
        let reached = rx.wait_for(|d| d.version >= version || d.failed.is_some());
        match tokio::time::timeout(timeout, reached).await {
            Err(_) => Err(WaitError::Timeout(timeout)),
            Ok(Err(_)) => Err(WaitError::Failed("analytics is stopping".into())),
            Ok(Ok(d)) if d.version >= version => Ok(()),
            Ok(Ok(d)) => Err(WaitError::Failed(d.failed.clone().unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use hail_events::sample;

    use super::*;

    fn request(ride: &str) -> RideEvent {
        RideEvent::Requested(sample::ride_requested(ride, "berlin"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_waits_for_the_checkpoint_that_includes_it() {
        let live = Arc::new(Live::new(State::default(), 1000));
        let (applied, version) = live.apply(1, &request("a"));
        assert_eq!((applied, version), (Applied::Counted, 1));
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move { live.wait_stored(version, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let (v, state) = live.snapshot().unwrap();
        assert_eq!(v, 1);
        live.stored(v, Arc::new(state));
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert!(live.snapshot().is_none(), "nothing new to store");
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivery_is_skipped_but_still_waits() {
        let live = Live::new(State::default(), 1000);
        live.apply(1, &request("a"));
        let (applied, version) = live.apply(1, &request("a"));
        assert_eq!((applied, version), (Applied::Skipped, 1));
        let err = live.wait_stored(version, Duration::from_secs(1)).await;
        assert_eq!(err, Err(WaitError::Timeout(Duration::from_secs(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_releases_every_waiter_with_the_reason() {
        let live = Live::new(State::default(), 1000);
        let (_, version) = live.apply(1, &request("a"));
        live.fail("another writer");
        let err = live.wait_stored(version, Duration::from_secs(1)).await;
        assert_eq!(err, Err(WaitError::Failed("another writer".into())));
        assert_eq!(live.failure().as_deref(), Some("another writer"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_last_delivery_is_acked_only_if_the_stored_checkpoint_counts_it() {
        let live = Live::new(State::default(), 1000);
        let (a, b) = (request("a"), request("b"));
        live.apply(1, &a);
        let (v, state) = live.snapshot().unwrap();
        live.stored(v, Arc::new(state));
        live.apply(2, &b);
        assert_eq!(live.last_delivery(1, &a), LastDelivery::Stored);
        assert_eq!(live.last_delivery(2, &b), LastDelivery::Withdrawn);
        assert_eq!(live.last_delivery(2, &b), LastDelivery::NotCounted);
        tokio::time::timeout(Duration::from_millis(1), live.woken())
            .await
            .expect("a withdrawal wakes the checkpointer");
        let (_, state) = live
            .snapshot()
            .expect("the withdrawal is a change to store");
        assert_eq!(state.all_cities().requests, 1);
        assert!(state.counts(1) && !state.counts(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_replay_counted_once_is_a_change_to_store() {
        let live = Live::new(State::default(), 1000);
        let a = request("a");
        live.apply(1, &a);
        assert_eq!(live.last_delivery(1, &a), LastDelivery::Withdrawn);
        assert_eq!(live.apply_replay(5, 1, &a), (Applied::Counted, 3));
        assert_eq!(live.apply_replay(6, 1, &a), (Applied::Covered, 4));
        assert_eq!(live.apply_replay(6, 1, &a), (Applied::Skipped, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn enough_waiting_updates_wake_the_checkpointer() {
        let live = Live::new(State::default(), 2);
        live.apply(1, &request("a"));
        live.apply(2, &request("b"));
        tokio::time::timeout(Duration::from_millis(1), live.woken())
            .await
            .expect("woken after two updates");
    }
}
