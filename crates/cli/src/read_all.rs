//! Reading back all a stream holds on one filter, in stream order, with an
//! ordered consumer of the reader's own: what `hail audit` and `hail dlq` read.

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer::pull::OrderedConfig, stream::Stream};
use futures::StreamExt;

/// Every message of `stream` on `filter` when called (none stored later), each
/// turned into a `T` by `each`. `headers_only` leaves the payloads out.
pub async fn read_all<T>(
    stream: &Stream,
    filter: &str,
    headers_only: bool,
    mut each: impl FnMut(&jetstream::Message) -> Result<T>,
) -> Result<Vec<T>> {
    let name = &stream.cached_info().config.name;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: filter.to_string(),
            headers_only,
            ..Default::default()
        })
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

/// The stream metadata of a message read by [`read_all`].
pub fn info(msg: &jetstream::Message) -> Result<jetstream::message::Info<'_>> {
    msg.info().map_err(|e| anyhow::anyhow!("{e}"))
}
