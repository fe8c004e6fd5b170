//! Whether RIDES already holds a ride's answer from one service, read back
//! from the stream itself: the slow half of the answer fence ([`crate::fence`]),
//! asked only on a redelivery, a replay, or a first delivery the fence refused.
//!
//! Answers are stored on `rides.<kind>.<city>` beside every other ride's, so
//! the search reads the headers of the service's answer subjects of the ride's
//! city in a bounded range of sequences: from the request (no answer to it can
//! be older) through the fence marker the caller stored first (no first
//! delivery can store an answer after it). Its cost grows with that range, i.e.
//! with how late the redelivery is; first deliveries never pay it.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
use futures::StreamExt;
use hail_events::headers;

/// How long the search waits for the next message before giving up (the
/// caller retries the delivery later).
const STALLED: Duration = Duration::from_secs(10);

/// What the search reads: one ride's answers from one service.
#[derive(Debug, Clone)]
pub struct Search<'a> {
    /// The stream (RIDES).
    pub stream: &'a str,
    /// The service's answer subjects in the ride's city.
    pub subjects: Vec<String>,
    /// The ride.
    pub ride: &'a str,
    /// First sequence an answer can have (the request's).
    pub from: u64,
    /// Last sequence to read (the caller's fence marker).
    pub through: u64,
}

/// The stream sequence of the ride's first answer in the range, if any.
pub async fn find(js: &jetstream::Context, s: &Search<'_>) -> anyhow::Result<Option<u64>> {
    if s.through < s.from || s.subjects.is_empty() {
        return Ok(None);
    }
    let stream = js.get_stream_no_info(s.stream).await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subjects: s.subjects.clone(),
            headers_only: true,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: s.from,
            },
            ..Default::default()
        })
        .await?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(None);
    }
    let mut messages = consumer.messages().await?;
    loop {
        let msg = tokio::time::timeout(STALLED, messages.next())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "reading {} back from {} stalled for {STALLED:?}",
                    s.subjects.join(","),
                    s.stream
                )
            })?
            .ok_or_else(|| anyhow::anyhow!("reading {} ended early", s.stream))??;
        let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let seq = info.stream_sequence;
        if seq > s.through {
            return Ok(None);
        }
        let ride = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::RIDE_ID))
            .map(|v| v.as_str());
        if ride == Some(s.ride) {
            return Ok(Some(seq));
        }
        if info.pending == 0 || seq == s.through {
            return Ok(None);
        }
    }
}
