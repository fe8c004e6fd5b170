//! The background task that stores the state: every `--checkpoint-interval`
//! while it changes (sooner when `--checkpoint-every` updates wait), then
//! tells the waiting handlers. It also reads the consumer's ack floor now and
//! then so the coverage floor moves past sequences analytics will never be
//! given (expired, or dead-lettered before the handler saw them), noting those
//! as uncounted so a replay of one is counted.
//!
//! On shutdown it keeps storing until no handler is left waiting, so a clean
//! stop acks everything it applied.
//!
//! Several instances share the durable, one pinned at a time. A write that
//! conflicts (another instance stored since this one last read) takes up the
//! stored checkpoint instead ([`Live::rebase`]): the waiting handlers apply
//! their events again on it. A standby (no delivery for a while) never writes;
//! every `--ack-floor-refresh` it takes up the stored checkpoint if it changed,
//! so it is current when the server pins it.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream;
use hail_events::subjects;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    checkpoint::{Checkpoint, FORMAT},
    live::Live,
    metrics::AnalyticsMetrics,
    store::{CheckpointStore, StoreError},
};

/// Writes checkpoints of `live` into `store`.
pub struct Checkpointer {
    /// The state to store.
    pub live: Arc<Live>,
    /// Where it goes.
    pub store: CheckpointStore,
    /// Operational counters.
    pub metrics: AnalyticsMetrics,
    /// For the consumer's ack floor.
    pub js: jetstream::Context,
    /// The durable whose ack floor is read.
    pub durable: String,
    /// Writer name stored in each checkpoint.
    pub writer: String,
    /// Time between checkpoints while the state changes.
    pub interval: Duration,
    /// Time between reads of the ack floor.
    pub ack_floor_refresh: Duration,
    /// How long to keep storing for handlers in flight after shutdown.
    pub drain_timeout: Duration,
}

impl Checkpointer {
    /// Runs in a task tracked by `tracker` until `shutdown` fires and the
    /// handlers in flight are stored.
    pub fn spawn(self, tracker: &TaskTracker, shutdown: CancellationToken) {
        tracker.spawn(self.run(shutdown));
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_refresh = Instant::now();
        let live = self.live.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                _ = live.woken() => {}
            }
            if Instant::now() >= next_refresh {
                if self.live.active(self.standby_after()) {
                    self.refresh_floor().await;
                } else {
                    self.follow().await;
                }
                next_refresh = Instant::now() + self.ack_floor_refresh;
            }
            self.checkpoint().await;
        }
        self.drain().await;
    }

    /// An instance with no delivery for this long is a standby.
    fn standby_after(&self) -> Duration {
        self.ack_floor_refresh * 2
    }

    /// After shutdown: store until no handler waits, then once more.
    async fn drain(&mut self) {
        let deadline = Instant::now() + self.drain_timeout;
        while self.live.in_flight() > 0 && Instant::now() < deadline {
            self.checkpoint().await;
            tokio::time::sleep(self.interval).await;
        }
        self.checkpoint().await
    }

    /// Takes up the stored checkpoint if another instance changed it.
    async fn follow(&mut self) {
        match self.store.reload_if_changed().await {
            Ok(None) => {}
            Ok(Some(cp)) => {
                self.metrics.rebases.inc();
                let state = cp.map(|cp| cp.state).unwrap_or_default();
                tracing::info!(
                    revision = self.store.revision(),
                    covered_through = state.coverage.floor(),
                    "took up the checkpoint another analytics instance stored"
                );
                self.live.rebase(state);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the stored checkpoint; retrying"),
        }
    }

    /// Stores the state if it changed. Transient failures are logged and retried
    /// at the next tick; after a conflict the stored checkpoint is taken up.
    async fn checkpoint(&mut self) {
        let Some((version, state)) = self.live.snapshot() else {
            return;
        };
        let m = &self.metrics;
        let floor = state.coverage.floor();
        let runs = state.coverage.runs();
        let uncounted_runs = state.uncounted.runs();
        let cp = Checkpoint {
            format: FORMAT,
            writer: self.writer.clone(),
            saved_at_ms: hail_runtime::now_ms(),
            state,
        };
        let timer = m.checkpoint_seconds.start_timer();
        let saved = self.store.save(&cp).await;
        timer.observe_duration();
        match saved {
            Ok(bytes) => {
                m.checkpoints.inc();
                m.checkpoint_bytes
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                m.coverage_floor
                    .set(i64::try_from(floor).unwrap_or(i64::MAX));
                m.coverage_runs.set(i64::try_from(runs).unwrap_or(i64::MAX));
                m.uncounted_runs
                    .set(i64::try_from(uncounted_runs).unwrap_or(i64::MAX));
                self.live.stored(version, Arc::new(cp.state));
            }
            Err(e @ StoreError::Conflict { .. }) => {
                tracing::info!(reason = %e, "checkpoint not stored: taking up the other instance's");
                self.follow().await;
            }
            Err(e) => {
                m.checkpoint_errors.inc();
                tracing::warn!(error = %e, "checkpoint not stored; retrying");
            }
        }
    }

    /// Moves the coverage floor up to the durable's ack floor: everything at or
    /// below it was acked after a stored checkpoint covered it, or terminated.
    async fn refresh_floor(&self) {
        let info = async {
            let stream = self.js.get_stream(subjects::RIDES_STREAM).await?;
            let info = stream.consumer_info(&self.durable).await?;
            Ok::<_, async_nats::Error>(info.ack_floor.stream_sequence)
        };
        match info.await {
            Ok(floor) => self.live.raise_floor(floor),
            Err(e) => tracing::debug!(error = %e, "cannot read the consumer's ack floor yet"),
        }
    }
}
