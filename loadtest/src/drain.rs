//! Knowing when the pipeline is done: every durable has nothing pending and
//! nothing awaiting an ack.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream;
use hail_events::subjects;
use tokio::time::Instant;

/// One durable's backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// Durable name.
    pub durable: String,
    /// Messages not yet delivered.
    pub num_pending: u64,
    /// Messages delivered and not yet acked.
    pub num_ack_pending: usize,
}

impl Backlog {
    fn is_drained(&self) -> bool {
        self.num_pending == 0 && self.num_ack_pending == 0
    }
}

/// The backlog of each durable on RIDES, in the order given.
pub async fn backlogs(js: &jetstream::Context, durables: &[&str]) -> Result<Vec<Backlog>> {
    let stream = js
        .get_stream_no_info(subjects::RIDES_STREAM)
        .await
        .context("looking up stream RIDES")?;
    let mut out = Vec::with_capacity(durables.len());
    for durable in durables {
        let info = stream
            .consumer_info(durable)
            .await
            .with_context(|| format!("reading consumer info of {durable}"))?;
        out.push(Backlog {
            durable: durable.to_string(),
            num_pending: info.num_pending,
            num_ack_pending: info.num_ack_pending,
        });
    }
    Ok(out)
}

/// Polls every `every` until all `durables` are drained at once and returns when
/// that was seen. Call it once every input has been stored; list the consumers
/// that read others' outputs last (see [`Service::ALL`](hail_runtime::service::Service::ALL)). After
/// `timeout` the error names each durable that did not drain and its backlog.
pub async fn wait_drained(
    js: &jetstream::Context,
    durables: &[&str],
    every: Duration,
    timeout: Duration,
) -> Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = backlogs(js, durables).await?;
        let now = Instant::now();
        let busy: Vec<String> = seen
            .iter()
            .filter(|b| !b.is_drained())
            .map(|b| {
                format!(
                    "{} (num_pending {}, num_ack_pending {})",
                    b.durable, b.num_pending, b.num_ack_pending
                )
            })
            .collect();
        if busy.is_empty() {
            return Ok(now);
        }
        if now >= deadline {
            bail!(
                "consumer {} did not drain within {timeout:?}",
                busy.join(", consumer ")
            );
        }
        tokio::time::sleep(every).await;
    }
}
