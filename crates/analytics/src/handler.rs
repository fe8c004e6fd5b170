//! analytics' handler: decode, apply to the live state unless already covered,
//! then wait for the checkpoint that includes it, so the runtime acks only what
//! a stored checkpoint holds.
//!
//! If the state is replaced by another instance's checkpoint while it waits
//! (see [`Live::rebase`]), the event is applied again to that state, where it
//! may already be counted.
//!
//! A replayed dead letter is applied under its original sequence
//! (`Hail-Replay-Of`), so it is counted once however often it is replayed. On
//! the last delivery (`--max-deliver`) a message whose checkpoint did not come
//! is either acked, if the stored checkpoint counts it, or withdrawn from the
//! totals before the runtime dead-letters it: never both counted and a dead
//! letter.

use std::{sync::Arc, time::Duration};

use hail_runtime::{Delivery, Handler, Outcome, replay};
use tokio::time::Instant;

use crate::{
    event::RideEvent,
    live::{LastDelivery, Live, WaitError},
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
        let deadline = Instant::now() + self.checkpoint_timeout;
        let mut first = true;
        let reason = loop {
            let (applied, ticket) = match original {
                Some(original) => self.live.apply_replay(d.stream_seq, original, &event),
                None => self.live.apply(d.stream_seq, &event),
            };
            if first && applied != Applied::Counted {
                self.metrics.skipped.inc();
            }
            first = false;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.live.wait_stored(ticket, left).await {
                Ok(()) => return Outcome::done(),
                Err(WaitError::Rebased) => continue,
                Err(WaitError::Timeout(_)) => {
                    break WaitError::Timeout(self.checkpoint_timeout).to_string();
                }
                Err(e) => break e.to_string(),
            }
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

#[cfg(test)]
mod tests {
    use async_nats::HeaderMap;
    use hail_events::{codec, headers, sample};

    use super::*;
    use crate::state::State;

    const TIMEOUT: Duration = Duration::from_millis(300);

    /// analytics with no checkpointer: no checkpoint is ever stored.
    fn analytics(live: &Arc<Live>) -> Analytics {
        let metrics = AnalyticsMetrics::register(&prometheus::Registry::new()).unwrap();
        Analytics::new(live.clone(), metrics, TIMEOUT, 3)
    }

    fn request(ride: &str) -> (String, Vec<u8>) {
        let e = sample::ride_requested(ride, "berlin");
        (
            hail_events::Event::subject(&e),
            codec::encode(&e).unwrap().to_vec(),
        )
    }

    async fn deliver(
        a: &Analytics,
        (subject, payload): &(String, Vec<u8>),
        h: Option<&HeaderMap>,
        stream_seq: u64,
        delivered: i64,
    ) -> Outcome {
        let d = Delivery {
            subject,
            payload,
            headers: h,
            stream_seq,
            delivered,
            published: time::OffsetDateTime::UNIX_EPOCH,
        };
        a.handle(&d).await
    }

    fn store(live: &Live) {
        if let Some((v, state)) = live.snapshot() {
            live.stored(v, Arc::new(state));
        }
    }

    fn replay_of(seq: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::REPLAY_FOR, "analytics");
        h.insert(headers::REPLAY_OF, seq.to_string().as_str());
        h
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_checkpoint_the_last_delivery_withdraws_before_giving_up() {
        let live = Arc::new(Live::new(State::default(), 1000));
        let a = analytics(&live);
        let r = request("a");
        for delivered in 1..=3 {
            let out = deliver(&a, &r, None, 1, delivered).await;
            assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
        }
        assert_eq!(a.metrics.withdrawn.get(), 1);
        store(&live);
        let stored = live.subscribe().borrow().state.clone();
        assert_eq!((stored.all_cities().requests, stored.counts(1)), (0, false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_last_delivery_the_stored_checkpoint_counts_is_acked() {
        let live = Arc::new(Live::new(State::default(), 1000));
        let a = analytics(&live);
        let r = request("a");
        assert!(matches!(
            deliver(&a, &r, None, 1, 1).await,
            Outcome::Retry { .. }
        ));
        store(&live); // stored just after the first delivery gave up
        live.apply(2, &sample_event("b")); // something newer never stored
        let out = deliver(&a, &r, None, 1, 3).await;
        assert!(matches!(out, Outcome::Done(_)), "{out:?}");
        assert_eq!(a.metrics.withdrawn.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn replays_count_once_under_their_original_sequence() {
        let live = Arc::new(Live::new(State::default(), 1000));
        let a = analytics(&live);
        let r = request("a");
        for delivered in 1..=3 {
            deliver(&a, &r, None, 1, delivered).await;
        }
        let h = replay_of(1);
        // First replay (#5): counted; its checkpoint stored while it waits.
        let first = {
            let live = live.clone();
            async move {
                tokio::task::yield_now().await;
                store(&live);
            }
        };
        let (out, ()) = tokio::join!(deliver(&a, &r, Some(&h), 5, 1), first);
        assert!(matches!(out, Outcome::Done(_)), "{out:?}");
        // Second replay of the same letter (#8): not counted again.
        let (out, ()) = tokio::join!(deliver(&a, &r, Some(&h), 8, 1), async {
            tokio::task::yield_now().await;
            store(&live);
        });
        assert!(matches!(out, Outcome::Done(_)), "{out:?}");
        let stored = live.subscribe().borrow().state.clone();
        assert_eq!(stored.all_cities().requests, 1);
        assert!(stored.counts(1) && !stored.counts(5) && !stored.counts(8));
    }

    fn sample_event(ride: &str) -> RideEvent {
        RideEvent::Requested(sample::ride_requested(ride, "berlin"))
    }
}
