//! Exactly once at any age: faults that outlast the duplicate window (a paused
//! instance, a broker kept down, retries that add up) never store a second answer.
//!
//! Every scenario runs two instances each of matching, pricing and fraud (one of
//! analytics) under a steady load, checks the real `hail audit --json` with
//! [`chaos::verify`], and checks that each ride's stored answer is the first one
//! any instance published, as a core subscriber on every answer subject saw it.
//!
//! The duplicate window is shortened on the test's streams (`--duplicate-window`)
//! so the faults outlast it in seconds; one scenario keeps the default 120 s.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Result, ensure};
use async_nats::jetstream;
use futures::StreamExt;
use hail_e2e::{
    chaos::{self, Load, LoadReport},
    rides, serial,
    services::Service,
};
use hail_events::{EventKind, subjects};
use hail_runtime::{metrics::names, provision::StreamSettings};
use hail_testkit::{NatsServer, wait_until};
use tokio::task::JoinHandle;

const RATE: usize = 200;
const DRIVERS: usize = 1_500;
const READY: Duration = Duration::from_secs(30);
const DRAIN: Duration = Duration::from_secs(300);
const PROGRESS: Duration = Duration::from_secs(60);
/// The services that answer a request, two instances of each.
const ANSWERING: [&str; 3] = ["matching", "pricing", "fraud"];

/// Two instances of each answering service with `flags`, and one analytics; all
/// on streams with the duplicate window `window`.
struct Stack {
    /// `[matching a, matching b, pricing a, pricing b, fraud a, fraud b]`.
    pairs: Vec<Service>,
    _analytics: Service,
}

async fn start_stack(server: &NatsServer, window: Duration, flags: &[&str]) -> Result<Stack> {
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let settings = StreamSettings {
        rides_max_age: Duration::from_secs(3600),
        rides_max_bytes: 1 << 30,
        duplicate_window: window,
        ..StreamSettings::default()
    };
    hail_runtime::provision::ensure_streams(&js, &settings).await?;
    let window_flag = format!("{}s", window.as_secs());
    let mut all: Vec<&str> = vec!["--duplicate-window", &window_flag];
    all.extend_from_slice(flags);
    let mut pairs = Vec::new();
    for name in ANSWERING {
        for _ in 0..2 {
            pairs.push(Service::spawn_with(name, &server.url(), &all)?);
        }
    }
    let analytics = Service::spawn_with("analytics", &server.url(), &all[..2])?;
    for s in pairs.iter().chain([&analytics]) {
        s.wait_ready(READY).await?;
    }
    chaos::publish_drivers(&js, DRIVERS).await?;
    for m in &pairs[..2] {
        wait_until(READY, "matching indexed every driver", || async {
            m.metric("hail_matching_drivers_available", &[])
                .await
                .is_ok_and(|v| v >= DRIVERS as f64)
        })
        .await?;
    }
    Ok(Stack {
        pairs,
        _analytics: analytics,
    })
}

/// (answering service, ride) → (first payload published, publishes seen).
type Seen = Arc<Mutex<HashMap<(&'static str, String), (Vec<u8>, usize)>>>;

/// Every answer any instance published, as a core subscriber saw it: the first
/// payload per service and ride, and how many publishes each got.
struct Attempts {
    seen: Seen,
    task: JoinHandle<()>,
}

impl Attempts {
    async fn watch(nats_url: &str) -> Result<Attempts> {
        let client = async_nats::connect(nats_url).await?;
        let mut sub = client.subscribe(subjects::RIDES_ALL).await?;
        client.flush().await?;
        let seen: Seen = Arc::default();
        let into = seen.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            while let Some(msg) = sub.next().await {
                let Some(key) = answer_key(&msg.subject, msg.headers.as_ref()) else {
                    continue;
                };
                let mut seen = into.lock().unwrap();
                let e = seen.entry(key).or_insert_with(|| (msg.payload.to_vec(), 0));
                e.1 += 1;
            }
        });
        Ok(Attempts { seen, task })
    }

    /// Checks that every stored answer is the first one published for its ride,
    /// and returns how many rides got an answer published more than once.
    async fn check(self, scenario: &str, js: &jetstream::Context) -> Result<usize> {
        let stored = rides::stored(js, subjects::RIDES_STREAM, subjects::RIDES_ALL).await?;
        self.task.abort();
        let seen = self.seen.lock().unwrap();
        let mut answers = 0;
        for msg in stored.iter() {
            let Some(key) = answer_key(&msg.subject, msg.headers.as_ref()) else {
                continue;
            };
            answers += 1;
            let Some((first, _)) = seen.get(&key) else {
                // The subscriber may have missed one while the broker was down.
                continue;
            };
            ensure!(
                first.as_slice() == msg.payload.as_ref(),
                "[{scenario}] RIDES holds a {} answer for ride {} other than the first one published",
                key.0,
                key.1
            );
        }
        let republished = seen.values().filter(|(_, n)| *n > 1).count();
        println!(
            "[{scenario}] {answers} answers stored, {} answered rides published to, {republished} of them more than once",
            seen.len()
        );
        Ok(republished)
    }
}

/// The service that answered and the ride, for an answer (matching's matched
/// and unmatched are one answer).
fn answer_key(
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
) -> Option<(&'static str, String)> {
    let service = match EventKind::of_subject(subject).ok()? {
        EventKind::Matched | EventKind::Unmatched => "matching",
        EventKind::Priced => "pricing",
        EventKind::Screened => "fraud",
        _ => return None,
    };
    let ride = headers?
        .get(hail_events::headers::RIDE_ID)?
        .as_str()
        .to_string();
    Some((service, ride))
}

/// Outputs found already stored, summed over `instances`.
async fn refused(instances: &[&Service]) -> Result<f64> {
    summed(instances, names::ALREADY_STORED).await
}

/// The metric `name` summed over `instances`.
async fn summed(instances: &[&Service], name: &str) -> Result<f64> {
    let mut sum = 0.0;
    for s in instances {
        sum += s.metric(name, &[]).await?;
    }
    Ok(sum)
}

/// Stops the load and checks that every publish was acknowledged.
async fn stop_acked(load: Load) -> Result<LoadReport> {
    let report = load.stop().await?;
    ensure!(
        report.failed.is_empty(),
        "{} publishes failed",
        report.failed.len()
    );
    Ok(report)
}

async fn finish(
    scenario: &str,
    server: &NatsServer,
    js: &jetstream::Context,
    report: &LoadReport,
    attempts: Attempts,
) -> Result<usize> {
    chaos::verify(scenario, js, &server.url(), report, DRAIN).await?;
    attempts.check(scenario, js).await
}

/// Pauses one instance of each answering service for `pause` under load, then
/// resumes them and checks that nothing was stored twice.
async fn pause_one_of_each(scenario: &str, window: Duration, pause: Duration) -> Result<()> {
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let stack = start_stack(&server, window, &[]).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let attempts = Attempts::watch(&server.url()).await?;
    let load = Load::start(js.clone(), "paused", RATE);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing")
        .await?;
    let paused: Vec<&Service> = stack.pairs.iter().step_by(2).collect();
    for s in &paused {
        s.process.pause()?;
    }
    println!(
        "[{scenario}] one instance of each service paused at {} rides acknowledged, for {pause:?}",
        load.acked()
    );
    // The fault's length, not a wait for a condition.
    tokio::time::sleep(pause).await;
    for s in &paused {
        s.process.resume()?;
    }
    load.wait_acked_more(RATE, PROGRESS, "the load after the pause")
        .await?;
    let report = stop_acked(load).await?;
    finish(scenario, &server, &js, &report, attempts).await?;
    // The resumed instances held deliveries that the others had answered since:
    // their answers were refused, not stored again.
    let refused = refused(&paused).await?;
    println!("[{scenario}] the resumed instances had {refused} answers refused as already stored");
    ensure!(
        refused > 0.0,
        "[{scenario}] the paused instances published nothing late: the pause did not bite"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_paused_past_a_short_duplicate_window_store_no_answer_twice() -> Result<()> {
    pause_one_of_each(
        "paused past a 2 s window",
        Duration::from_secs(2),
        Duration::from_secs(8),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_paused_past_the_default_duplicate_window_store_no_answer_twice() -> Result<()> {
    let window = hail_runtime::config::defaults::duplicate_window();
    pause_one_of_each(
        "paused past the default window",
        window,
        window + Duration::from_secs(10),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_longer_than_the_duplicate_window_stores_no_answer_twice() -> Result<()> {
    const SCENARIO: &str = "broker down past the window";
    const WINDOW: Duration = Duration::from_secs(2);
    let _serial = serial().await;
    let mut server = NatsServer::start()?;
    let stack = start_stack(&server, WINDOW, &[]).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let attempts = Attempts::watch(&server.url()).await?;
    let load = Load::start(js.clone(), "outage", RATE);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing")
        .await?;
    server.kill();
    let down = WINDOW * 3;
    println!(
        "[{SCENARIO}] nats-server SIGKILLed at {} rides acknowledged, down for {down:?}",
        load.acked()
    );
    tokio::time::sleep(down).await;
    server.restart()?;
    for s in &stack.pairs {
        s.wait_ready(READY).await?;
    }
    load.wait_acked_more(RATE, PROGRESS, "the load after the restart")
        .await?;
    let report = load.stop().await?;
    finish(SCENARIO, &server, &js, &report, attempts).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_spanning_the_duplicate_window_store_no_answer_twice() -> Result<()> {
    const SCENARIO: &str = "retries past the window";
    // A tenth of the messages lose their ack on every delivery but the last, after
    // their answers were stored; the backoff spreads the five deliveries over
    // 7 s, more than three 2 s windows.
    let flags: &[&str] = &["--fault-lost-ack-rate", "0.1", "--backoff", "1s,2s,2s,2s"];
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let stack = start_stack(&server, Duration::from_secs(2), flags).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let attempts = Attempts::watch(&server.url()).await?;
    let load = Load::start(js.clone(), "lost-ack", RATE);
    load.wait_acked_more(RATE * 5, PROGRESS, "five seconds of load")
        .await?;
    let report = stop_acked(load).await?;
    finish(SCENARIO, &server, &js, &report, attempts).await?;
    let all: Vec<&Service> = stack.pairs.iter().collect();
    let refused = refused(&all).await?;
    println!("[{SCENARIO}] {refused} answers found already stored");
    // Every faulty message is handled five times: the last four find the
    // answer the first stored, and store nothing.
    ensure!(
        refused >= (report.acked.len() / 20 * 4 * ANSWERING.len()) as f64,
        "[{SCENARIO}] only {refused} answers found already stored for {} rides: the fault did not bite",
        report.acked.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_down_past_the_window_catches_its_backlog_up_once() -> Result<()> {
    const SCENARIO: &str = "pricing down past the window";
    const WINDOW: Duration = Duration::from_secs(2);
    let _serial = serial().await;
    let server = NatsServer::start()?;
    let mut stack = start_stack(&server, WINDOW, &[]).await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let attempts = Attempts::watch(&server.url()).await?;
    let load = Load::start(js.clone(), "backlog", RATE);
    load.wait_acked_more(RATE, PROGRESS, "the load flowing")
        .await?;
    // Both pricing instances (pairs[2..4]) SIGKILLed: whatever they had answered
    // but not acked comes back, and the requests of the outage wait for them.
    for s in &mut stack.pairs[2..4] {
        s.process.kill();
    }
    let down = WINDOW * 4;
    let killed_at = load.acked();
    println!(
        "[{SCENARIO}] both pricing instances SIGKILLed at {killed_at} rides acknowledged, down for {down:?}"
    );
    // The fault's length, not a wait for a condition.
    tokio::time::sleep(down).await;
    let window_flag = format!("{}s", WINDOW.as_secs());
    for s in &mut stack.pairs[2..4] {
        s.restart_with(&["--duplicate-window", &window_flag])?;
    }
    for s in &stack.pairs[2..4] {
        s.wait_ready(READY).await?;
    }
    load.wait_acked_more(RATE, PROGRESS, "the load after the restart")
        .await?;
    let report = stop_acked(load).await?;
    let backlog = report.acked.len().saturating_sub(killed_at);
    finish(SCENARIO, &server, &js, &report, attempts).await?;
    // The backlog was older than half the window when delivered: it took the
    // careful path, which found no earlier answer for almost all of it.
    let pricing: Vec<&Service> = stack.pairs[2..4].iter().collect();
    let checked = summed(&pricing, names::CHECKED).await?;
    let found = refused(&pricing).await?;
    println!(
        "[{SCENARIO}] {checked} answers took the careful path after the restart, {found} found stored; {backlog} rides published since the kill"
    );
    ensure!(
        checked >= (RATE * down.as_secs() as usize / 2) as f64,
        "[{SCENARIO}] only {checked} answers took the careful path after {down:?} down at {RATE} rides/s"
    );
    Ok(())
}
