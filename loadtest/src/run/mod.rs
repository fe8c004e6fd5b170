//! `hail-loadgen run`: an open-loop city model against a running hail.
//!
//! - [`config`]: the flags, checked at start.
//! - [`day`]: the compressed day: a rush-hour wave and drifting hotspots.
//! - [`demand`]: cities with demand hotspots; ride `i` from the seed and `i`.
//! - [`riders`]: who asks for ride `i`: a pool of riders and a small fraud ring.
//! - [`schedule`]: Poisson arrival times from the start, and the run's [`schedule::Clock`].
//! - [`load`]: releasing due rides into a bounded window ([`load::drive`]) and the
//!   publisher task; a full window refuses a ride, it never delays the schedule.
//! - [`http`]: `--via http`, the publisher that POSTs the rides to hail-gateway.
//! - [`answers`]: core subscriptions to the services' answers.
//! - [`ledger`]: every ride's intended time and answers; latency histograms and
//!   the per-second series.
//! - [`fleet`] (the drivers and their trips) and [`fleet_task`] (publishing their
//!   reports and the rides' completions).
//! - [`progress`]: the line on stderr every second, with each service's lag.
//! - [`surge`]: the surge quoted, per city, in the wave's hotspots and away from them.
//! - [`reconcile`]: which rides whose PubAck never came RIDES holds after all.
//! - [`report`]: the final report, text and JSON.
//!
//! The run: connect, make sure RIDES and DRIVERS exist, subscribe to the answers,
//! publish every driver's position, then release rides on schedule until the
//! duration or the ride count is reached (or a signal), wait up to `--settle` for
//! missing answers, complete the trips still open, and report.

pub mod answers;
pub mod config;
pub mod day;
pub mod demand;
pub mod fleet;
pub mod fleet_task;
pub mod http;
pub mod ledger;
pub mod load;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod riders;
pub mod schedule;
pub mod surge;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, Result};
use async_nats::{Client, Subscriber, jetstream};
use hail_runtime::provision;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::{
    config::RunConfig,
    demand::Demand,
    fleet::Fleet,
    fleet_task::{FLEET_WINDOW, FleetStats, FleetTask},
    ledger::{Ledger, Missing, lock},
    load::{StoppedBy, Window},
    progress::Lag,
    report::{RunFacts, RunReport},
    schedule::{Clock, Schedule},
};
use hail_runtime::service::Service;

use crate::{publisher, streams};

/// Matched rides waiting for the fleet.
const MATCHED_BUFFER: usize = 65_536;
/// How often settling looks at what is missing.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// Runs the model as configured and returns its report. Failed publishes are in
/// the report; an error means the run could not start (or a task panicked).
pub async fn run(cfg: &RunConfig) -> Result<RunReport> {
    let demand = Arc::new(
        Demand::new(&cfg.run_id, cfg.seed, &cfg.cities, cfg.hotspots)?
            .with_riders(cfg.riders)?
            .with_day(cfg.day),
    );
    let fleet = Fleet::new(&demand, cfg.fleet())?;
    let (client, js, subs) = prepare(cfg).await?;
    let stop = hail_runtime::shutdown::on_signals().context("installing signal handlers")?;
    eprintln!("{}", banner(cfg, fleet.len()));
    let mut fleet = FleetTask::new(js.clone(), fleet, demand.clone());
    fleet.snapshot(hail_runtime::now_ms()).await;

    let clock = Clock::start();
    let ledger = Arc::new(Mutex::new(Ledger::new()));
    let demand_of_run = demand.clone();
    let (window, tasks) = Tasks::spawn(cfg, &js, subs, demand, fleet, &ledger, clock);
    let schedule = Schedule::new(cfg.seed, cfg.rate, cfg.rides, cfg.duration).with_day(cfg.day);
    let stopped_by = load::drive(schedule, &window, &ledger, &clock, cfg.duration, &stop).await;
    let load_end_us = clock.elapsed_us();
    drop(window);
    let tasks = tasks.load_over(load_end_us).await?;
    let settled = match stopped_by {
        StoppedBy::Signal => Duration::ZERO,
        _ => settle(&js, &ledger, cfg.settle, &stop).await,
    };
    let fleet = tasks.finish().await?;
    reconcile_unknown(&js, &demand_of_run, &ledger, clock.wall_ms(0)).await;
    stop.cancel();
    if let Err(e) = client.drain().await {
        tracing::warn!(error = %e, "draining the NATS connection");
    }
    let facts = RunFacts {
        run_id: cfg.run_id.clone(),
        seed: cfg.seed,
        cities: cfg.cities.iter().map(|c| c.name.to_string()).collect(),
        target_rate: cfg.rate,
        duration_s: cfg.duration.map(|d| d.as_secs_f64()),
        rides_limit: cfg.rides,
        stopped_by: stopped_by.as_str(),
        elapsed_s: load_end_us as f64 / 1e6,
        settle_s: settled.as_secs_f64(),
    };
    Ok(RunReport::new(facts, &lock(&ledger), fleet, cfg.surge_cap))
}

/// Reads RIDES for the rides whose PubAck never came and counts those it holds
/// as published; on failure they stay unknown (and the report says so).
async fn reconcile_unknown(
    js: &jetstream::Context,
    demand: &Demand,
    ledger: &Mutex<Ledger>,
    start_ms: u64,
) {
    let unknown = lock(ledger).unknown_rides();
    if unknown.is_empty() {
        return;
    }
    eprintln!(
        "{} rides' PubAcks never came; reading RIDES to see which it holds",
        unknown.len()
    );
    match reconcile::stored_among(js, demand, &unknown, start_ms).await {
        Ok(stored) => lock(ledger).reconciled(&stored),
        Err(e) => eprintln!("cannot reconcile them, their outcome stays unknown: {e:#}"),
    }
}

/// Connects, makes sure RIDES and DRIVERS exist, and subscribes to the answers.
async fn prepare(cfg: &RunConfig) -> Result<(Client, jetstream::Context, Vec<Subscriber>)> {
    let client = hail_runtime::connect::connect_as(
        &cfg.nats_url,
        "hail-loadgen",
        cfg.connect_timeout,
        &cfg.auth,
    )
    .await?;
    let js = publisher::context(client.clone(), cfg.window + FLEET_WINDOW);
    let settings = hail_runtime::provision::StreamSettings {
        replicas: hail_runtime::replicas::Replicas::Auto.for_client(&client),
        ..Default::default()
    };
    streams::ensure_exists(&js, provision::rides_stream(&settings), &cfg.nats_url).await?;
    streams::ensure_exists(&js, provision::drivers_stream(&settings), &cfg.nats_url).await?;
    let subs = answers::subscribe(&client, &cfg.nats_url).await?;
    Ok((client, js, subs))
}

/// The tasks of a run besides the schedule: the ride publisher, the answer
/// listener, the fleet and the progress line.
struct Tasks {
    tracker: TaskTracker,
    /// Ends the listener, the fleet and the progress line.
    done: CancellationToken,
    publisher: JoinHandle<()>,
    fleet: JoinHandle<FleetStats>,
    load_end: watch::Sender<Option<u64>>,
}

impl Tasks {
    /// Starts them; rides go to the publisher through the returned window.
    fn spawn(
        cfg: &RunConfig,
        js: &jetstream::Context,
        subs: Vec<Subscriber>,
        demand: Arc<Demand>,
        fleet: FleetTask,
        ledger: &Arc<Mutex<Ledger>>,
        clock: Clock,
    ) -> (Window, Self) {
        let tracker = TaskTracker::new();
        let done = CancellationToken::new();
        let (matched_tx, matched_rx) = mpsc::channel(MATCHED_BUFFER);
        let (load_end, load_end_rx) = watch::channel(None);
        let (window, jobs) = Window::new(cfg.window);
        let (js, ledger) = (js.clone(), ledger.clone());
        let publisher = match cfg.via {
            http::Via::Nats => tracker.spawn(load::publish_rides(
                js.clone(),
                demand.clone(),
                ledger.clone(),
                clock,
                jobs,
            )),
            http::Via::Http => tracker.spawn(http::post_rides(
                http::client(cfg.window),
                cfg.gateway_url.clone(),
                demand.clone(),
                ledger.clone(),
                clock,
                jobs,
            )),
        };
        let listen = answers::listen(
            subs,
            demand,
            ledger.clone(),
            clock,
            matched_tx,
            done.clone(),
        );
        tracker.spawn(listen);
        let report_until = cfg.duration.map(|d| d.as_micros() as u64);
        let fleet = fleet.run(clock, report_until, matched_rx, load_end_rx, done.clone());
        let fleet = tracker.spawn(fleet);
        tracker.spawn(progress::report_progress(js, ledger, clock, done.clone()));
        tracker.close();
        let tasks = Self {
            tracker,
            done,
            publisher,
            fleet,
            load_end,
        };
        (window, tasks)
    }

    /// The load phase ended at `end_us` (and its window is closed): the fleet sends
    /// its last reports, the publisher its last rides.
    async fn load_over(mut self, end_us: u64) -> Result<Self> {
        self.load_end.send_replace(Some(end_us));
        (&mut self.publisher)
            .await
            .context("the ride publisher panicked")?;
        Ok(self)
    }

    /// Stops the listener, the fleet (which completes the open trips) and the
    /// progress line, and waits for them.
    async fn finish(self) -> Result<FleetStats> {
        self.done.cancel();
        let stats = self.fleet.await.context("the fleet task panicked")?;
        self.tracker.wait().await;
        Ok(stats)
    }
}

fn banner(cfg: &RunConfig, drivers: usize) -> String {
    let bound = match (cfg.duration, cfg.rides) {
        (Some(d), Some(n)) => format!("for {d:?} or {n} rides"),
        (Some(d), None) => format!("for {d:?}"),
        (None, Some(n)) => format!("for {n} rides"),
        (None, None) => String::new(),
    };
    let cities: Vec<&str> = cfg.cities.iter().map(|c| c.name).collect();
    format!(
        "run {} (seed {}): {} rides/s {bound} in {} with {drivers} drivers, to {}",
        cfg.run_id,
        cfg.seed,
        cfg.rate,
        cities.join(","),
        cfg.nats_url
    )
}

/// Waits until no answer is missing that could still come, `max` at most or until
/// `stop`; returns how long it waited. An answer whose service has no durable
/// consumer on this broker cannot come, so it is not waited for.
async fn settle(
    js: &jetstream::Context,
    ledger: &Mutex<Ledger>,
    max: Duration,
    stop: &CancellationToken,
) -> Duration {
    let start = Instant::now();
    let deadline = start + max;
    loop {
        let missing = lock(ledger).missing();
        if nothing_to_wait_for(js, missing).await || Instant::now() >= deadline {
            return start.elapsed();
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => return start.elapsed(),
            _ = tokio::time::sleep_until(deadline.min(Instant::now() + SETTLE_POLL)) => {}
        }
    }
}

async fn nothing_to_wait_for(js: &jetstream::Context, missing: Missing) -> bool {
    if missing == Missing::default() {
        return true;
    }
    let lags = progress::lags(js).await;
    let absent = |role: Service| {
        lags.iter()
            .any(|(r, lag)| *r == role && *lag == Lag::Absent)
    };
    [
        (Service::Matching, missing.match_answer),
        (Service::Pricing, missing.priced),
        (Service::Fraud, missing.screened),
    ]
    .into_iter()
    .all(|(role, n)| n == 0 || absent(role))
}
