//! One consistent picture of RIDES, DLQ, the durables and analytics'
//! checkpoint, bounded by a stream sequence, for the audit to judge.
//!
//! Read in this order, so every later read covers what an earlier one implies:
//! each durable's position first, then analytics' checkpoint, then the stream's
//! first and last sequence; then RIDES up to that last sequence, then DLQ. A
//! request at or below a service's ack floor was answered (its output stored)
//! or dead-lettered before the floor was read, so its output is at or below
//! the last sequence and its dead letter is in DLQ; a sequence analytics'
//! checkpoint covers is at or below it too. Messages stored after the snapshot
//! are left out, so a run under load compares like with like.

use std::collections::BTreeMap;

use anyhow::Result;
use async_nats::{HeaderMap, jetstream};
use hail_analytics::{coverage::Coverage, totals::CityTotals};
use hail_events::{EventKind, headers, subjects};
use hail_runtime::{replay, service::Service};

use crate::read_all::{info, read_all, read_through};

/// One RIDES message as the audit sees it (its headers, not its payload).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: u64,
    /// The kind its subject announces; `None` for a subject no event uses.
    pub kind: Option<EventKind>,
    pub subject: String,
    pub ride: Option<String>,
    /// `Hail-Replay-For`: the service this replay of a dead letter is for.
    pub replay_for: Option<String>,
    /// `Hail-Replay-Of`: the stream sequence of the original it stands for.
    pub replay_of: Option<u64>,
}

impl Stored {
    /// A request as the rider published it (not a replay of one).
    pub fn is_original_request(&self) -> bool {
        self.kind == Some(EventKind::Requested) && self.replay_for.is_none()
    }
}

/// One dead letter of a RIDES message.
#[derive(Debug, Clone, PartialEq)]
pub struct Letter {
    /// `Hail-Dlq-Stream-Seq`: the sequence of the message given up on (a
    /// replay's own sequence when a replay was dead-lettered again).
    pub stream_seq: Option<u64>,
    /// `Hail-Dlq-Subject`.
    pub subject: String,
    pub ride: Option<String>,
    /// `Hail-Replay-Of`, when the message given up on was a replay.
    pub replay_of: Option<u64>,
}

impl Letter {
    /// The request this letter stands for: a replay's original, else itself.
    pub fn original_seq(&self) -> Option<u64> {
        self.replay_of.or(self.stream_seq)
    }

    /// Whether the message given up on was a request.
    pub fn is_request(&self) -> bool {
        subjects::matches(subjects::RIDES_REQUESTED_ALL, &self.subject)
    }
}

/// Where a durable stood when the snapshot was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Position {
    /// Every message of its filter at or below this stream sequence is acked.
    pub ack_floor: u64,
    /// The last stream sequence delivered to it.
    pub delivered: u64,
    /// An instance is pulling and nothing is pending or unacknowledged: the
    /// durable has read everything RIDES holds for it. Its ack floor is then
    /// the last message of its filter, and what follows it, not for it, may
    /// age out without loss.
    pub caught_up: bool,
}

/// analytics' last stored checkpoint: which sequences it covers and what it counted.
#[derive(Debug, Clone, Default)]
pub struct Counted {
    pub coverage: Coverage,
    /// Every city's totals added up.
    pub totals: CityTotals,
}

/// Everything the audit judges.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// RIDES' first sequence when the snapshot was taken: anything below was
    /// dropped by its limits (or never stored).
    pub first_seq: u64,
    /// RIDES' last sequence when the snapshot was taken: the bound.
    pub last_seq: u64,
    /// RIDES from `first_seq` (or later, if dropped while reading) to `last_seq`.
    pub messages: Vec<Stored>,
    /// Each durable's position; absent when it does not exist.
    pub positions: BTreeMap<Service, Position>,
    /// Each service's dead letters.
    pub letters: BTreeMap<Service, Vec<Letter>>,
    /// analytics' checkpoint; `None` before its first one.
    pub analytics: Option<Counted>,
}

impl Snapshot {
    /// The first sequence the snapshot still holds (`last_seq + 1` when none):
    /// what is below it, the audit cannot see.
    pub fn first_visible(&self) -> u64 {
        self.messages
            .first()
            .map_or(self.last_seq + 1, |m| m.seq)
            .max(self.first_seq)
    }

    /// The dead letters of `service` (none when it has none).
    pub fn letters_of(&self, service: Service) -> &[Letter] {
        self.letters.get(&service).map_or(&[], Vec::as_slice)
    }
}

/// Takes the snapshot (see the module's doc for the order).
pub async fn take(js: &jetstream::Context) -> Result<Snapshot> {
    let mut snap = Snapshot::default();
    let Ok(rides) = js.get_stream(subjects::RIDES_STREAM).await else {
        return Ok(snap); // nothing published yet
    };
    for service in Service::ALL {
        if let Ok(c) = rides.consumer_info(service.durable()).await {
            snap.positions.insert(
                service,
                Position {
                    ack_floor: c.ack_floor.stream_sequence,
                    delivered: c.delivered.stream_sequence,
                    caught_up: c.num_pending == 0 && c.num_ack_pending == 0 && c.num_waiting > 0,
                },
            );
        }
    }
    snap.analytics = analytics_checkpoint(js).await?;
    let state = rides.get_info().await?.state;
    (snap.first_seq, snap.last_seq) = (state.first_sequence, state.last_sequence);
    snap.messages = read_through(&rides, subjects::RIDES_ALL, snap.last_seq, stored).await?;
    if let Ok(dlq) = js.get_stream(subjects::DLQ_STREAM).await {
        for service in Service::ALL {
            let letters = read_all(&dlq, &subjects::dlq(service.name()), true, |msg| {
                Ok(letter(msg.headers.as_ref()))
            })
            .await?;
            snap.letters.insert(service, letters);
        }
    }
    Ok(snap)
}

/// analytics' last checkpoint; `None` when it never stored one.
async fn analytics_checkpoint(js: &jetstream::Context) -> Result<Option<Counted>> {
    if js
        .get_key_value(hail_analytics::checkpoint::BUCKET)
        .await
        .is_err()
    {
        return Ok(None); // analytics never ran
    }
    let stored = hail_analytics::store::read(js, std::time::Duration::from_secs(5)).await?;
    Ok(stored.map(|(cp, _)| Counted {
        totals: cp.state.all_cities(),
        coverage: cp.state.coverage,
    }))
}

fn stored(msg: &jetstream::Message) -> Result<Stored> {
    let h = msg.headers.as_ref();
    Ok(Stored {
        seq: info(msg)?.stream_sequence,
        kind: EventKind::of_subject(&msg.subject).ok(),
        subject: msg.subject.to_string(),
        ride: header(h, headers::RIDE_ID),
        replay_for: replay::target(h).map(String::from),
        replay_of: replay::original_seq(h),
    })
}

fn letter(h: Option<&HeaderMap>) -> Letter {
    Letter {
        stream_seq: header(h, headers::dlq::STREAM_SEQ).and_then(|s| s.parse().ok()),
        subject: header(h, headers::dlq::SUBJECT).unwrap_or_default(),
        ride: header(h, headers::RIDE_ID),
        replay_of: replay::original_seq(h),
    }
}

fn header(h: Option<&HeaderMap>, name: &str) -> Option<String> {
    h?.get(name).map(|v| v.to_string())
}
