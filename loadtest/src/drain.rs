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

/// Keeps, for each durable, the first poll of its current drained streak.
fn note_streaks(since: &mut [Option<Instant>], seen: &[Backlog], now: Instant) {
    for (b, since) in seen.iter().zip(since.iter_mut()) {
        if b.is_drained() {
            since.get_or_insert(now);
        } else {
            *since = None;
        }
    }
}

/// When a pipeline was seen drained.
#[derive(Debug, Clone)]
pub struct Drained {
    /// The poll that saw every durable drained at once.
    pub all: Instant,
    /// Each durable, in the order given, and the first poll of the streak in
    /// which it stayed drained until `all`: the durable that fell furthest
    /// behind is the one with the latest time.
    pub each: Vec<(String, Instant)>,
}

/// Polls every `every` until all `durables` are drained at once and returns when
/// that was seen, and when each was. Call it once every input has been stored;
/// list the consumers that read others' outputs last (see
/// [`Service::ALL`](hail_runtime::service::Service::ALL)). After `timeout` the
/// error names each durable that did not drain and its backlog.
pub async fn wait_drained(
    js: &jetstream::Context,
    durables: &[&str],
    every: Duration,
    timeout: Duration,
) -> Result<Drained> {
    let deadline = Instant::now() + timeout;
    let mut since: Vec<Option<Instant>> = vec![None; durables.len()];
    loop {
        let seen = backlogs(js, durables).await?;
        let now = Instant::now();
        note_streaks(&mut since, &seen, now);
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
            let each = seen
                .into_iter()
                .zip(since)
                .map(|(b, since)| (b.durable, since.unwrap_or(now)))
                .collect();
            return Ok(Drained { all: now, each });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(num_pending: u64, num_ack_pending: usize) -> Backlog {
        Backlog {
            durable: "d".into(),
            num_pending,
            num_ack_pending,
        }
    }

    #[test]
    fn a_streak_starts_at_its_first_drained_poll_and_ends_when_work_comes_back() {
        let t0 = Instant::now();
        let (t1, t2, t3) = (
            t0 + Duration::from_secs(1),
            t0 + Duration::from_secs(2),
            t0 + Duration::from_secs(3),
        );
        let mut since = vec![None, None];
        note_streaks(&mut since, &[backlog(0, 0), backlog(5, 0)], t0);
        assert_eq!(since, [Some(t0), None]);
        note_streaks(&mut since, &[backlog(0, 0), backlog(0, 0)], t1);
        assert_eq!(since, [Some(t0), Some(t1)]);
        // The second reads others' outputs: more came after it was drained.
        note_streaks(&mut since, &[backlog(0, 0), backlog(0, 3)], t2);
        assert_eq!(since, [Some(t0), None]);
        note_streaks(&mut since, &[backlog(0, 0), backlog(0, 0)], t3);
        assert_eq!(since, [Some(t0), Some(t3)]);
    }
}
