//! The streams, durable consumers and KV buckets of DESIGN.md.
//!
//! Two ways in:
//!
//! - `ensure_*`: idempotent create-or-update, what `hail provision` does with
//!   an admin identity;
//! - `bind_*`: what a service does at start. It only *reads* what it needs
//!   (stream info, consumer info, bucket info) and binds it when it is there
//!   and as it needs it, so a service needs no right to manage streams. Only
//!   when something is missing or differs does it create or update it itself
//!   (the convenience path of a bare development server without accounts);
//!   if that is refused, the error names what is missing and says to run
//!   `hail provision`. Services can still start in any order, and several
//!   instances at once.

use std::time::Duration;

use async_nats::jetstream::{
    self, ErrorCode,
    consumer::{AckPolicy, DeliverPolicy, PriorityPolicy, PullConsumer, pull},
    context::{
        CreateKeyValueError, CreateKeyValueErrorKind, CreateStreamError, CreateStreamErrorKind,
    },
    kv,
    stream::{ConsumerError, ConsumerErrorKind},
    stream::{DiscardPolicy, RetentionPolicy, StorageType},
};
use hail_events::subjects;

use crate::config::defaults;

mod bind;
pub use bind::{bind_bucket, bind_consumer, bind_streams};

/// Provisioning failed; the message names the stream or consumer and says
/// what the server answered, once (no error chain to repeat it).
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A stream could not be created or updated.
    #[error("cannot create or update stream {name}: {reason}")]
    Stream { name: String, reason: String },
    /// A consumer could not be created or updated.
    #[error("cannot create or update consumer {durable} on stream {stream}: {reason}")]
    Consumer {
        stream: String,
        durable: String,
        reason: String,
    },
    /// A stream, consumer or bucket this service needs is missing or differs,
    /// and creating or updating it failed (the identity may lack the right).
    #[error(
        "cannot create or update {what}, which {needs}: {reason}; an identity without the \
         right to must find it provisioned: run `hail provision` with an admin identity (and \
         the same flags) first"
    )]
    NotProvisioned {
        /// `stream RIDES`, `consumer pricing on stream RIDES`, `KV bucket hail_claims`.
        what: String,
        /// `is missing`, or `differs (max_deliver is 3, needs 5)`.
        needs: String,
        /// What the create or update answered.
        reason: String,
    },
    /// Reading what exists failed for another reason than its absence.
    #[error("cannot read {what}: {reason}")]
    Read { what: String, reason: String },
}

/// Why a stream could not be created, with what to do about the one refusal
/// an operator is likely to meet: the server cannot reserve `max_bytes`.
pub(crate) fn stream_failure(
    config: &jetstream::stream::Config,
    err: &CreateStreamError,
) -> String {
    match err.kind() {
        CreateStreamErrorKind::JetStream(js)
            if js.error_code() == ErrorCode::STORAGE_RESOURCES_EXCEEDED =>
        {
            format!(
                "the server cannot reserve the {} it asks for ({js}); lower --rides-max-bytes \
                 (HAIL_RIDES_MAX_BYTES) or raise max_file_store in the server's jetstream config",
                human_bytes(config.max_bytes)
            )
        }
        CreateStreamErrorKind::JetStream(js)
            if config.num_replicas > 1
                && [
                    ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
                    ErrorCode::INSUFFICIENT_RESOURCES,
                    ErrorCode::CLUSTER_NO_PEERS,
                ]
                .contains(&js.error_code()) =>
        {
            format!(
                "the server cannot place {} replicas ({js}): that needs a cluster of at least \
                 {} nodes with JetStream; lower --replicas (HAIL_REPLICAS) or leave it at auto",
                config.num_replicas, config.num_replicas
            )
        }
        _ => err.to_string(),
    }
}

/// `8589934592` → `8.0 GiB`.
fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// How big and how safe the streams are.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// How long RIDES keeps messages.
    pub rides_max_age: Duration,
    /// Size limit of RIDES in bytes.
    pub rides_max_bytes: i64,
    /// How long each stream remembers a `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// Replicas of each stream.
    pub replicas: usize,
}

impl Default for StreamSettings {
    /// What the services create when no flag is given.
    fn default() -> Self {
        StreamSettings {
            rides_max_age: defaults::rides_max_age(),
            rides_max_bytes: defaults::RIDES_MAX_BYTES,
            duplicate_window: defaults::duplicate_window(),
            replicas: defaults::REPLICAS,
        }
    }
}

/// RIDES: requests and outcomes, limits retention (never work-queue: it breaks
/// fan-out), and the services' answer fences (`fence.>`, read by no consumer).
pub fn rides_stream(s: &StreamSettings) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: subjects::RIDES_STREAM.into(),
        description: Some("ride requests and every service's outcome".into()),
        subjects: vec![subjects::RIDES_ALL.into(), subjects::FENCES_ALL.into()],
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        max_age: s.rides_max_age,
        max_bytes: s.rides_max_bytes,
        duplicate_window: s.duplicate_window,
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
        duplicate_window: s.duplicate_window,
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
        duplicate_window: s.duplicate_window,
        num_replicas: s.replicas,
        ..Default::default()
    }
}

/// How long creating a stream or bucket is retried while the server does not
/// answer in time: on a cluster the first creation waits for a RAFT group to
/// form, and services starting at once all ask the meta leader together.
const PROVISION_RETRY: Duration = Duration::from_secs(30);

/// Runs `attempt` until it succeeds, fails otherwise than by `timed_out`, or
/// [`PROVISION_RETRY`] has passed.
pub(crate) async fn retry_timeouts<T, E, Fut>(
    what: &str,
    mut attempt: impl FnMut() -> Fut,
    timed_out: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = tokio::time::Instant::now() + PROVISION_RETRY;
    loop {
        // A request the server refused for lack of permission times out too:
        // that one is not slow, and asking again cannot help.
        let refused_before = crate::auth::violations();
        match attempt().await {
            Err(e)
                if timed_out(&e)
                    && crate::auth::violations() == refused_before
                    && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(what, error = %e, "jetstream did not answer in time, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            result => return result,
        }
    }
}

/// The server did not answer in time, or JetStream is not up yet.
fn stream_timed_out(e: &CreateStreamError) -> bool {
    matches!(
        e.kind(),
        CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable
    ) || no_peers_yet(&e.to_string())
}

/// A new cluster whose meta leader does not yet count every peer as online
/// refuses to place a replicated stream (error 10005); it does once it does.
fn no_peers_yet(error: &str) -> bool {
    error.contains("error code 10005")
}

/// Creates or updates RIDES, DRIVERS and DLQ.
pub async fn ensure_streams(
    js: &jetstream::Context,
    s: &StreamSettings,
) -> Result<(), ProvisionError> {
    for config in [rides_stream(s), drivers_stream(s), dlq_stream(s)] {
        retry_timeouts(
            &config.name,
            || js.create_or_update_stream(config.clone()),
            stream_timed_out,
        )
        .await
        .map_err(|err| ProvisionError::Stream {
            reason: stream_failure(&config, &err),
            name: config.name.clone(),
        })?;
    }
    Ok(())
}

/// Creates or updates a KV bucket (any number of instances may do so at
/// once), retried while the server does not answer in time like
/// [`ensure_streams`].
pub async fn ensure_kv(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, CreateKeyValueError> {
    // The bucket's stream is created underneath: its timeout is the source.
    let timed_out = |e: &CreateKeyValueError| {
        e.kind() == CreateKeyValueErrorKind::TimedOut
            || no_peers_yet(&e.to_string())
            || std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<CreateStreamError>())
                .is_some_and(stream_timed_out)
    };
    retry_timeouts(
        &config.bucket,
        || js.create_or_update_key_value(config.clone()),
        timed_out,
    )
    .await
}

/// A service's durable pull consumer; [`crate::service::Service::consumer_spec`]
/// makes the one each service binds.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `Some(ttl)`: one instance of the group at a time gets messages (a
    /// pinned-client priority group named after the durable); the others wait
    /// as hot standbys, and the server pins one of them when the pinned one
    /// has not pulled for `ttl`. `None`: every instance shares the work.
    pub pinned: Option<Duration>,
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
            ack_wait: ack_wait(&self.backoff),
            max_deliver: self.max_deliver,
            backoff: self.backoff.clone(),
            max_ack_pending: self.max_ack_pending,
            filter_subject,
            filter_subjects,
            inactive_threshold: Duration::ZERO,
            priority_policy: if self.pinned.is_some() {
                PriorityPolicy::PinnedClient
            } else {
                PriorityPolicy::None
            },
            priority_groups: self
                .pinned
                .map(|_| vec![self.durable.clone()])
                .unwrap_or_default(),
            priority_timeout: self.pinned.unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// The consumer's ack wait: the first redelivery delay (30 s without one).
pub fn ack_wait(backoff: &[Duration]) -> Duration {
    backoff.first().copied().unwrap_or(Duration::from_secs(30))
}

/// Creates or updates the durable consumer and returns a handle to pull from
/// it, retried while JetStream does not answer in time (a new consumer's RAFT
/// group forming on a busy cluster).
///
/// The server cannot turn a durable into a pinned group or back in place: such
/// a durable (one made by an older hail) is replaced by one that starts after
/// the old one's ack floor, so whatever it still owed is delivered again.
pub async fn ensure_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> Result<PullConsumer, ProvisionError> {
    let failed = |err: &dyn std::fmt::Display| ProvisionError::Consumer {
        stream: spec.stream.clone(),
        durable: spec.durable.clone(),
        reason: err.to_string(),
    };
    let mut config = spec.config();
    let stream = js.get_stream(&spec.stream).await.map_err(|e| failed(&e))?;
    let old = stream.consumer_info(&spec.durable).await.ok();
    if let Some(old) = &old {
        // Where a durable starts cannot change either; keep its own.
        config.deliver_policy = old.config.deliver_policy;
    }
    if let Some(old) = old
        && old.config.priority_policy != config.priority_policy
    {
        let from = old.ack_floor.stream_sequence + 1;
        tracing::warn!(
            durable = spec.durable,
            from,
            policy = ?config.priority_policy,
            "replacing the durable: its priority policy cannot change in place"
        );
        stream
            .delete_consumer(&spec.durable)
            .await
            .map_err(|e| failed(&e))?;
        config.deliver_policy = DeliverPolicy::ByStartSequence {
            start_sequence: from,
        };
    }
    let timed_out = |e: &ConsumerError| matches!(e.kind(), ConsumerErrorKind::TimedOut);
    retry_timeouts(
        &spec.durable,
        || js.create_consumer_on_stream(config.clone(), &spec.stream),
        timed_out,
    )
    .await
    .map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(json: &str) -> CreateStreamError {
        let js: jetstream::Error = serde_json::from_str(json).unwrap();
        CreateStreamError::from(js)
    }

    fn rides(max_bytes: i64) -> jetstream::stream::Config {
        rides_stream(&StreamSettings {
            rides_max_age: Duration::from_secs(3600),
            rides_max_bytes: max_bytes,
            ..StreamSettings::default()
        })
    }

    #[test]
    fn a_refused_reservation_names_the_size_and_both_ways_out() {
        let err = server_error(
            r#"{"code":500,"err_code":10047,"description":"insufficient storage resources available"}"#,
        );
        let reason = stream_failure(&rides(8 << 30), &err);
        assert!(reason.contains("8.0 GiB"), "{reason}");
        assert!(reason.contains("--rides-max-bytes"), "{reason}");
        assert!(reason.contains("max_file_store"), "{reason}");
        assert_eq!(
            reason.matches("insufficient storage").count(),
            1,
            "the server's words once: {reason}"
        );
    }

    #[test]
    fn other_refusals_are_quoted_as_the_server_said_them() {
        let err = server_error(
            r#"{"code":400,"err_code":10058,"description":"stream name already in use with a different configuration"}"#,
        );
        let reason = stream_failure(&rides(1 << 30), &err);
        assert!(reason.contains("already in use"), "{reason}");
        assert!(!reason.contains("--rides-max-bytes"), "{reason}");
    }

    #[test]
    fn more_replicas_than_nodes_names_the_flag() {
        let err = server_error(
            r#"{"code":500,"err_code":10074,"description":"replicas > 1 not supported in non-clustered mode"}"#,
        );
        let config = rides_stream(&StreamSettings {
            replicas: 3,
            ..StreamSettings::default()
        });
        let reason = stream_failure(&config, &err);
        assert!(reason.contains("3 replicas"), "{reason}");
        assert!(reason.contains("--replicas"), "{reason}");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(8 << 30), "8.0 GiB");
    }
}
