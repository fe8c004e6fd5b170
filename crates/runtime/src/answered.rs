//! Whether RIDES already holds a ride's answer from one service, read back
//! from the stream itself: the slow half of the answer fence ([`crate::fence`]),
//! asked only on a redelivery, a replay, a delivery older than half the
//! duplicate window, or a first delivery the fence refused.
//!
//! Answers are stored on `rides.<kind>.<city>` beside every other ride's, so a
//! search reads the headers of the service's answer subjects of the ride's city
//! over a range of sequences: from the request (no answer to it can be older)
//! through the caller's fence marker (no first delivery can store an answer
//! after it). [`Answers`] keeps what it read, per city, so that a backlog of
//! old deliveries (a service catching up after an outage) reads each stored
//! answer once, not once per delivery; first deliveries never pay any of it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::StreamExt;
use hail_events::headers;

/// How long a read waits for the next message before giving up (the caller
/// retries the delivery later).
const STALLED: Duration = Duration::from_secs(10);
/// A reader's consumer left behind (its process died mid-read) is removed
/// by the server after this long.
const LEFT_BEHIND: Duration = Duration::from_secs(10);
/// A city's answers not asked about for this long are forgotten.
const IDLE: Duration = Duration::from_secs(60);
/// A city's answers kept at most; past it they are read again from the stream.
const MAX_KEPT: usize = 2_000_000;

/// What a one-off search reads: one ride's answers from one service.
#[derive(Debug, Clone)]
pub struct Search<'a> {
    /// The stream (RIDES).
    pub stream: &'a str,
    /// The service's answer subjects in the ride's city.
    pub subjects: Vec<String>,
    /// The ride.
    pub ride: &'a str,
    /// Where an answer can start.
    pub from: Start,
    /// Last sequence to read.
    pub through: u64,
}

/// Where a read starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// At this stream sequence (a request's: no answer to it is older).
    Seq(u64),
    /// At the first message the stream stored at or after this time.
    Time(time::OffsetDateTime),
}

/// The stream sequence of the ride's first answer in the range, if any: one
/// bounded read, nothing kept.
pub async fn find(js: &jetstream::Context, s: &Search<'_>) -> anyhow::Result<Option<u64>> {
    let mut found = None;
    read(js, s.stream, &s.subjects, s.from, s.through, |ride, seq| {
        if found.is_none() && ride == s.ride {
            found = Some(seq);
        }
    })
    .await?;
    Ok(found)
}

/// Reads the `Hail-Ride-Id` of every message of `stream` on `subjects` from
/// `from` through `through` (or the end of the stream, if sooner), in order.
async fn read(
    js: &jetstream::Context,
    stream: &str,
    subjects: &[String],
    from: Start,
    through: u64,
    mut each: impl FnMut(&str, u64),
) -> anyhow::Result<()> {
    let deliver_policy = match from {
        Start::Seq(seq) if seq > through => return Ok(()),
        Start::Seq(seq) => DeliverPolicy::ByStartSequence {
            start_sequence: seq.max(1),
        },
        Start::Time(start_time) => DeliverPolicy::ByStartTime { start_time },
    };
    if subjects.is_empty() {
        return Ok(());
    }
    let rides = js.get_stream_no_info(stream).await?;
    // A consumer of its own, removed as soon as the read ends: a server holds a
    // limited number per stream (1,000 by default).
    let consumer: PullConsumer = rides
        .create_consumer(pull::Config {
            filter_subjects: subjects.to_vec(),
            headers_only: true,
            deliver_policy,
            ack_policy: AckPolicy::None,
            inactive_threshold: LEFT_BEHIND,
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        })
        .await?;
    let name = consumer.cached_info().name.clone();
    let read = read_from(&consumer, stream, subjects, through, &mut each).await;
    if let Err(e) = rides.delete_consumer(&name).await {
        tracing::debug!(consumer = name, error = %e, "reader's consumer not deleted; it expires");
    }
    read
}

async fn read_from(
    consumer: &PullConsumer,
    stream: &str,
    subjects: &[String],
    through: u64,
    each: &mut impl FnMut(&str, u64),
) -> anyhow::Result<()> {
    if consumer.cached_info().num_pending == 0 {
        return Ok(());
    }
    let mut messages = consumer.messages().await?;
    loop {
        let msg = tokio::time::timeout(STALLED, messages.next())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "reading {} back from {stream} stalled for {STALLED:?}",
                    subjects.join(",")
                )
            })?
            .ok_or_else(|| anyhow::anyhow!("reading {stream} ended early"))??;
        let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let seq = info.stream_sequence;
        if seq > through {
            return Ok(());
        }
        if let Some(ride) = msg.headers.as_ref().and_then(|h| h.get(headers::RIDE_ID)) {
            each(ride.as_str(), seq);
        }
        // Nothing more on the subjects: every sequence up to the end is read.
        if info.pending == 0 || seq == through {
            return Ok(());
        }
    }
}

/// One service's stored answers, read on demand and kept per set of answer
/// subjects (one city): see the module documentation.
#[derive(Clone)]
pub struct Answers {
    js: jetstream::Context,
    stream: String,
    cities: Arc<Mutex<HashMap<Vec<String>, City>>>,
}

/// What is read of one city's answers; one reader at a time.
type City = Arc<tokio::sync::Mutex<Read>>;

/// The answers read so far on one set of subjects: every one with a sequence
/// in `from..=through` (a stream never changes what it stored below its end).
#[derive(Default)]
struct Read {
    from: u64,
    through: u64,
    /// Each ride's answers (one, unless the ride was requested more than once).
    rides: HashMap<String, Vec<u64>>,
    used: Option<Instant>,
}

impl Read {
    fn covers(&self, from: u64, through: u64) -> bool {
        self.through != 0 && self.from <= from && through <= self.through
    }
}

impl Answers {
    /// Answers stored in `stream` (RIDES).
    pub fn new(js: jetstream::Context, stream: &str) -> Self {
        Self {
            js,
            stream: stream.to_string(),
            cities: Arc::default(),
        }
    }

    /// The sequence of `ride`'s answer on `subjects` in `from..=through`, if
    /// the stream holds one. `through` must be stored already (the caller's
    /// fence marker).
    pub async fn find(
        &self,
        subjects: &[String],
        ride: &str,
        from: u64,
        through: u64,
    ) -> anyhow::Result<Option<u64>> {
        let city = self
            .cities
            .lock()
            .expect("answers lock")
            .entry(subjects.to_vec())
            .or_default()
            .clone();
        let mut read = city.lock().await;
        if read.used.is_some_and(|t| t.elapsed() > IDLE) || read.rides.len() > MAX_KEPT {
            *read = Read::default();
        }
        read.used = Some(Instant::now());
        if !read.covers(from, through) {
            self.extend(&mut read, subjects, from, through).await?;
        }
        Ok(read.rides.get(ride).and_then(|seqs| {
            seqs.iter()
                .copied()
                .find(|seq| (from..=through).contains(seq))
        }))
    }

    /// Reads what `read` lacks of `from..=through`: below what it holds, and
    /// above it up to the stream's end now (so that the deliveries waiting
    /// behind this one find their markers covered too).
    async fn extend(
        &self,
        read: &mut Read,
        subjects: &[String],
        from: u64,
        through: u64,
    ) -> anyhow::Result<()> {
        let end = self
            .js
            .get_stream(&self.stream)
            .await?
            .cached_info()
            .state
            .last_sequence
            .max(through);
        if read.through == 0 {
            read.rides.clear();
            read_into(&self.js, &self.stream, subjects, from, end, &mut read.rides).await?;
            (read.from, read.through) = (from, end);
            return Ok(());
        }
        if from < read.from {
            read_into(
                &self.js,
                &self.stream,
                subjects,
                from,
                read.from - 1,
                &mut read.rides,
            )
            .await?;
            read.from = from;
        }
        if end > read.through {
            read_into(
                &self.js,
                &self.stream,
                subjects,
                read.through + 1,
                end,
                &mut read.rides,
            )
            .await?;
            read.through = end;
        }
        Ok(())
    }
}

async fn read_into(
    js: &jetstream::Context,
    stream: &str,
    subjects: &[String],
    from: u64,
    through: u64,
    rides: &mut HashMap<String, Vec<u64>>,
) -> anyhow::Result<()> {
    read(
        js,
        stream,
        subjects,
        Start::Seq(from),
        through,
        |ride, seq| {
            let seqs = rides.entry(ride.to_string()).or_default();
            if !seqs.contains(&seq) {
                seqs.push(seq);
            }
        },
    )
    .await
}
