//! Catch-up progress: how much the durable still owes, how fast that shrinks
//! and when it will be done. ride-view starts on a platform that has run for a
//! while and replays RIDES from the start; these figures (on `/metrics`, and
//! in the logs every 10 s until caught up) say how far along it is.
//!
//! [`Drain`] is the pure part: remaining counts over time in, a drain rate
//! and an ETA out. [`follow`] feeds it the durable's info once a second.

use std::{collections::VecDeque, time::Duration};

use async_nats::jetstream;
use hail_events::subjects;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::metrics::RideViewMetrics;

/// How often the durable's info is read.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// The span the drain rate is measured over.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Where the catch-up stands after one reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Messages still owed.
    pub remaining: u64,
    /// How fast that shrinks (messages per second), once two readings span
    /// some time; 0 when it does not shrink.
    pub rate: Option<f64>,
    /// Seconds until nothing is owed at that rate: 0 when nothing is,
    /// infinite while the backlog does not shrink.
    pub eta_seconds: Option<f64>,
}

/// Remaining counts over the last [`WINDOW`].
#[derive(Debug, Clone, Default)]
pub struct Drain {
    samples: VecDeque<(Duration, u64)>,
}

impl Drain {
    /// Notes `remaining` at `at` (time since any fixed origin) and says where
    /// the catch-up stands.
    pub fn observe(&mut self, at: Duration, remaining: u64) -> Progress {
        self.samples.push_back((at, remaining));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| at.saturating_sub(*t) > WINDOW)
        {
            self.samples.pop_front();
        }
        let (t0, r0) = self.samples[0];
        let span = at.saturating_sub(t0).as_secs_f64();
        let rate = (span > 0.0).then(|| (r0.saturating_sub(remaining)) as f64 / span);
        let eta_seconds = match (remaining, rate) {
            (0, _) => Some(0.0),
            (_, Some(r)) if r > 0.0 => Some(remaining as f64 / r),
            (_, Some(_)) => Some(f64::INFINITY),
            (_, None) => None,
        };
        Progress {
            remaining,
            rate,
            eta_seconds,
        }
    }
}

/// Reads the durable's info every [`INTERVAL`] until `shutdown`, into the
/// metrics and, while catching up, the log.
pub fn follow(
    js: jetstream::Context,
    durable: &'static str,
    metrics: RideViewMetrics,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) {
    tracker.spawn(async move {
        let start = tokio::time::Instant::now();
        let mut drain = Drain::default();
        let mut caught_up = false;
        let mut ticks = 0u64;
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(remaining) = owed(&js, durable).await else {
                continue;
            };
            let p = drain.observe(start.elapsed(), remaining);
            metrics.remaining.set(i64::try_from(remaining).unwrap_or(i64::MAX));
            if let Some(rate) = p.rate {
                metrics.drain_rate.set(rate);
            }
            if let Some(eta) = p.eta_seconds {
                metrics.eta.set(eta);
            }
            ticks += 1;
            if remaining == 0 && !caught_up {
                caught_up = true;
                metrics.caught_up.set(1);
                let took = start.elapsed();
                tracing::info!(?took, "caught up with RIDES; following live");
            } else if !caught_up && ticks.is_multiple_of(10) {
                tracing::info!(remaining, rate = ?p.rate, eta_seconds = ?p.eta_seconds, "catching up");
            }
        }
    });
}

/// Pending plus unacknowledged messages of the durable, or `None` while it
/// cannot be read (not bound yet, NATS away).
async fn owed(js: &jetstream::Context, durable: &str) -> Option<u64> {
    let stream = js.get_stream(subjects::RIDES_STREAM).await.ok()?;
    match stream.consumer_info(durable).await {
        Ok(info) => Some(info.num_pending + info.num_ack_pending as u64),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the durable's info");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn the_eta_is_what_remains_over_the_drain_rate() {
        let mut d = Drain::default();
        let first = d.observe(s(0), 10_000);
        assert_eq!((first.rate, first.eta_seconds), (None, None));
        d.observe(s(1), 9_000);
        let p = d.observe(s(2), 8_000);
        assert_eq!(p.rate, Some(1_000.0));
        assert_eq!(p.eta_seconds, Some(8.0));
    }

    #[test]
    fn only_the_last_window_counts() {
        let mut d = Drain::default();
        d.observe(s(0), 100_000); // fast at first
        d.observe(s(5), 50_000);
        d.observe(s(15), 49_000);
        let p = d.observe(s(20), 48_000);
        // At t=20 the samples older than 10 s are gone: 1,000 in the 5 s since t=15.
        assert_eq!(p.rate, Some(200.0));
        assert_eq!(p.eta_seconds, Some(240.0));
    }

    #[test]
    fn caught_up_is_zero_and_a_growing_backlog_never_ends() {
        let mut d = Drain::default();
        d.observe(s(0), 10);
        assert_eq!(d.observe(s(1), 0).eta_seconds, Some(0.0));
        let mut g = Drain::default();
        g.observe(s(0), 10);
        let p = g.observe(s(1), 20);
        assert_eq!(p.rate, Some(0.0));
        assert_eq!(p.eta_seconds, Some(f64::INFINITY));
    }
}
