//! Every ride request on RIDES, for state that must not depend on which
//! instance of a consumer group handled which request.
//!
//! A durable shares requests out among the instances of its group, so state
//! built from one instance's deliveries sees 1/N of them, and none of those
//! before a restart. pricing's demand and fraud's history need them all. So
//! such a service also reads every `rides.requested.>` with an ordered
//! consumer of its own and applies each one to its state:
//!
//! - at start it reads back from `lookback` before the oldest message its
//!   durable still owes (before now, when it owes nothing or has never run), so
//!   the state is whole again before the durable is bound;
//! - then it follows live, and [`FeedPosition::reached`] lets the handler wait
//!   until the feed has read a request before it handles it, so the state it
//!   reads holds that request and every one stored before it (and perhaps a
//!   few stored after: state must be keyed or ordered by request, not by
//!   arrival).
//!
//! Replays ([`crate::replay`]) are copies of a request already read and are
//! skipped; so are undecodable messages (the durable dead-letters them).

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    context::{ConsumerInfoError, ConsumerInfoErrorKind},
    stream::Stream,
};
use hail_events::{RideRequested, codec, subjects};

use crate::{ordered_feed, replay};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// How long a handler waits for the feed to reach its request before it goes
/// on with the state as it is (the feed is that far behind only when the
/// broker or this process is in trouble; count the timeouts).
pub const HANDLER_WAIT: Duration = Duration::from_secs(2);

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

    /// What a handler does before judging the request at `seq`: waits up to
    /// [`HANDLER_WAIT`] for the feed to have read it (so every request before it,
    /// whichever instance handled it, is in the shared state), and counts on
    /// `timed_out` when it has not; the handler then goes on with what it has.
    pub async fn wait_for_handler(&self, seq: u64, timed_out: &prometheus::IntCounter) {
        if !self.reached(seq, HANDLER_WAIT).await {
            timed_out.inc();
        }
    }
}

/// Reads RIDES back for `durable` (see the module docs), calling `apply` with
/// each request and the time the stream stored it, then follows it in a task
/// tracked by `tracker` until `shutdown`. Returns the feed's position and how
/// many requests the read-back applied.
pub async fn follow<F>(
    js: &jetstream::Context,
    durable: &str,
    lookback: Duration,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    apply: F,
) -> Result<(FeedPosition, u64)>
where
    F: FnMut(&RideRequested, OffsetDateTime) + Send + 'static,
{
    let stream = js
        .get_stream(subjects::RIDES_STREAM)
        .await
        .context("cannot open the RIDES stream")?;
    let state = stream
        .get_info()
        .await
        .context("cannot read the state of RIDES")?
        .state;
    let start = start_time(&stream, durable, state.first_sequence).await? - lookback;
    let config = OrderedConfig {
        filter_subject: subjects::RIDES_REQUESTED_ALL.into(),
        deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
        ..Default::default()
    };
    let consumer = crate::ordered_feed::create(&stream, config)
        .await
        .context("cannot follow the ride requests on RIDES")?;
    let (position, rx) = watch::channel(0);
    let position = Arc::new(position);
    let mut feed = Feed {
        apply,
        position: position.clone(),
    };
    let at_end = position.clone();
    let applied = ordered_feed::load_then_follow(
        consumer,
        "the ride requests on RIDES",
        tracker,
        shutdown,
        move |msg| feed.take(msg),
        move || {
            tracing::error!("ride request feed ended; handlers no longer wait for it");
            passed(&at_end, u64::MAX);
        },
    )
    .await?;
    // Everything stored before the consumer was made has now been read, or is
    // older than `lookback`: no handler needs to wait for it.
    passed(&position, state.last_sequence);
    Ok((FeedPosition(rx), applied))
}

/// Moves `position` to `seq` unless it is already past it.
fn passed(position: &watch::Sender<u64>, seq: u64) {
    position.send_if_modified(|read| {
        let moved = seq > *read;
        *read = (*read).max(seq);
        moved
    });
}

struct Feed<F> {
    apply: F,
    position: Arc<watch::Sender<u64>>,
}

impl<F: FnMut(&RideRequested, OffsetDateTime)> Feed<F> {
    /// Applies one message unless it is a replay or not a request, then moves
    /// the position past it; whether it was applied.
    fn take(&mut self, msg: &jetstream::Message) -> bool {
        let Ok(info) = msg.info() else {
            tracing::warn!("ride request feed message without metadata; skipped");
            return false;
        };
        let (seq, stored) = (info.stream_sequence, info.published);
        let applied = !replay::is_replay(msg.headers.as_ref())
            && match codec::decode::<RideRequested>(&msg.payload) {
                Ok(req) => {
                    (self.apply)(&req, stored);
                    true
                }
                Err(e) => {
                    tracing::debug!(seq, error = %e, "request feed skips an undecodable message");
                    false
                }
            };
        passed(&self.position, seq);
        applied
    }
}

/// When the oldest message `durable` still owes was stored (the stream's
/// oldest, if that one has aged out), or now when it owes nothing or has
/// never run.
async fn start_time(stream: &Stream, durable: &str, first_seq: u64) -> Result<OffsetDateTime> {
    let now = OffsetDateTime::now_utc();
    // Retried while JetStream does not answer in time: on a cluster whose
    // seed or leader is down, the first reads can time out.
    let timed_out = |e: &ConsumerInfoError| e.kind() == ConsumerInfoErrorKind::TimedOut;
    let read = || stream.consumer_info(durable);
    let info = match crate::provision::retry_timeouts("a consumer's info", read, timed_out).await {
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
