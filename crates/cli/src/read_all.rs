//! Reading back what a stream holds on one filter, in stream order, with an
//! ordered consumer of the reader's own: what `hail audit` and `hail dlq` read.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{self, consumer::pull::OrderedConfig, stream::Stream};
use futures::StreamExt;

/// How long [`read_through`] waits for the next message before asking the
/// stream whether any is still to come.
const IDLE: Duration = Duration::from_secs(1);
/// How long [`read_through`] waits in all for a message the stream says it holds.
const STALLED: Duration = Duration::from_secs(30);

/// Every message of `stream` on `filter` when called (none stored later), each
/// turned into a `T` by `each`. `headers_only` leaves the payloads out.
pub async fn read_all<T>(
    stream: &Stream,
    filter: &str,
    headers_only: bool,
    mut each: impl FnMut(&jetstream::Message) -> Result<T>,
) -> Result<Vec<T>> {
    let name = &stream.cached_info().config.name;
    // Retried while JetStream does not answer in time: on a cluster, right
    // after a node's loss or restart.
    let consumer = hail_runtime::ordered_feed::create(
        stream,
        OrderedConfig {
            filter_subject: filter.to_string(),
            headers_only,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("cannot read {filter} from the {name} stream"))?;
    let total = consumer.cached_info().num_pending as usize;
    let mut out = Vec::with_capacity(total);
    let mut messages = consumer.messages().await?;
    while out.len() < total {
        let msg = messages.next().await.context("reading ended early")??;
        out.push(each(&msg)?);
    }
    Ok(out)
}

/// The headers of every message of `stream` on `filter` up to the stream
/// sequence `last` (inclusive), each turned into a `T` by `each`: a bounded
/// read that ignores what is stored later, and skips what the stream's limits
/// drop while it reads.
pub async fn read_through<T>(
    stream: &Stream,
    filter: &str,
    last: u64,
    mut each: impl FnMut(&jetstream::Message) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    if last == 0 {
        return Ok(out);
    }
    let name = &stream.cached_info().config.name;
    // Retried while JetStream does not answer in time: on a cluster, right
    // after a node's loss or restart.
    let consumer = hail_runtime::ordered_feed::create(
        stream,
        OrderedConfig {
            filter_subject: filter.to_string(),
            headers_only: true,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("cannot read {filter} from the {name} stream"))?;
    // Messages on the filter still to come after the last one read.
    let mut pending = consumer.cached_info().num_pending;
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await?;
    let mut seen = 0;
    let mut waited = Duration::ZERO;
    loop {
        match tokio::time::timeout(IDLE, messages.next()).await {
            Ok(next) => {
                let msg = next.context("reading ended early")??;
                let meta = info(&msg)?;
                let seq = meta.stream_sequence;
                pending = meta.pending;
                if seq > last {
                    break;
                }
                out.push(each(&msg)?);
                seen = seq;
                waited = Duration::ZERO;
                if seq == last {
                    break;
                }
            }
            Err(_) => {
                // Nothing came: done if nothing more is on the filter, or the
                // stream holds nothing more up to `last` (its limits dropped it).
                if pending == 0 {
                    break;
                }
                let state = stream.get_info().await?.state;
                if state.first_sequence > last || state.last_sequence <= seen {
                    break;
                }
                waited += IDLE;
                if waited >= STALLED {
                    bail!("reading {filter} from {name} stalled at sequence {seen} of {last}");
                }
            }
        }
    }
    Ok(out)
}

/// The stream metadata of a message read by [`read_all`] or [`read_through`].
pub fn info(msg: &jetstream::Message) -> Result<jetstream::message::Info<'_>> {
    msg.info().map_err(|e| anyhow::anyhow!("{e}"))
}
