//! Publishing rides as fast as the broker takes them, with a bounded window of
//! PubAcks in flight.
//!
//! async-nats applies back-pressure once a context holds its capacity of
//! unacknowledged publishes; a task that publishes while holding that many unpolled
//! ack futures blocks forever. So the window is enforced here, and the context is
//! sized to it.

use std::{
    collections::BTreeMap,
    future::IntoFuture,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, ensure};
use async_nats::{
    Client,
    jetstream::{self, context::PublishError},
};
use futures::{StreamExt, stream::FuturesUnordered};
use hail_events::{Event, codec, headers};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{latency::Pace, rides::RideFactory};

/// How many rides and how.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// Rides to publish.
    pub rides: u64,
    /// Most PubAcks awaited at once.
    pub window: usize,
    /// Print published count and rate to stderr every second.
    pub progress: bool,
    /// Open loop: ride `i` is sent at its due time (`bench --rate`), not as
    /// soon as the window allows.
    pub pace: Option<Pace>,
}

/// What a publishing run did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// Rides the stream stored (PubAck received), duplicates included.
    pub published: u64,
    /// Of those, how many the stream had already (same `Nats-Msg-Id`: a re-used run id).
    pub duplicates: u64,
    /// Rides that failed (publish or PubAck error).
    pub failed: u64,
    /// Failures by kind, with the first message of each kind.
    pub errors: BTreeMap<String, (u64, String)>,
    /// When the first ride was published.
    pub started: Instant,
    /// From the first publish to the last PubAck.
    pub elapsed: Duration,
}

impl PublishReport {
    /// Rides stored per second.
    pub fn rate(&self) -> f64 {
        self.published as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line: counts, time and rate.
    pub fn summary(&self) -> String {
        format!(
            "published {} rides ({} duplicates), failed {}, in {:.2} s: {:.0} rides/s",
            self.published,
            self.duplicates,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.rate()
        )
    }
}

/// A JetStream context whose in-flight PubAck capacity matches `window`, so its
/// own back-pressure never blocks a publisher that keeps to the window.
pub fn context(client: Client, window: usize) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .max_ack_inflight(window.max(1))
        .build(client)
}

/// Publishes `settings.rides` rides of `factory`; failures are counted, never fatal
/// (only an event that cannot be encoded, a bug, ends the run with an error).
pub async fn publish(
    js: &jetstream::Context,
    factory: &RideFactory,
    settings: &PublishSettings,
) -> Result<PublishReport> {
    ensure!(settings.window >= 1, "--window must be at least 1");
    let published = Arc::new(AtomicU64::new(0));
    let stop_progress = CancellationToken::new();
    let progress = settings
        .progress
        .then(|| tokio::spawn(progress(published.clone(), stop_progress.clone())));
    let mut report = PublishReport {
        published: 0,
        duplicates: 0,
        failed: 0,
        errors: BTreeMap::new(),
        started: Instant::now(),
        elapsed: Duration::ZERO,
    };
    let result = publish_all(js, factory, settings, &mut report, &published).await;
    report.elapsed = report.started.elapsed();
    stop_progress.cancel();
    if let Some(task) = progress {
        let _ = task.await;
    }
    result.map(|()| report)
}

async fn publish_all(
    js: &jetstream::Context,
    factory: &RideFactory,
    settings: &PublishSettings,
    report: &mut PublishReport,
    published: &AtomicU64,
) -> Result<()> {
    let mut in_flight = FuturesUnordered::new();
    for i in 0..settings.rides {
        while in_flight.len() >= settings.window {
            if let Some(ack) = in_flight.next().await {
                settle(report, published, ack);
            }
        }
        if let Some(pace) = &settings.pace {
            tokio::time::sleep_until(pace.due(i)).await;
        }
        let ride = factory
            .ride(i, hail_runtime::now_ms())
            .with_context(|| format!("building ride {i}"))?;
        let payload = codec::encode(&ride).with_context(|| format!("encoding ride {i}"))?;
        if i == 0 {
            // Open loop: the run's clock starts when the first ride is due,
            // as every ride's latency does, however late its send was.
            report.started = settings.pace.map_or_else(Instant::now, |p| p.start);
        }
        match js
            .publish_with_headers(ride.subject(), headers::for_event(&ride), payload)
            .await
        {
            Ok(ack) => in_flight.push(ack.into_future()),
            Err(e) => record_failure(report, &e),
        }
    }
    while let Some(ack) = in_flight.next().await {
        settle(report, published, ack);
    }
    Ok(())
}

fn settle(
    report: &mut PublishReport,
    published: &AtomicU64,
    ack: Result<jetstream::publish::PublishAck, PublishError>,
) {
    match ack {
        Ok(ack) => {
            report.published += 1;
            report.duplicates += u64::from(ack.duplicate);
            published.store(report.published, Ordering::Relaxed);
        }
        Err(e) => record_failure(report, &e),
    }
}

fn record_failure(report: &mut PublishReport, e: &PublishError) {
    report.failed += 1;
    let entry = report
        .errors
        .entry(format!("{:?}", e.kind()))
        .or_insert_with(|| (0, e.to_string()));
    entry.0 += 1;
    if report.failed == 1 {
        tracing::warn!(error = %e, "publish failed (counting further failures)");
    }
}

/// Prints the count and the rate of the last second until `stop`.
async fn progress(published: Arc<AtomicU64>, stop: CancellationToken) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = published.load(Ordering::Relaxed);
        eprintln!(
            "[{:>4.0} s] published {now} ({} rides/s)",
            start.elapsed().as_secs_f64(),
            now - last
        );
        last = now;
    }
}
