//! Idempotent create-or-update of the streams and durable consumers of DESIGN.md,
//! so services can start in any order and several instances can start at once.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    stream::{DiscardPolicy, RetentionPolicy, StorageType},
};
use hail_events::subjects;

/// Provisioning failed; the message names the stream or consumer.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A stream could not be created or updated.
    #[error("cannot create or update stream {name}: {source}")]
    Stream {
        name: String,
        source: jetstream::context::CreateStreamError,
    },
    /// A consumer could not be created or updated.
    #[error("cannot create or update consumer {durable} on stream {stream}: {source}")]
    Consumer {
        stream: String,
        durable: String,
        source: jetstream::stream::ConsumerError,
    },
}

/// How big and how safe the streams are.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// How long RIDES keeps messages.
    pub rides_max_age: Duration,
    /// Size limit of RIDES in bytes.
    pub rides_max_bytes: i64,
    /// Replicas of each stream.
    pub replicas: usize,
}

/// The de-duplication window of every stream (DESIGN.md: at least two minutes).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// RIDES: requests and outcomes, limits retention (never work-queue: it breaks fan-out).
pub fn rides_stream(s: &StreamSettings) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: subjects::RIDES_STREAM.into(),
        description: Some("ride requests and every service's outcome".into()),
        subjects: vec![subjects::RIDES_ALL.into()],
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        max_age: s.rides_max_age,
        max_bytes: s.rides_max_bytes,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: s.replicas,
        ..Default::default()
    }
}

/// DRIVERS: the last location and status of each driver.
pub fn drivers_stream(s: &StreamSettings) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: subjects::DRIVERS_STREAM.into(),
        description: Some("last known location and status per driver".into()),
        subjects: vec![subjects::DRIVERS_ALL.into()],
        max_messages_per_subject: 1,
        storage: StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: s.replicas,
        ..Default::default()
    }
}

/// DLQ: dead letters with their reason; kept two weeks for inspection and replay.
pub fn dlq_stream(s: &StreamSettings) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: subjects::DLQ_STREAM.into(),
        description: Some("dead letters: original message plus reason".into()),
        subjects: vec![subjects::DLQ_ALL.into()],
        storage: StorageType::File,
        max_age: Duration::from_secs(14 * 86_400),
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: s.replicas,
        ..Default::default()
    }
}

/// Creates or updates RIDES, DRIVERS and DLQ.
pub async fn ensure_streams(
    js: &jetstream::Context,
    s: &StreamSettings,
) -> Result<(), ProvisionError> {
    for config in [rides_stream(s), drivers_stream(s), dlq_stream(s)] {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|source| ProvisionError::Stream { name, source })?;
    }
    Ok(())
}

/// A service's durable pull consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name: the consumer group.
    pub durable: String,
    /// The stream it reads.
    pub stream: String,
    /// Subjects it reads.
    pub filter_subjects: Vec<String>,
    /// Deliveries before a message is dead-lettered.
    pub max_deliver: i64,
    /// Redelivery delays; the first one is also the ack wait.
    pub backoff: Vec<Duration>,
    /// Unacknowledged messages the group may hold.
    pub max_ack_pending: i64,
}

impl ConsumerSpec {
    /// The JetStream config: explicit ack, deliver all, no inactive threshold
    /// (the server must not delete a durable while its service is down).
    pub fn config(&self) -> pull::Config {
        let (filter_subject, filter_subjects) = match self.filter_subjects.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        pull::Config {
            durable_name: Some(self.durable.clone()),
            description: Some(format!("hail {} consumer group", self.durable)),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self
                .backoff
                .first()
                .copied()
                .unwrap_or(Duration::from_secs(30)),
            max_deliver: self.max_deliver,
            backoff: self.backoff.clone(),
            max_ack_pending: self.max_ack_pending,
            filter_subject,
            filter_subjects,
            inactive_threshold: Duration::ZERO,
            ..Default::default()
        }
    }
}

/// Creates or updates the durable consumer and returns a handle to pull from it.
pub async fn ensure_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> Result<PullConsumer, ProvisionError> {
    js.create_consumer_on_stream(spec.config(), &spec.stream)
        .await
        .map_err(|source| ProvisionError::Consumer {
            stream: spec.stream.clone(),
            durable: spec.durable.clone(),
            source,
        })
}
