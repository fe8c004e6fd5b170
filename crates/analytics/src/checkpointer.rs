//! The background task that stores the state: every `--checkpoint-interval`
//! while it changes (sooner when `--checkpoint-every` updates wait), then
//! tells the waiting handlers. It also reads the consumer's ack floor now and
//! then so the coverage floor moves past sequences analytics will never be
//! given (expired, or dead-lettered before the handler saw them), noting those
//! as uncounted so a replay of one is counted.
//!
//! On shutdown it keeps storing until no handler is left waiting, so a clean
//! stop acks everything it applied. A write conflict (a second instance) is
//! fatal: it fails every waiting handler (their messages are redelivered) and
//! stops the process.

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

/// A write failed in a way that ends checkpointing.
struct Fatal(String);

impl Checkpointer {
    /// Runs in a task tracked by `tracker` until `shutdown` fires and the
    /// handlers in flight are stored; on a conflict it cancels `shutdown`.
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
                self.refresh_floor().await;
                next_refresh = Instant::now() + self.ack_floor_refresh;
            }
            if let Err(Fatal(reason)) = self.checkpoint().await {
                return self.give_up(&reason, &shutdown);
            }
        }
        if let Err(Fatal(reason)) = self.drain().await {
            self.give_up(&reason, &shutdown);
        }
    }

    /// After shutdown: store until no handler waits, then once more.
    async fn drain(&mut self) -> Result<(), Fatal> {
        let deadline = Instant::now() + self.drain_timeout;
        while self.live.in_flight() > 0 && Instant::now() < deadline {
            self.checkpoint().await?;
            tokio::time::sleep(self.interval).await;
        }
        self.checkpoint().await
    }

    fn give_up(&self, reason: &str, shutdown: &CancellationToken) {
        tracing::error!(
            reason,
            "checkpointing stopped; analytics exits (run one instance)"
        );
        self.live.fail(reason);
        shutdown.cancel();
    }

    /// Stores the state if it changed. Transient failures are logged and retried
    /// at the next tick; a conflict is [`Fatal`].
    async fn checkpoint(&mut self) -> Result<(), Fatal> {
        let Some((version, state)) = self.live.snapshot() else {
            return Ok(());
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
                Ok(())
            }
            Err(e @ StoreError::Conflict { .. }) => {
                m.checkpoint_errors.inc();
                Err(Fatal(e.to_string()))
            }
            Err(e) => {
                m.checkpoint_errors.inc();
                tracing::warn!(error = %e, "checkpoint not stored; retrying");
                Ok(())
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
