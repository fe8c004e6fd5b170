//! The state in memory, shared by the handlers (who apply events to it) and the
//! checkpointer (who snapshots and stores it), and the signal telling waiting
//! handlers how far the stored checkpoint reaches.
//!
//! Every change bumps a version. A handler applies its event, notes the version,
//! and waits until a stored checkpoint has at least that version; only then is
//! its message acked. The lock is never held across an `.await`.
//!
//! When another instance has stored a checkpoint on top of the one this state
//! grew from, the checkpointer replaces the state with that one
//! ([`Live::rebase`]): a new epoch. Handlers waiting in the old epoch learn it
//! ([`WaitError::Rebased`]) and apply their event again to the new state, where
//! it may already be counted.
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

use tokio::{
    sync::{Notify, watch},
    time::Instant,
};

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
    /// Bumped each time the state is replaced by another instance's checkpoint.
    pub epoch: u64,
}

/// What a handler waits for: a stored checkpoint of this version, unless the
/// state is rebased first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The version of the state that holds the handler's change.
    pub version: u64,
    /// The epoch that version belongs to.
    pub epoch: u64,
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
    /// The state was replaced by another instance's checkpoint: apply again.
    #[error("the state was replaced by another instance's checkpoint")]
    Rebased,
    /// analytics is stopping.
    #[error("analytics is stopping")]
    Stopping,
}

struct Inner {
    state: State,
    version: u64,
    snapshotted: u64,
    epoch: u64,
    /// When a handler last changed the state.
    last_handled: Option<Instant>,
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
            epoch: 0,
        };
        Live {
            inner: Mutex::new(Inner {
                state,
                version: 0,
                snapshotted: 0,
                epoch: 0,
                last_handled: None,
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

    /// Whether this instance handles deliveries: some are in flight, or one
    /// changed the state within `within`. Only an active instance moves the
    /// floor on its own; a standby follows the stored checkpoint instead.
    pub fn active(&self, within: Duration) -> bool {
        self.in_flight() > 0
            || self
                .lock()
                .last_handled
                .is_some_and(|at| at.elapsed() < within)
    }

    /// Applies `event` at `seq`; returns what happened and the ticket a
    /// checkpoint must honour before the message may be acked.
    pub fn apply(&self, seq: u64, event: &RideEvent) -> (Applied, Ticket) {
        let mut inner = self.lock();
        let applied = inner.state.apply(seq, event);
        self.changed(inner, applied)
    }

    /// [`Live::apply`] for a replayed dead letter: counted under `original`
    /// (see [`State::apply_replay`]).
    pub fn apply_replay(&self, seq: u64, original: u64, event: &RideEvent) -> (Applied, Ticket) {
        let mut inner = self.lock();
        let applied = inner.state.apply_replay(seq, original, event);
        self.changed(inner, applied)
    }

    fn changed(&self, mut inner: MutexGuard<'_, Inner>, applied: Applied) -> (Applied, Ticket) {
        if applied != Applied::Skipped {
            inner.version += 1;
        }
        inner.last_handled = Some(Instant::now());
        let ticket = Ticket {
            version: inner.version,
            epoch: inner.epoch,
        };
        let waiting = inner.version - inner.snapshotted;
        drop(inner);
        if waiting >= self.checkpoint_every {
            self.wake.notify_one();
        }
        (applied, ticket)
    }

    /// Replaces the state with `state`, a checkpoint another instance stored
    /// (already durable): a new epoch; every waiting handler applies again.
    pub fn rebase(&self, state: State) {
        let stored = Arc::new(state.clone());
        let mut inner = self.lock();
        inner.state = state;
        inner.version += 1;
        inner.snapshotted = inner.version;
        inner.epoch += 1;
        let (version, epoch) = (inner.version, inner.epoch);
        // Under the lock, so a handler that applies after the swap never sees
        // the old epoch's stored version as its own.
        self.durable.send_modify(|d| {
            d.version = version;
            d.state = stored;
            d.epoch = epoch;
        });
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
        inner.last_handled = Some(Instant::now());
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

    /// The last stored checkpoint, as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Durable> {
        self.durable.subscribe()
    }

    /// Waits until a stored checkpoint has reached the ticket's version, or
    /// the state is rebased ([`WaitError::Rebased`]).
    pub async fn wait_stored(&self, ticket: Ticket, timeout: Duration) -> Result<(), WaitError> {
        let mut rx = self.durable.subscribe();
        let reached = rx.wait_for(|d| d.epoch != ticket.epoch || d.version >= ticket.version);
        match tokio::time::timeout(timeout, reached).await {
            Err(_) => Err(WaitError::Timeout(timeout)),
            Ok(Err(_)) => Err(WaitError::Stopping),
            Ok(Ok(d)) if d.epoch != ticket.epoch => Err(WaitError::Rebased),
            Ok(Ok(_)) => Ok(()),
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
        let (applied, ticket) = live.apply(1, &request("a"));
        assert_eq!((applied, ticket.version), (Applied::Counted, 1));
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move { live.wait_stored(ticket, Duration::from_secs(5)).await })
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
        let (applied, ticket) = live.apply(1, &request("a"));
        assert_eq!((applied, ticket.version), (Applied::Skipped, 1));
        let err = live.wait_stored(ticket, Duration::from_secs(1)).await;
        assert_eq!(err, Err(WaitError::Timeout(Duration::from_secs(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rebase_sends_waiting_handlers_to_apply_again_on_the_stored_state() {
        let live = Arc::new(Live::new(State::default(), 1000));
        let (a, b) = (request("a"), request("b"));
        let (_, waiting) = live.apply(1, &a);
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move { live.wait_stored(waiting, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        // Another instance stored a checkpoint that counts 1 and 2.
        let mut theirs = State::default();
        theirs.apply(1, &a);
        theirs.apply(2, &b);
        live.rebase(theirs);
        assert_eq!(waiter.await.unwrap(), Err(WaitError::Rebased));
        assert!(
            live.snapshot().is_none(),
            "the rebased state is already stored"
        );
        // Applied again: already counted there, and already stored.
        let (applied, ticket) = live.apply(1, &a);
        assert_eq!(applied, Applied::Skipped);
        assert_eq!(
            live.wait_stored(ticket, Duration::from_secs(1)).await,
            Ok(())
        );
        let (applied, ticket) = live.apply(3, &request("c"));
        assert_eq!(applied, Applied::Counted);
        assert_eq!(ticket.epoch, 1);
        let stored = live.subscribe().borrow().state.clone();
        assert_eq!(stored.all_cities().requests, 2);
        let (_, state) = live
            .snapshot()
            .expect("the new request is a change to store");
        assert_eq!(state.all_cities().requests, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_is_active_while_it_handles_deliveries() {
        let live = Live::new(State::default(), 1000);
        assert!(!live.active(Duration::from_secs(10)));
        {
            let _in_flight = live.enter();
            assert!(live.active(Duration::from_secs(10)));
        }
        live.apply(1, &request("a"));
        assert!(live.active(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!live.active(Duration::from_secs(10)));
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
        let version = |(applied, ticket): (Applied, Ticket)| (applied, ticket.version);
        assert_eq!(version(live.apply_replay(5, 1, &a)), (Applied::Counted, 3));
        assert_eq!(version(live.apply_replay(6, 1, &a)), (Applied::Covered, 4));
        assert_eq!(version(live.apply_replay(6, 1, &a)), (Applied::Skipped, 4));
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
