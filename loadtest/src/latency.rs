//! The benchmark's open-loop latency (`bench --rate`): ride `i` is due at
//! `start + i / rate` ([`Pace`]), and each answer's latency is measured from
//! that due time, not from when it was actually sent, so a publisher or a
//! pipeline that falls behind shows in the figures instead of hiding.
//!
//! Answers are read on core subscriptions to the three answering services'
//! output subjects, whichever pipeline (null or services) produced them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Result;
use async_nats::{Client, Message};
use futures::StreamExt;
use hail_events::{headers, subjects};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::{task::JoinHandle, time::Instant};

/// Lead between deciding the start and the first ride's due time, so that the
/// subscriptions are in place before it.
const LEAD: Duration = Duration::from_millis(200);

/// When each ride of an open-loop run is due.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Due time of ride 0.
    pub start: Instant,
    /// Rides per second.
    pub rate: f64,
}

impl Pace {
    /// A pace starting shortly from now.
    pub fn starting_soon(rate: f64) -> Pace {
        Pace {
            start: Instant::now() + LEAD,
            rate,
        }
    }

    /// When ride `i` is due.
    pub fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }
}

/// Which service an answer subject belongs to: matching, pricing or fraud.
pub fn service_of(subject: &str) -> Option<&'static str> {
    let answers = [
        (subjects::RIDES_MATCHED_ALL, "matching"),
        (subjects::RIDES_UNMATCHED_ALL, "matching"),
        (subjects::RIDES_PRICED_ALL, "pricing"),
        (subjects::RIDES_SCREENED_ALL, "fraud"),
    ];
    answers
        .into_iter()
        .find(|(filter, _)| subjects::matches(filter, subject))
        .map(|(_, service)| service)
}

/// The index `i` of a bench ride id `<run-id>-<i>`.
pub fn ride_index(ride_id: &str) -> Option<u64> {
    ride_id.rsplit_once('-')?.1.parse().ok()
}

/// One service's answers in one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Answers received.
    pub answers: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Services that answer a request: matching, pricing, fraud.
const ANSWERING: usize = 3;
/// Longest wait for answers still on their way at the end of a run.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
const FINISH_POLL: Duration = Duration::from_millis(20);

/// Longest latency told apart from longer ones: an hour, in microseconds.
const HIGHEST_US: u64 = 3_600_000_000;

type Histograms = Arc<Mutex<BTreeMap<&'static str, Histogram<u64>>>>;

/// The running collection of answer latencies.
pub struct Collector {
    histograms: Histograms,
    task: JoinHandle<()>,
}

impl Collector {
    /// Subscribes to every answer subject; latencies are measured against `pace`.
    pub async fn start(client: &Client, pace: Pace) -> Result<Collector> {
        let mut subs = Vec::new();
        for filter in [
            subjects::RIDES_MATCHED_ALL,
            subjects::RIDES_UNMATCHED_ALL,
            subjects::RIDES_PRICED_ALL,
            subjects::RIDES_SCREENED_ALL,
        ] {
            subs.push(client.subscribe(filter).await?);
        }
        // Make sure the server has the subscriptions before the first ride.
        client.flush().await?;
        let histograms = Histograms::default();
        let into = histograms.clone();
        let mut answers = futures::stream::select_all(subs);
        let task = tokio::spawn(async move {
            while let Some(msg) = answers.next().await {
                record(&into, &pace, &msg, Instant::now());
            }
        });
        Ok(Collector { histograms, task })
    }

    /// Waits until each answering service's `expected` answers are counted
    /// (the last may still be on their way from the server when the durables
    /// show drained), at most [`FINISH_TIMEOUT`], then stops listening and
    /// summarises each service's answers.
    pub async fn finish(self, expected: u64) -> BTreeMap<String, Summary> {
        let all_in = || {
            let histograms = self.histograms.lock().expect("latency lock");
            histograms.len() == ANSWERING && histograms.values().all(|h| h.len() >= expected)
        };
        let deadline = Instant::now() + FINISH_TIMEOUT;
        while !all_in() && Instant::now() < deadline {
            tokio::time::sleep(FINISH_POLL).await;
        }
        self.task.abort();
        let histograms = self.histograms.lock().expect("latency lock");
        histograms
            .iter()
            .map(|(service, h)| (service.to_string(), summarise(h)))
            .collect()
    }
}

fn record(into: &Histograms, pace: &Pace, msg: &Message, now: Instant) {
    let Some(service) = service_of(&msg.subject) else {
        return;
    };
    let Some(i) = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::RIDE_ID))
        .and_then(|v| ride_index(v.as_str()))
    else {
        tracing::warn!(subject = %msg.subject, "an answer without a bench ride id");
        return;
    };
    let micros = now.saturating_duration_since(pace.due(i)).as_micros() as u64;
    let mut histograms = into.lock().expect("latency lock");
    let h = histograms.entry(service).or_insert_with(new_histogram);
    h.saturating_record(micros.max(1));
}

/// Microseconds from 1 to [`HIGHEST_US`], 3 significant digits; longer is
/// counted as that.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid bounds")
}

fn summarise(h: &Histogram<u64>) -> Summary {
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        answers: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_belong_to_their_services() {
        assert_eq!(service_of("rides.unmatched.paris"), Some("matching"));
        assert_eq!(service_of("rides.matched.nyc"), Some("matching"));
        assert_eq!(service_of("rides.priced.berlin"), Some("pricing"));
        assert_eq!(service_of("rides.screened.london"), Some("fraud"));
        assert_eq!(service_of("rides.requested.paris"), None);
    }

    #[test]
    fn ride_index_is_the_last_dash_part() {
        assert_eq!(ride_index("bench3-41"), Some(41));
        assert_eq!(ride_index("a-b-7"), Some(7));
        assert_eq!(ride_index("bench3"), None);
        assert_eq!(ride_index("bench3-x"), None);
    }

    #[test]
    fn ride_i_is_due_i_over_rate_after_the_start() {
        let pace = Pace {
            start: Instant::now(),
            rate: 2000.0,
        };
        assert_eq!(pace.due(0), pace.start);
        assert_eq!(pace.due(4000) - pace.start, Duration::from_secs(2));
    }

    #[test]
    fn summaries_are_in_milliseconds() {
        let mut h = new_histogram();
        for us in 1..=100 {
            h.saturating_record(us * 1000);
        }
        let s = summarise(&h);
        assert_eq!(s.answers, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
        // Seconds behind are told apart too, not clamped.
        h.saturating_record(90_000_000);
        assert!((summarise(&h).max_ms - 90_000.0).abs() < 100.0);
    }
}
