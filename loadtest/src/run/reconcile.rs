//! Telling the rides whose PubAck never came apart: the stream may have stored
//! them (the broker stored the ride, but its answer was lost or late, as when a
//! cluster loses its quorum and regains it) or not. Before the report is
//! printed, the run reads the requests RIDES holds from its own start on —
//! headers only, with an ordered consumer of its own — and looks each unknown
//! ride up by its `Hail-Ride-Id`.

use std::{collections::HashSet, time::Duration};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use hail_events::{headers, subjects};

use super::demand::Demand;

/// Requests stored this long before the run's start are read too (clocks of the
/// generator and the broker may differ a little).
const CLOCK_SLACK: Duration = Duration::from_secs(5);
/// Longest wait for the next message the stream said it holds.
const STALLED: Duration = Duration::from_secs(30);

/// Which of `unknown` (ride indices of this run) RIDES holds, reading the
/// requests stored since `start_ms` (wall clock, ms since the epoch).
pub async fn stored_among(
    js: &jetstream::Context,
    demand: &Demand,
    unknown: &[u64],
    start_ms: u64,
) -> Result<Vec<u64>> {
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: HashSet<u64> = unknown.iter().copied().collect();
    let stream = js
        .get_stream(subjects::RIDES_STREAM)
        .await
        .context("reading RIDES to reconcile the rides whose PubAck never came")?;
    let since_ns = i128::from(start_ms.saturating_sub(CLOCK_SLACK.as_millis() as u64)) * 1_000_000;
    let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(since_ns)
        .context("the run's start time")?;
    let consumer = hail_runtime::ordered_feed::create(
        &stream,
        OrderedConfig {
            filter_subject: subjects::RIDES_REQUESTED_ALL.to_string(),
            headers_only: true,
            deliver_policy: DeliverPolicy::ByStartTime { start_time },
            ..Default::default()
        },
    )
    .await
    .context("creating a reader of RIDES' requests")?;
    let total = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await?;
    let mut found = Vec::new();
    for _ in 0..total {
        let msg = tokio::time::timeout(STALLED, messages.next())
            .await
            .context("RIDES stopped delivering its requests")?
            .context("reading RIDES ended early")??;
        let index = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::RIDE_ID))
            .and_then(|r| demand.index_of(r.as_str()));
        if let Some(i) = index.filter(|i| wanted.contains(i)) {
            found.push(i);
        }
    }
    Ok(found)
}
