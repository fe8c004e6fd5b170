//! The last delivery can also end without the worker seeing it fail: the process
//! crashed or the handler hung past the ack wait every time. JetStream then stops
//! delivering and announces it on a max-deliveries advisory; this task answers by
//! dead-lettering the message, so it is never silently dropped.

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use futures::StreamExt;
use serde::Deserialize;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    dead_letter::{Origin, dead_letter_headers},
    metrics::RuntimeMetrics,
};

/// The part of `io.nats.jetstream.advisory.v1.max_deliver` used here.
#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: i64,
}

/// Who is listening and where dead letters go.
pub struct Watch {
    /// The service (DLQ subject `dlq.<service>`).
    pub service: String,
    /// The stream the durable reads.
    pub stream: String,
    /// The durable.
    pub durable: String,
}

/// Subscribes (queue group per durable, so one instance of the group answers each
/// advisory) and dead-letters every message the server gave up on.
pub async fn watch_max_deliveries(
    js: jetstream::Context,
    watch: Watch,
    metrics: RuntimeMetrics,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<()> {
    let subject = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
        watch.stream, watch.durable
    );
    let group = format!("hail-{}-advisories", watch.durable);
    let mut sub = js
        .client()
        .queue_subscribe(subject.clone(), group)
        .await
        .with_context(|| format!("cannot subscribe to {subject}"))?;
    let stream = js.get_stream(&watch.stream).await?;
    tracker.spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = sub.next() => m,
            };
            let Some(msg) = msg else { break };
            match serde_json::from_slice::<MaxDeliveries>(&msg.payload) {
                Ok(adv) => dead_letter(&js, &stream, &watch, &metrics, adv).await,
                Err(e) => tracing::warn!(error = %e, "unreadable max-deliveries advisory"),
            }
        }
    });
    Ok(())
}

async fn dead_letter(
    js: &jetstream::Context,
    stream: &jetstream::stream::Stream,
    watch: &Watch,
    metrics: &RuntimeMetrics,
    adv: MaxDeliveries,
) {
    let seq = adv.stream_seq;
    let stored = async {
        let original = stream.get_raw_message(seq).await?;
        let origin = Origin {
            service: &watch.service,
            stream: &watch.stream,
            stream_seq: seq,
            subject: original.subject.as_str(),
            delivered: adv.deliveries,
        };
        let reason = format!(
            "delivered {} times without an ack: the handler crashed or timed out every time",
            adv.deliveries
        );
        let (subject, headers) =
            dead_letter_headers(Some(&original.headers), &origin, "max_deliveries", &reason);
        let ack = js
            .publish_with_headers(subject, headers, original.payload)
            .await?;
        ack.await
            .map(|_| ())
            .or_else(crate::worker::already_dead_lettered)?;
        anyhow::Ok(())
    };
    match stored.await {
        Ok(()) => {
            tracing::warn!(
                seq,
                deliveries = adv.deliveries,
                "dead-lettered after max deliveries"
            );
            metrics
                .dead_letters
                .with_label_values(&["max_deliveries"])
                .inc();
        }
        Err(e) => {
            metrics.publish_errors.inc();
            tracing::error!(seq, error = %e, "message exhausted its deliveries and could not be dead-lettered");
        }
    }
}
