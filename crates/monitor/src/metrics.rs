//! The exported series: prometheus-nats-exporter's stream and consumer series
//! ([`crate::nats`]) plus hail's own, named `hail_*`, labelled by
//! `stream_name` and `consumer_name` only: the lag, its age, the Burrow-style
//! status, the stream's retention limits and how much of them a backlog uses.

use std::collections::HashSet;

use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use crate::{
    labels::Origin,
    nats::NatsSeries,
    poll::{ConsumerReading, StreamReading},
    retention,
    status::Status,
};

const CONSUMER_LABELS: [&str; 2] = ["stream_name", "consumer_name"];

/// Every gauge the monitor sets.
pub struct MonitorMetrics {
    nats: NatsSeries,
    stream_max_age: GaugeVec,
    retention_used: GaugeVec,
    lag_messages: IntGaugeVec,
    lag_seconds: GaugeVec,
    status: IntGaugeVec,
    polls_failed: prometheus::IntCounter,
    known: HashSet<(String, String)>,
}

fn float_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn int_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl MonitorMetrics {
    /// Creates and registers every series.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let c = &CONSUMER_LABELS;
        let s = &["stream_name"];
        let polls_failed = prometheus::IntCounter::new(
            "hail_monitor_polls_failed_total",
            "polls of the JetStream API that failed",
        )?;
        registry.register(Box::new(polls_failed.clone()))?;
        Ok(MonitorMetrics {
            nats: NatsSeries::register(registry)?,
            stream_max_age: float_vec(
                registry,
                "hail_stream_max_age_seconds",
                "the stream's max_age: older messages are dropped, read or not (absent when unlimited)",
                s,
            )?,
            retention_used: float_vec(
                registry,
                "hail_consumer_retention_used_ratio",
                "share of the stream's max_age or max_bytes the consumer's backlog takes up; at 1 its oldest unacknowledged message is being dropped",
                c,
            )?,
            lag_messages: int_vec(
                registry,
                "hail_consumer_lag_messages",
                "messages the consumer group still owes: pending plus unacknowledged",
                c,
            )?,
            lag_seconds: float_vec(
                registry,
                "hail_consumer_lag_seconds",
                "age of the oldest message the consumer group has not acknowledged",
                c,
            )?,
            status: int_vec(
                registry,
                "hail_consumer_status",
                "1 for the consumer's current Burrow-style status",
                &["stream_name", "consumer_name", "status"],
            )?,
            polls_failed,
            known: HashSet::new(),
        })
    }

    /// A failed poll.
    pub fn poll_failed(&self) {
        self.polls_failed.inc();
    }

    /// Sets every series from one poll, `origin` being the server and account
    /// that answered; series of consumers that disappeared are removed.
    pub fn update(
        &mut self,
        origin: &Origin,
        streams: &[StreamReading],
        consumers: &[(ConsumerReading, Status)],
    ) {
        self.nats
            .update(origin, streams, consumers.iter().map(|(c, _)| c));
        for s in streams {
            let l = [s.name.as_str()];
            let w = &s.window;
            match w.max_age {
                Some(age) => self
                    .stream_max_age
                    .with_label_values(&l)
                    .set(age.as_secs_f64()),
                None => drop(self.stream_max_age.remove_label_values(&l)),
            }
        }
        let mut seen = HashSet::new();
        for (c, status) in consumers {
            let l = [c.stream.as_str(), c.consumer.as_str()];
            self.lag_messages
                .with_label_values(&l)
                .set(clamp(c.sample.lag()));
            let age = c.oldest_owed.map_or(0.0, |o| o.age.as_secs_f64());
            self.lag_seconds.with_label_values(&l).set(age);
            let ratio = streams
                .iter()
                .find(|s| s.name == c.stream)
                .and_then(|s| retention::used_ratio(&s.window, c.oldest_owed));
            match ratio {
                Some(r) => self.retention_used.with_label_values(&l).set(r),
                None => drop(self.retention_used.remove_label_values(&l)),
            }
            for s in Status::ALL {
                let v = i64::from(s == *status);
                self.status
                    .with_label_values(&[l[0], l[1], s.as_str()])
                    .set(v);
            }
            seen.insert((c.stream.clone(), c.consumer.clone()));
        }
        for (stream, consumer) in self.known.difference(&seen) {
            self.forget(stream, consumer);
        }
        self.known = seen;
    }

    fn forget(&self, stream: &str, consumer: &str) {
        let l = [stream, consumer];
        let _ = self.lag_messages.remove_label_values(&l);
        let _ = self.lag_seconds.remove_label_values(&l);
        let _ = self.retention_used.remove_label_values(&l);
        for s in Status::ALL {
            let _ = self
                .status
                .remove_label_values(&[stream, consumer, s.as_str()]);
        }
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
