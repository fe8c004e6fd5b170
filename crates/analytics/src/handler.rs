//! analytics' handler: decode, apply to the live state unless already covered,
//! then wait for the checkpoint that includes it, so the runtime acks only what
//! a stored checkpoint holds.
//!
//! A replayed dead letter is applied under its original sequence
//! (`Hail-Replay-Of`), so it is counted once however often it is replayed. On
//! the last delivery (`--max-deliver`) a message whose checkpoint did not come
//! is either acked, if the stored checkpoint counts it, or withdrawn from the
//! totals before the runtime dead-letters it: never both counted and a dead
//! letter.

use std::{sync::Arc, time::Duration};

use hail_runtime::{Delivery, Handler, Outcome, replay};

use crate::{
    event::RideEvent,
    live::{LastDelivery, Live},
    metrics::AnalyticsMetrics,
    state::Applied,
};

/// Counts ride events exactly once across crashes.
pub struct Analytics {
    live: Arc<Live>,
    metrics: AnalyticsMetrics,
    checkpoint_timeout: Duration,
    max_deliver: i64,
}

impl Analytics {
    /// Applies to `live`; gives up on a delivery (retry) when no checkpoint
    /// includes it within `checkpoint_timeout`, and on delivery `max_deliver`
    /// (the consumer's last) withdraws it first.
    pub fn new(
        live: Arc<Live>,
        metrics: AnalyticsMetrics,
        checkpoint_timeout: Duration,
        max_deliver: i64,
    ) -> Self {
        Analytics {
            live,
            metrics,
            checkpoint_timeout,
            max_deliver,
        }
    }
}

impl Handler for Analytics {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        let _in_flight = self.live.enter();
        let event = match RideEvent::decode(d.subject, d.payload) {
            Ok(e) => e,
            Err(e) => {
                // Decoding is deterministic: a redelivery fails the same way, so
                // the sequence can be settled before the dead letter is stored.
                self.live.settle(d.stream_seq);
                return e.into();
            }
        };
        let original = replay::original_seq(d.headers);
        let (applied, version) = match original {
            Some(original) => self.live.apply_replay(d.stream_seq, original, &event),
            None => self.live.apply(d.stream_seq, &event),
        };
        if applied != Applied::Counted {
            self.metrics.skipped.inc();
        }
        let reason = match self
            .live
            .wait_stored(version, self.checkpoint_timeout)
            .await
        {
            Ok(()) => return Outcome::done(),
            Err(e) => e.to_string(),
        };
        if d.delivered < self.max_deliver {
            return Outcome::Retry { reason };
        }
        let key = original.unwrap_or(d.stream_seq);
        match self.live.last_delivery(key, &event) {
            LastDelivery::Stored => Outcome::done(),
            LastDelivery::Withdrawn => {
                self.metrics.withdrawn.inc();
                Outcome::Retry {
                    reason: format!("{reason}; withdrawn from the totals"),
                }
            }
            LastDelivery::NotCounted => Outcome::Retry { reason },
        }
    }
}
