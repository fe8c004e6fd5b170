//! Demand from every request on RIDES, not only the ones this instance quotes.
//!
//! The durable `pricing` shares requests out among the instances of the
//! consumer group, so an instance that counted only its own would see 1/N of
//! the demand and understate the surge; after a restart it would see none. So
//! each instance also reads every `rides.requested.>` with an ordered consumer
//! of its own and records each one ([`Pricer::record`]):
//!
//! - at start it reads back from one demand window before the oldest request
//!   the group has not acknowledged (or before now, on a first start), so the
//!   window is whole again before the durable is bound;
//! - then it follows live. The handler waits (briefly) until the feed has
//!   passed a request's stream sequence before quoting it, so a quote counts
//!   its own request and every one stored before it.
//!
//! Replays (`Hail-Replay-Of`) are copies of a request already counted and are
//! skipped; so are undecodable messages (the durable dead-letters them). A
//! backlog older than the window is quoted with what the window still holds:
//! the feed is at the head of the stream, demand is counted by request time and
//! each cell keeps one window of buckets.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    context::ConsumerInfoErrorKind,
    stream::Stream,
};
use futures::StreamExt;
use hail_events::{RideRequested, codec, headers, subjects};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{metrics::PricingMetrics, pricer::Pricer};

/// How far the feed has read RIDES.
#[derive(Debug, Clone)]
pub struct FeedPosition(watch::Receiver<u64>);

impl FeedPosition {
    /// Waits up to `timeout` until the feed has read stream sequence `seq`;
    /// false when it has not by then.
    pub async fn reached(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.0.clone();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|read| *read >= seq)).await,
            Ok(Ok(_))
        )
    }
}

/// The feed's ends: what it records into and what it tells.
struct Sink {
    pricer: Arc<Pricer>,
    metrics: PricingMetrics,
    position: watch::Sender<u64>,
}

impl Sink {
    /// Records one message of the feed, then moves the position past it.
    fn apply(&self, msg: &jetstream::Message) {
        let Ok(info) = msg.info() else {
            tracing::warn!("demand feed message without metadata; skipped");
            return;
        };
        let seq = info.stream_sequence;
        let replay = msg
            .headers
            .as_ref()
            .is_some_and(|h| h.get(headers::REPLAY_OF).is_some());
        if !replay {
            match codec::decode::<RideRequested>(&msg.payload) {
                Ok(req) => self.record(&req, event_time_ms(&req, info.published)),
                Err(e) => {
                    tracing::debug!(seq, error = %e, "demand feed skips an undecodable request")
                }
            }
        }
        self.position.send_if_modified(|read| {
            let moved = seq > *read;
            *read = (*read).max(seq);
            moved
        });
    }

    fn record(&self, req: &RideRequested, event_ms: u64) {
        let r = self.pricer.record(req, event_ms);
        if r.counted {
            self.metrics.demand_recorded.inc();
        } else {
            self.metrics
                .demand_dropped
                .with_label_values(&[req.city.as_str()])
                .inc();
        }
        self.metrics
            .demand_cells
            .set(i64::try_from(r.cells).unwrap_or(i64::MAX));
    }
}

/// When the request happened: its own time, but never after the stream stored
/// it, so a wrong or hostile client clock cannot push the demand window ahead.
pub fn event_time_ms(req: &RideRequested, stored: OffsetDateTime) -> u64 {
    let stored = u64::try_from(stored.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    req.requested_at_ms.min(stored)
}

/// Rebuilds the demand window from RIDES, then follows it in a task tracked by
/// `tracker` until `shutdown`. Returns the feed's position and how many
/// requests the rebuild read.
pub async fn follow(
    js: &jetstream::Context,
    durable: &str,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    pricer: Arc<Pricer>,
    metrics: PricingMetrics,
) -> Result<(FeedPosition, u64)> {
    let stream = js
        .get_stream(subjects::RIDES_STREAM)
        .await
        .context("cannot open the RIDES stream")?;
    let state = stream
        .get_info()
        .await
        .context("cannot read the state of RIDES")?
        .state;
    let window = pricer.settings().demand_window;
    let start = start_time(&stream, durable, state.first_sequence).await? - window;
    // Everything stored up to here is either read by the rebuild below or
    // older than the window: the handler need not wait for it.
    let head = state.last_sequence;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subjects::RIDES_REQUESTED_ALL.into(),
            deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
            ..Default::default()
        })
        .await
        .context("cannot follow the ride requests on RIDES")?;
    let backlog = consumer.cached_info().num_pending;
    let mut messages = consumer
        .messages()
        .await
        .context("cannot read the ride requests on RIDES")?;
    let (position, rx) = watch::channel(0);
    let sink = Sink {
        pricer,
        metrics,
        position,
    };
    for _ in 0..backlog {
        let msg = messages
            .next()
            .await
            .context("RIDES ended while rebuilding demand")?
            .context("reading RIDES to rebuild demand")?;
        sink.apply(&msg);
    }
    sink.position.send_modify(|read| *read = (*read).max(head));
    tracker.spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = messages.next() => m,
            };
            match next {
                Some(Ok(msg)) => sink.apply(&msg),
                Some(Err(e)) => tracing::warn!(error = %e, "reading the demand feed"),
                None => {
                    tracing::error!("demand feed ended; quotes no longer wait for it");
                    sink.position.send_replace(u64::MAX);
                    break;
                }
            }
        }
    });
    Ok((FeedPosition(rx), backlog))
}

/// When the oldest message the group still owes was stored (the stream's
/// oldest, if that one has aged out), or now when it owes nothing or has never run.
async fn start_time(stream: &Stream, durable: &str, first_seq: u64) -> Result<OffsetDateTime> {
    let now = OffsetDateTime::now_utc();
    let info = match stream.consumer_info(durable).await {
        Ok(info) => info,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => return Ok(now),
        Err(e) => return Err(e).with_context(|| format!("cannot read consumer {durable}")),
    };
    if info.num_pending == 0 && info.num_ack_pending == 0 {
        return Ok(now);
    }
    let first_owed = (info.ack_floor.stream_sequence + 1).max(first_seq);
    Ok(stream
        .get_raw_message(first_owed)
        .await
        .map_or(now, |m| m.time.min(now)))
}
