//! fraud's handler: `RideRequested` → `RideScreened`.

use std::sync::{Arc, Mutex};

use hail_events::RideRequested;
use hail_runtime::{Delivery, Handler, Outcome, Output, request_feed::FeedPosition};

use crate::{
    blocklist::Blocklist,
    history::Sighting,
    metrics::Metrics,
    screener::{Screener, Screening},
};

/// Screens every request against the shared history and the live blocklist.
#[derive(Debug, Clone)]
pub struct Fraud {
    screener: Arc<Mutex<Screener>>,
    blocklist: Blocklist,
    metrics: Metrics,
    feed: FeedPosition,
}

impl Fraud {
    /// A handler over `screener`, whose history `feed` keeps.
    pub fn new(
        screener: Arc<Mutex<Screener>>,
        blocklist: Blocklist,
        metrics: Metrics,
        feed: FeedPosition,
    ) -> Fraud {
        Fraud {
            screener,
            blocklist,
            metrics,
            feed,
        }
    }

    /// Screens one request stored in the stream at `stored_ms`.
    pub fn screen(&self, req: &RideRequested, stored_ms: u64) -> Screening {
        let blocked = self.blocklist.contains(&req.card);
        let sighting = Sighting::of(req, stored_ms);
        // The lock is held for the pure step only: microseconds, never an await.
        let screening = self
            .screener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .screen(&sighting, blocked);
        self.metrics.screened(req.city.as_str(), &screening);
        screening
    }
}

impl Handler for Fraud {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        let req: RideRequested = match d.decode() {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        // Every request stored before this one is in the history, whichever
        // instance screened it.
        self.feed
            .wait_for_handler(d.stream_seq, &self.metrics.feed_waits_timed_out)
            .await;
        let screening = self.screen(&req, unix_ms(d.published));
        match Output::event(&screening.event(&req, hail_runtime::now_ms())) {
            Ok(out) => Outcome::Done(vec![out]),
            Err(e) => e.into(),
        }
    }
}

/// Milliseconds since the Unix epoch of a stream timestamp.
pub fn unix_ms(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}
