//! The fleet at work: publishes the drivers' reports on time, starts a trip for
//! every matched ride of the run, and completes each when it ends.
//!
//! Reports stop with the load phase (the last ones are those meant for before its
//! end); trips go on completing while the run settles, and the trips still open
//! when the run stops are completed at once, so no driver stays claimed.

use std::{collections::BTreeMap, future::IntoFuture, sync::Arc, time::Duration};

use async_nats::jetstream::{self, context::PublishError, publish::PublishAck};
use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use hail_events::{Event, codec, headers};
use serde::Serialize;
use tokio::{
    sync::{mpsc, watch},
    time::MissedTickBehavior,
};
use tokio_util::sync::CancellationToken;

use super::{
    answers::MatchedRide,
    demand::Demand,
    fleet::{Ending, Fleet},
    load::kind_name,
    schedule::Clock,
};

/// How often due reports and trip ends are looked for.
const TICK: Duration = Duration::from_millis(20);
/// Most fleet publishes awaiting their PubAck.
pub const FLEET_WINDOW: usize = 2048;

/// Where reports end: at the load phase's end once it is known, and never at or
/// past the run's duration.
fn reports_end(load_end: Option<u64>, duration_end: Option<u64>) -> Option<u64> {
    match (load_end, duration_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the fleet published.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetStats {
    pub drivers: usize,
    /// Location reports stored (snapshot, periodic and on status changes).
    pub updates_published: u64,
    pub updates_failed: u64,
    /// RideCompleted events stored.
    pub completions_published: u64,
    pub completions_failed: u64,
    /// RideCancelled events stored: riders who cancelled before their pickup.
    pub cancellations_published: u64,
    pub cancellations_failed: u64,
    /// Trips completed early because the run stopped.
    pub trips_cut_short: u64,
    /// Failures by kind, both event types together.
    pub failures: BTreeMap<&'static str, u64>,
}

#[derive(Clone, Copy)]
enum Kind {
    Update,
    Completion,
    Cancellation,
}

type Pending = BoxFuture<'static, (Kind, Result<PublishAck, PublishError>)>;

/// The fleet's task and its publishing.
pub struct FleetTask {
    pub js: jetstream::Context,
    pub fleet: Fleet,
    pub demand: Arc<Demand>,
    pub stats: FleetStats,
    acks: FuturesUnordered<Pending>,
}

impl FleetTask {
    /// The fleet, not yet publishing.
    pub fn new(js: jetstream::Context, fleet: Fleet, demand: Arc<Demand>) -> Self {
        let stats = FleetStats {
            drivers: fleet.len(),
            ..FleetStats::default()
        };
        Self {
            js,
            fleet,
            demand,
            stats,
            acks: FuturesUnordered::new(),
        }
    }

    /// Publishes every driver's position at `at_ms` and waits for the PubAcks, so
    /// matching knows the fleet before the first ride.
    pub async fn snapshot(&mut self, at_ms: u64) {
        for report in self.fleet.snapshot(at_ms) {
            self.publish(&report, Kind::Update).await;
        }
        self.settle_all().await;
    }

    /// Runs until `stop`: reports until `load_end` holds the end of the load phase
    /// (microseconds after the start of `clock`), and none meant for `report_until_us`
    /// or later; completes trips until `stop`. Returns what it published.
    pub async fn run(
        mut self,
        clock: Clock,
        report_until_us: Option<u64>,
        mut matched: mpsc::Receiver<MatchedRide>,
        load_end: watch::Receiver<Option<u64>>,
        stop: CancellationToken,
    ) -> FleetStats {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut reporting = true;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(done) = self.acks.next(), if !self.acks.is_empty() => self.settled(done),
                Some(m) = matched.recv() => self.matched(m, &clock).await,
                _ = tick.tick() => {
                    let load_end = *load_end.borrow();
                    if reporting {
                        self.report(&clock, reports_end(load_end, report_until_us)).await;
                        // Once the load phase is over, its last reports are out.
                        reporting = load_end.is_none();
                    }
                    self.trips_due(&clock).await;
                }
            }
        }
        self.finish(&clock).await;
        self.stats
    }

    /// Publishes the reports due by now and meant for before `end`.
    async fn report(&mut self, clock: &Clock, end: Option<u64>) {
        let now = clock.elapsed_us();
        for report in self.fleet.reports_due(now, end, clock) {
            self.publish(&report, Kind::Update).await;
        }
    }

    async fn trips_due(&mut self, clock: &Clock) {
        let now = clock.elapsed_us();
        for done in self.fleet.trips_due(now, clock) {
            self.end(&done.ending).await;
            if let Some(report) = done.report {
                self.publish(&report, Kind::Update).await;
            }
        }
    }

    async fn matched(&mut self, m: MatchedRide, clock: &Clock) {
        let rebuilt = self
            .demand
            .trip(m.index, m.intended_us)
            .and_then(|t| Ok((t, self.demand.rider_of(m.index)?)));
        let (trip, rider) = match rebuilt {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(ride = %m.ride, error = %e, "cannot rebuild the trip of a matched ride");
                return;
            }
        };
        let on = self
            .fleet
            .matched(m.index, m.ride, rider, &trip, m.driver, m.at_us, clock);
        if let Some(report) = on {
            self.publish(&report, Kind::Update).await;
        }
    }

    /// Publishes how a ride ended.
    async fn end(&mut self, ending: &Ending) {
        match ending {
            Ending::Completed(c) => self.publish(c, Kind::Completion).await,
            Ending::Cancelled(c) => self.publish(c, Kind::Cancellation).await,
        }
    }

    /// Completes the open trips and waits for every PubAck.
    async fn finish(&mut self, clock: &Clock) {
        let open = self.fleet.finish_all(clock.elapsed_us(), clock);
        self.stats.trips_cut_short = open.len() as u64;
        for ending in &open {
            self.end(ending).await;
        }
        self.settle_all().await;
    }

    async fn publish<E: Event>(&mut self, event: &E, kind: Kind) {
        while self.acks.len() >= FLEET_WINDOW {
            if let Some(done) = self.acks.next().await {
                self.settled(done);
            }
        }
        let payload = match codec::encode(event) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, event = E::NAME, "cannot encode a fleet event");
                return self.failed(kind, "invalid_event");
            }
        };
        let sent = self
            .js
            .publish_with_headers(event.subject(), headers::for_event(event), payload)
            .await;
        match sent {
            Ok(ack) => self
                .acks
                .push(ack.into_future().map(move |r| (kind, r)).boxed()),
            Err(e) => self.failed(kind, kind_name(e.kind())),
        }
    }

    async fn settle_all(&mut self) {
        while let Some(done) = self.acks.next().await {
            self.settled(done);
        }
    }

    fn settled(&mut self, (kind, ack): (Kind, Result<PublishAck, PublishError>)) {
        match (kind, ack) {
            (Kind::Update, Ok(_)) => self.stats.updates_published += 1,
            (Kind::Completion, Ok(_)) => self.stats.completions_published += 1,
            (Kind::Cancellation, Ok(_)) => self.stats.cancellations_published += 1,
            (kind, Err(e)) => self.failed(kind, kind_name(e.kind())),
        }
    }

    fn failed(&mut self, kind: Kind, why: &'static str) {
        match kind {
            Kind::Update => self.stats.updates_failed += 1,
            Kind::Completion => self.stats.completions_failed += 1,
            Kind::Cancellation => self.stats.cancellations_failed += 1,
        }
        *self.stats.failures.entry(why).or_default() += 1;
    }
}
