//! One reading of every stream and durable consumer, from the JetStream API.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer};
use futures::TryStreamExt;

use crate::labels::Placement;
use crate::retention::{OldestOwed, StreamWindow};
use crate::status::Sample;

/// A stream's state and limits.
#[derive(Debug, Clone)]
pub struct StreamReading {
    /// Stream name.
    pub name: String,
    /// Sequences, size and limits.
    pub window: StreamWindow,
    /// Consumers of the stream, durable or not.
    pub consumer_count: u64,
    /// Distinct subjects stored.
    pub subject_count: u64,
    /// `max_bytes` as configured: -1 when unlimited.
    pub limit_bytes: i64,
    /// `max_msgs` as configured: -1 when unlimited.
    pub limit_messages: i64,
    /// Its leader and RAFT group.
    pub placement: Placement,
}

/// A consumer's state.
#[derive(Debug, Clone)]
pub struct ConsumerReading {
    /// Its stream.
    pub stream: String,
    /// Durable name.
    pub consumer: String,
    /// The numbers the status is computed from.
    pub sample: Sample,
    /// Last consumer sequence delivered.
    pub delivered_consumer_seq: u64,
    /// Consumer sequence at or below which all is acknowledged.
    pub ack_floor_consumer_seq: u64,
    /// Messages redelivered at least once and not yet acked.
    pub redelivered: u64,
    /// Time since the last delivery (None before the first).
    pub since_delivery: Option<Duration>,
    /// Time since the ack floor last moved (None before the first ack).
    pub since_ack: Option<Duration>,
    /// The oldest message not yet acknowledged (None when there is no lag).
    pub oldest_owed: Option<OldestOwed>,
    /// Its leader and RAFT group.
    pub placement: Placement,
    /// Its description ("" when none).
    pub description: String,
}

/// Reads every stream in `streams` and each of its consumers.
pub async fn read(
    js: &jetstream::Context,
    streams: &[String],
) -> Result<(Vec<StreamReading>, Vec<ConsumerReading>)> {
    let mut stream_readings = Vec::new();
    let mut consumer_readings = Vec::new();
    for name in streams {
        let Ok(mut stream) = js.get_stream(name).await else {
            continue; // not created yet: no service has started
        };
        let info = stream
            .info()
            .await
            .with_context(|| format!("stream info of {name}"))?;
        stream_readings.push(StreamReading {
            name: name.clone(),
            window: StreamWindow {
                first_seq: info.state.first_sequence,
                last_seq: info.state.last_sequence,
                messages: info.state.messages,
                bytes: info.state.bytes,
                max_age: Some(info.config.max_age).filter(|d| !d.is_zero()),
                max_bytes: u64::try_from(info.config.max_bytes).ok().filter(|b| *b > 0),
            },
            consumer_count: info.state.consumer_count as u64,
            subject_count: info.state.subjects_count,
            limit_bytes: info.config.max_bytes,
            limit_messages: info.config.max_messages,
            placement: Placement::from_cluster(info.cluster.as_ref()),
        });
        let consumers: Vec<consumer::Info> = stream
            .consumers()
            .try_collect()
            .await
            .with_context(|| format!("consumers of {name}"))?;
        for c in consumers
            .into_iter()
            .filter(|c| c.config.durable_name.is_some())
        {
            consumer_readings.push(reading(&stream, c).await);
        }
    }
    Ok((stream_readings, consumer_readings))
}

async fn reading(stream: &jetstream::stream::Stream, c: consumer::Info) -> ConsumerReading {
    let sample = Sample {
        pending: c.num_pending,
        ack_pending: c.num_ack_pending as u64,
        waiting: c.num_waiting as u64,
        delivered_seq: c.delivered.stream_sequence,
        ack_floor_seq: c.ack_floor.stream_sequence,
        max_ack_pending: u64::try_from(c.config.max_ack_pending).unwrap_or(0),
    };
    let oldest_owed = if sample.lag() > 0 {
        oldest_unacked(stream, &c).await
    } else {
        None
    };
    let now = time::OffsetDateTime::now_utc();
    ConsumerReading {
        delivered_consumer_seq: c.delivered.consumer_sequence,
        ack_floor_consumer_seq: c.ack_floor.consumer_sequence,
        redelivered: c.num_redelivered as u64,
        since_delivery: c.delivered.last_active.map(|t| elapsed(now, t)),
        since_ack: c.ack_floor.last_active.map(|t| elapsed(now, t)),
        oldest_owed,
        placement: Placement::from_cluster(c.cluster.as_ref()),
        description: c.config.description.clone().unwrap_or_default(),
        stream: c.stream_name,
        consumer: c.name,
        sample,
    }
}

/// Time from `then` to `now`, 0 when the clocks disagree.
fn elapsed(now: time::OffsetDateTime, then: time::OffsetDateTime) -> Duration {
    Duration::from_secs_f64((now - then).as_seconds_f64().max(0.0))
}

/// The first message after the ack floor that the consumer's filters select:
/// every message before it is acknowledged, so it is the oldest one the
/// consumer group still owes.
async fn oldest_unacked(
    stream: &jetstream::stream::Stream,
    c: &consumer::Info,
) -> Option<OldestOwed> {
    let mut filters = c.config.filter_subjects.clone();
    if !c.config.filter_subject.is_empty() {
        filters.push(c.config.filter_subject.clone());
    }
    if filters.is_empty() {
        filters.push(">".into());
    }
    let from = c.ack_floor.stream_sequence + 1;
    let mut oldest: Option<(u64, time::OffsetDateTime)> = None;
    for filter in filters {
        let msg = stream
            .raw_message_builder()
            .sequence(from)
            .next_by_subject(filter)
            .send()
            .await;
        let Ok(m) = msg else {
            continue; // nothing of this filter after the ack floor
        };
        if oldest.is_none_or(|(seq, _)| m.sequence < seq) {
            oldest = Some((m.sequence, m.time));
        }
    }
    let (seq, stored) = oldest?;
    Some(OldestOwed {
        seq,
        age: elapsed(time::OffsetDateTime::now_utc(), stored),
    })
}
