//! The series of prometheus-nats-exporter's JetStream collector, as it names
//! them when run with `-jsz=consumers -prefix=nats` (`-jsz=all` gives the same
//! stream and consumer series): same names, same labels ([`crate::labels`]),
//! so dashboards and rules written for the exporter work on hail-monitor.
//!
//! Only the stream and consumer series: the exporter's server and account
//! totals, and the source and mirror lag, are left to the exporter itself.

use std::{collections::HashMap, hash::Hash};

use prometheus::{GaugeVec, Opts, Registry};

use crate::{
    labels::{self, Origin},
    poll::{ConsumerReading, StreamReading},
};

/// A series: name, help, and its value for one item (None: no sample).
type Series<T> = (&'static str, &'static str, fn(&T) -> Option<f64>);

/// Series per stream, with the exporter's help texts.
const STREAM_SERIES: [Series<StreamReading>; 8] = [
    (
        "nats_stream_total_messages",
        "Total number of messages from a stream",
        |s| Some(s.window.messages as f64),
    ),
    (
        "nats_stream_total_bytes",
        "Total stored bytes from a stream",
        |s| Some(s.window.bytes as f64),
    ),
    (
        "nats_stream_first_seq",
        "First sequence from a stream",
        |s| Some(s.window.first_seq as f64),
    ),
    ("nats_stream_last_seq", "Last sequence from a stream", |s| {
        Some(s.window.last_seq as f64)
    }),
    (
        "nats_stream_consumer_count",
        "Total number of consumers from a stream",
        |s| Some(s.consumer_count as f64),
    ),
    (
        "nats_stream_subject_count",
        "Total number of subjects in a stream",
        |s| Some(s.subject_count as f64),
    ),
    (
        "nats_stream_limit_bytes",
        "The maximum configured storage limit (in bytes) for a JetStream stream. A value of -1 indicates no limit.",
        |s| Some(s.limit_bytes as f64),
    ),
    (
        "nats_stream_limit_messages",
        "The maximum number of messages allowed in a JetStream stream as per its configuration. A value of -1 indicates no limit.",
        |s| Some(s.limit_messages as f64),
    ),
];

/// Series per consumer, with the exporter's help texts.
const CONSUMER_SERIES: [Series<ConsumerReading>; 10] = [
    (
        "nats_consumer_delivered_consumer_seq",
        "Latest sequence number of a stream consumer",
        |c| Some(c.delivered_consumer_seq as f64),
    ),
    (
        "nats_consumer_delivered_stream_seq",
        "Latest sequence number of a stream",
        |c| Some(c.sample.delivered_seq as f64),
    ),
    (
        "nats_consumer_ack_floor_consumer_seq",
        "Number of ack floor consumer seq from a consumer",
        |c| Some(c.ack_floor_consumer_seq as f64),
    ),
    (
        "nats_consumer_ack_floor_stream_seq",
        "Number of ack floor stream seq from a consumer",
        |c| Some(c.sample.ack_floor_seq as f64),
    ),
    (
        "nats_consumer_num_ack_pending",
        "Number of pending acks from a consumer",
        |c| Some(c.sample.ack_pending as f64),
    ),
    (
        "nats_consumer_num_redelivered",
        "Number of redelivered messages from a consumer",
        |c| Some(c.redelivered as f64),
    ),
    (
        "nats_consumer_num_waiting",
        "Number of inflight fetch requests from a pull consumer",
        |c| Some(c.sample.waiting as f64),
    ),
    (
        "nats_consumer_num_pending",
        "Number of pending messages from a consumer",
        |c| Some(c.sample.pending as f64),
    ),
    (
        "nats_consumer_last_delivery_seconds",
        "Seconds since last message delivery to consumer",
        |c| c.since_delivery.map(|d| d.as_secs_f64()),
    ),
    (
        "nats_consumer_last_ack_seconds",
        "Seconds since last ack from consumer",
        |c| c.since_ack.map(|d| d.as_secs_f64()),
    ),
];

/// Every `nats_*` series name, for docs and tests.
pub fn names() -> impl Iterator<Item = &'static str> {
    let streams = STREAM_SERIES.iter().map(|s| s.0);
    streams.chain(CONSUMER_SERIES.iter().map(|s| s.0))
}

/// The gauges, and the label values each stream and consumer was last set
/// with, so a row is removed when it is gone or its labels change (a new
/// leader, a reconnect to another server).
pub struct NatsSeries {
    streams: Vec<GaugeVec>,
    consumers: Vec<GaugeVec>,
    stream_rows: HashMap<String, Vec<String>>,
    consumer_rows: HashMap<(String, String), Vec<String>>,
}

fn gauges<T>(
    registry: &Registry,
    series: &[Series<T>],
    labels: &[&str],
) -> prometheus::Result<Vec<GaugeVec>> {
    series
        .iter()
        .map(|(name, help, _)| {
            let g = GaugeVec::new(Opts::new(*name, *help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        })
        .collect()
}

impl NatsSeries {
    /// Creates and registers every series.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        Ok(NatsSeries {
            streams: gauges(registry, &STREAM_SERIES, &labels::STREAM)?,
            consumers: gauges(registry, &CONSUMER_SERIES, &labels::CONSUMER)?,
            stream_rows: HashMap::new(),
            consumer_rows: HashMap::new(),
        })
    }

    /// Sets every series from one poll; rows of what is gone are removed.
    pub fn update<'a>(
        &mut self,
        origin: &Origin,
        streams: &[StreamReading],
        consumers: impl Iterator<Item = &'a ConsumerReading>,
    ) {
        let mut stream_rows = HashMap::new();
        for s in streams {
            let values = origin.stream(s);
            set_row(&self.streams, &STREAM_SERIES, s, &values);
            stream_rows.insert(s.name.clone(), values);
        }
        let mut consumer_rows = HashMap::new();
        for c in consumers {
            let Some(s) = streams.iter().find(|s| s.name == c.stream) else {
                continue;
            };
            let values = origin.consumer(s, c);
            set_row(&self.consumers, &CONSUMER_SERIES, c, &values);
            consumer_rows.insert((c.stream.clone(), c.consumer.clone()), values);
        }
        retire(&self.streams, &mut self.stream_rows, stream_rows);
        retire(&self.consumers, &mut self.consumer_rows, consumer_rows);
    }
}

fn set_row<T>(gauges: &[GaugeVec], series: &[Series<T>], item: &T, values: &[String]) {
    for (g, (_, _, value)) in gauges.iter().zip(series) {
        match value(item) {
            Some(v) => g.with_label_values(values).set(v),
            None => drop(g.remove_label_values(values)),
        }
    }
}

/// Removes the rows of `old` that `new` no longer has with the same labels.
fn retire<K: Eq + Hash>(
    gauges: &[GaugeVec],
    old: &mut HashMap<K, Vec<String>>,
    new: HashMap<K, Vec<String>>,
) {
    for (key, values) in old.drain() {
        if new.get(&key) != Some(&values) {
            for g in gauges {
                let _ = g.remove_label_values(&values);
            }
        }
    }
    *old = new;
}
