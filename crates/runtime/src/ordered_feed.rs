//! Load what an ordered consumer holds, then follow it: the one mechanism
//! behind every in-memory view a service keeps of a stream (drivers' last
//! locations, the driver claims, every ride request).

use anyhow::{Context as _, Result};
use async_nats::jetstream::{
    Message,
    consumer::{Consumer, pull::OrderedConfig},
    stream::{ConsumerError, ConsumerErrorKind, Stream},
};
use futures::StreamExt;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Creates an ordered consumer on `stream`, retried while JetStream does not
/// answer in time (on a cluster, a node just lost or a stream just created).
pub async fn create(
    stream: &Stream,
    config: OrderedConfig,
) -> Result<Consumer<OrderedConfig>, ConsumerError> {
    let timed_out = |e: &ConsumerError| matches!(e.kind(), ConsumerErrorKind::TimedOut);
    crate::provision::retry_timeouts(
        "an ordered consumer",
        || stream.create_consumer(config.clone()),
        timed_out,
    )
    .await
}

/// Calls `apply` for every message `consumer` holds when it was created and
/// returns how many of those it counted (`apply` returns true); then keeps
/// calling `apply` for each new message in a task tracked by `tracker` until
/// `shutdown`. `ended` runs if the feed ends by itself. `what` names the feed
/// in errors and logs.
pub async fn load_then_follow<A, E>(
    consumer: Consumer<OrderedConfig>,
    what: &'static str,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    mut apply: A,
    ended: E,
) -> Result<u64>
where
    A: FnMut(&Message) -> bool + Send + 'static,
    E: FnOnce() + Send + 'static,
{
    let snapshot = consumer.cached_info().num_pending;
    let mut messages = consumer
        .messages()
        .await
        .with_context(|| format!("cannot read {what}"))?;
    let mut counted = 0;
    for _ in 0..snapshot {
        let msg = messages
            .next()
            .await
            .with_context(|| format!("{what} ended while loading"))?
            .with_context(|| format!("reading {what}"))?;
        counted += u64::from(apply(&msg));
    }
    tracker.spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = messages.next() => m,
            };
            match next {
                Some(Ok(msg)) => {
                    apply(&msg);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "reading {what}"),
                None => {
                    ended();
                    break;
                }
            }
        }
    });
    Ok(counted)
}
