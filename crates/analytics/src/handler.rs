//! analytics' handler: decode, apply to the live state unless already covered,
//! then wait for the checkpoint that includes it, so the runtime acks only what
//! a stored checkpoint holds.

use std::{sync::Arc, time::Duration};

use hail_runtime::{Delivery, Handler, Outcome};

use crate::{event::RideEvent, live::Live, metrics::AnalyticsMetrics, state::Applied};

/// Counts ride events exactly once across crashes.
pub struct Analytics {
    live: Arc<Live>,
    metrics: AnalyticsMetrics,
    checkpoint_timeout: Duration,
}

impl Analytics {
    /// Applies to `live`; gives up on a delivery (retry) when no checkpoint
    /// includes it within `checkpoint_timeout`.
    pub fn new(live: Arc<Live>, metrics: AnalyticsMetrics, checkpoint_timeout: Duration) -> Self {
        Analytics {
            live,
            metrics,
            checkpoint_timeout,
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
        let (applied, version) = self.live.apply(d.stream_seq, &event);
        if applied == Applied::Skipped {
            self.metrics.skipped.inc();
        }
        match self
            .live
            .wait_stored(version, self.checkpoint_timeout)
            .await
        {
            Ok(()) => Outcome::done(),
            Err(e) => Outcome::Retry {
                reason: e.to_string(),
            },
        }
    }
}
