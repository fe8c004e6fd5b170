//! The load phase: releasing the schedule's rides on time and publishing them
//! without ever waiting on the broker.
//!
//! [`drive`] wakes when the next ride is due (at most once a millisecond: every
//! ride due by then goes out in one batch) and hands each to [`Window::submit`],
//! which never waits: it takes one of the window's permits or refuses the ride,
//! counted as a `backpressure` failure. The publisher task ([`publish_rides`])
//! builds, encodes and publishes the rides and awaits their PubAcks concurrently;
//! a ride's permit is returned with its PubAck or failure. So a slow broker shows
//! as refused rides and late answers, never as a slower schedule.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::jetstream::{
    self,
    context::{PublishError, PublishErrorKind},
    publish::PublishAck,
};
use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use hail_events::{Event, codec, headers};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    demand::Demand,
    ledger::{Ledger, lock},
    schedule::{Arrival, Clock, Schedule},
};

/// Why the load phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedBy {
    /// `--duration` passed.
    Duration,
    /// `--rides` were released.
    Rides,
    /// SIGINT or SIGTERM.
    Signal,
}

impl StoppedBy {
    /// Lowercase name for the report.
    pub fn as_str(self) -> &'static str {
        match self {
            StoppedBy::Duration => "duration",
            StoppedBy::Rides => "rides",
            StoppedBy::Signal => "signal",
        }
    }
}

/// A ride handed to the publisher, holding its place in the window.
pub struct Job {
    pub(super) arrival: Arrival,
    pub(super) permit: OwnedSemaphorePermit,
}

/// At most `size` rides between release and PubAck.
pub struct Window {
    size: usize,
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl Window {
    /// A window of `size` and the publisher's end of it.
    pub fn new(size: usize) -> (Self, mpsc::Receiver<Job>) {
        // A job holds a permit, so the channel can never hold more than `size`.
        let (jobs, rx) = mpsc::channel(size.max(1));
        let window = Self {
            size,
            permits: Arc::new(Semaphore::new(size)),
            jobs,
        };
        (window, rx)
    }

    /// Hands `arrival` to the publisher, or refuses it at once when the window is full.
    pub fn submit(&self, arrival: Arrival) -> bool {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return false;
        };
        self.jobs.try_send(Job { arrival, permit }).is_ok()
    }
}

/// Releases the rides of `schedule` on time until it ends (for a `--duration`
/// run, until the duration has passed) or `stop` fires.
pub async fn drive(
    mut schedule: Schedule,
    window: &Window,
    ledger: &Mutex<Ledger>,
    clock: &Clock,
    until: Option<Duration>,
    stop: &CancellationToken,
) -> StoppedBy {
    let mut batch = Vec::with_capacity(1024);
    while let Some(next) = schedule.peek() {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return StoppedBy::Signal,
            _ = tokio::time::sleep_until(clock.instant(next.at_us)) => {}
        }
        let now = clock.elapsed_us();
        batch.clear();
        batch.extend(std::iter::from_fn(|| schedule.pop_due(now)));
        release(&batch, window, ledger, clock);
    }
    let Some(until) = until.filter(|_| !schedule.counted_out()) else {
        return StoppedBy::Rides;
    };
    tokio::select! {
        biased;
        _ = stop.cancelled() => StoppedBy::Signal,
        _ = tokio::time::sleep_until(clock.instant(until.as_micros() as u64)) => StoppedBy::Duration,
    }
}

/// Enters the batch in the ledger (before anything can answer it), then submits it.
fn release(batch: &[Arrival], window: &Window, ledger: &Mutex<Ledger>, clock: &Clock) {
    {
        let mut l = lock(ledger);
        batch.iter().for_each(|a| l.schedule(*a));
    }
    let refused: Vec<u64> = batch
        .iter()
        .filter(|a| !window.submit(**a))
        .map(|a| a.index)
        .collect();
    if refused.is_empty() {
        return;
    }
    let now = clock.elapsed_us();
    let mut l = lock(ledger);
    for i in refused {
        let why = || format!("{} rides already awaiting their PubAck", window.size);
        l.failed(i, "backpressure", why, now);
    }
}

/// What became of one publish.
struct Settled {
    index: u64,
    sent_us: u64,
    ack: Result<PublishAck, PublishError>,
    _permit: OwnedSemaphorePermit,
}

/// Publishes every job until the window is closed (its [`Window`] dropped), then
/// waits for the PubAcks still in flight.
pub async fn publish_rides(
    js: jetstream::Context,
    demand: Arc<Demand>,
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Settled>> = FuturesUnordered::new();
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => {
                    if let Some(f) = publish(&js, &demand, &ledger, &clock, job).await {
                        in_flight.push(f);
                    }
                }
                None => break,
            },
            Some(done) = in_flight.next() => settle(&ledger, &clock, done),
        }
    }
    while let Some(done) = in_flight.next().await {
        settle(&ledger, &clock, done);
    }
}

/// Publishes one ride; its PubAck is the returned future.
async fn publish(
    js: &jetstream::Context,
    demand: &Demand,
    ledger: &Mutex<Ledger>,
    clock: &Clock,
    job: Job,
) -> Option<BoxFuture<'static, Settled>> {
    let Arrival { index, at_us } = job.arrival;
    // The ride is requested when it was meant to be, however late it goes out.
    let built = demand
        .ride(index, at_us, clock.wall_ms(at_us))
        .and_then(|ride| Ok((codec::encode(&ride)?, ride)));
    let (payload, ride) = match built {
        Ok(b) => b,
        Err(e) => {
            lock(ledger).failed(index, "invalid_event", || e.to_string(), clock.elapsed_us());
            return None;
        }
    };
    let sent_us = clock.elapsed_us();
    match js
        .publish_with_headers(ride.subject(), headers::for_event(&ride), payload)
        .await
    {
        Ok(ack) => Some(
            async move {
                Settled {
                    index,
                    sent_us,
                    ack: ack.await,
                    _permit: job.permit,
                }
            }
            .boxed(),
        ),
        Err(e) => {
            lock(ledger).failed(
                index,
                kind_name(e.kind()),
                || describe(&e),
                clock.elapsed_us(),
            );
            None
        }
    }
}

fn settle(ledger: &Mutex<Ledger>, clock: &Clock, done: Settled) {
    let now = clock.elapsed_us();
    let mut l = lock(ledger);
    match done.ack {
        Ok(ack) => l.stored(done.index, done.sent_us, now, ack.duplicate),
        // Sent, but the answer never came: the stream may have stored it.
        Err(e) if outcome_unknown(e.kind()) => l.unknown(done.index, || describe(&e)),
        Err(e) => l.failed(done.index, kind_name(e.kind()), || describe(&e), now),
    }
}

/// Whether a publish that failed this way, after it was sent, may still have
/// been stored: its PubAck timed out or the connection broke before it came.
pub fn outcome_unknown(kind: PublishErrorKind) -> bool {
    matches!(
        kind,
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe
    )
}

/// A publish failure's kind, as the report names it.
/// The error as the report quotes it. The server answers "no responders" (which
/// async-nats calls "no stream found") also when the stream exists but has no
/// leader: a cluster that lost its quorum.
pub fn describe(e: &PublishError) -> String {
    match e.kind() {
        PublishErrorKind::StreamNotFound => format!(
            "{e}: no stream leader answered (the stream is missing, or the cluster has no quorum)"
        ),
        _ => e.to_string(),
    }
}

pub fn kind_name(kind: PublishErrorKind) -> &'static str {
    match kind {
        PublishErrorKind::StreamNotFound => "stream_not_found",
        PublishErrorKind::TimedOut => "timed_out",
        PublishErrorKind::BrokenPipe => "broken_pipe",
        PublishErrorKind::MaxAckPending => "max_ack_pending",
        PublishErrorKind::MaxPayloadExceeded => "max_payload_exceeded",
        PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence => "wrong_last",
        PublishErrorKind::Other => "other",
    }
}
