//! What a service does at start (see the parent module): check what exists
//! against what it needs, setting by setting, and bind it; create or update
//! it only when it is missing or differs, and say to run `hail provision` when
//! that is refused.

use async_nats::jetstream::{
    self, ErrorCode,
    consumer::{self, IntoConsumerConfig as _, PullConsumer, pull},
    context::ConsumerInfoErrorKind,
};

use super::{
    ConsumerSpec, ProvisionError, StreamSettings, dlq_stream, drivers_stream, rides_stream,
    stream_failure,
};

/// Binds RIDES, DRIVERS and DLQ as a service: each one that exists as `s`
/// asks is left alone; see the module docs.
pub async fn bind_streams(
    js: &jetstream::Context,
    s: &StreamSettings,
) -> Result<(), ProvisionError> {
    for want in [rides_stream(s), drivers_stream(s), dlq_stream(s)] {
        let what = format!("stream {}", want.name);
        let needs = match read_stream(js, &want.name).await {
            Ok(stream) => match stream_differs(&want, &stream.cached_info().config) {
                None => continue,
                Some(d) => format!("differs ({d})"),
            },
            Err(e) if stream_missing(&e) => "is missing".to_string(),
            Err(e) => {
                return Err(ProvisionError::Read {
                    what,
                    reason: e.to_string(),
                });
            }
        };
        tracing::info!(stream = want.name, needs, "creating or updating the stream");
        super::retry_timeouts(
            &want.name,
            || js.create_or_update_stream(want.clone()),
            super::stream_timed_out,
        )
        .await
        .map_err(|err| ProvisionError::NotProvisioned {
            what,
            needs,
            reason: with_violation(stream_failure(&want, &err)),
        })?;
    }
    Ok(())
}

/// Binds the service's durable as a service: as it is when it matches `spec`,
/// created or updated otherwise; see the module docs.
pub async fn bind_consumer(
    js: &jetstream::Context,
    spec: &ConsumerSpec,
) -> Result<PullConsumer, ProvisionError> {
    let what = format!("consumer {} on stream {}", spec.durable, spec.stream);
    let read = |e: &dyn std::fmt::Display| ProvisionError::Read {
        what: what.clone(),
        reason: e.to_string(),
    };
    let stream = js
        .get_stream_no_info(&spec.stream)
        .await
        .map_err(|e| read(&e))?;
    let info = super::retry_timeouts(
        &spec.durable,
        || stream.consumer_info(&spec.durable),
        |e: &jetstream::context::ConsumerInfoError| {
            matches!(
                e.kind(),
                ConsumerInfoErrorKind::TimedOut | ConsumerInfoErrorKind::Request
            )
        },
    )
    .await;
    let needs = match info {
        Ok(info) => match consumer_differs(&spec.config().into_consumer_config(), &info.config) {
            None => {
                return stream
                    .get_consumer::<pull::Config>(&spec.durable)
                    .await
                    .map_err(|e| read(&e));
            }
            Some(d) => format!("differs ({d})"),
        },
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => "is missing".to_string(),
        Err(e) => return Err(read(&e)),
    };
    tracing::info!(
        durable = spec.durable,
        needs,
        "creating or updating the consumer"
    );
    super::ensure_consumer(js, spec)
        .await
        .map_err(|err| ProvisionError::NotProvisioned {
            what,
            needs,
            reason: with_violation(err.to_string()),
        })
}

/// `reason`, and the permission violation the server reported, if any: a
/// JetStream request the server refused for lack of permission times out.
fn with_violation(reason: String) -> String {
    match crate::auth::last_violation() {
        Some(v) => format!("{reason} ({v})"),
        None => reason,
    }
}

/// Opens a KV bucket as a service: as it is when it has `want`'s settings,
/// created or updated otherwise; see the module docs.
pub async fn bind_bucket(
    js: &jetstream::Context,
    want: jetstream::kv::Config,
) -> Result<jetstream::kv::Store, ProvisionError> {
    let what = format!("KV bucket {}", want.bucket);
    let needs = match read_stream(js, &format!("KV_{}", want.bucket)).await {
        Ok(stream) => match bucket_differs(&want, &stream.cached_info().config) {
            None => {
                return js
                    .get_key_value(&want.bucket)
                    .await
                    .map_err(|e| ProvisionError::Read {
                        what,
                        reason: e.to_string(),
                    });
            }
            Some(d) => format!("differs ({d})"),
        },
        Err(e) if stream_missing(&e) => "is missing".to_string(),
        Err(e) => {
            return Err(ProvisionError::Read {
                what,
                reason: e.to_string(),
            });
        }
    };
    tracing::info!(
        bucket = want.bucket,
        needs,
        "creating or updating the bucket"
    );
    super::ensure_kv(js, want)
        .await
        .map_err(|err| ProvisionError::NotProvisioned {
            what,
            needs,
            reason: with_violation(err.to_string()),
        })
}

/// The stream's info, asked again while JetStream does not answer in time (on
/// a cluster, while a stream whose leader was on a lost node elects another).
async fn read_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<jetstream::stream::Stream, jetstream::context::GetStreamError> {
    super::retry_timeouts(
        name,
        || js.get_stream(name),
        |e: &jetstream::context::GetStreamError| {
            matches!(e.kind(), jetstream::context::GetStreamErrorKind::Request)
        },
    )
    .await
}

/// Whether the server answered that the stream does not exist.
fn stream_missing(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(js) if js.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// A limit as the server keeps it: 0 (unset) and negative both mean none.
fn limit(v: i64) -> i64 {
    if v <= 0 { -1 } else { v }
}

/// The first setting `have` does not hold as `want` asks, as `name is X, needs Y`.
fn first_difference(fields: &[(&str, String, String)]) -> Option<String> {
    fields
        .iter()
        .find(|(_, want, have)| want != have)
        .map(|(name, want, have)| format!("{name} is {have}, needs {want}"))
}

/// How a stream's config differs from what hail asks of it, in the settings
/// hail sets.
fn stream_differs(
    want: &jetstream::stream::Config,
    have: &jetstream::stream::Config,
) -> Option<String> {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        format!("{v:?}")
    };
    first_difference(&[
        ("subjects", sorted(&want.subjects), sorted(&have.subjects)),
        (
            "retention",
            format!("{:?}", want.retention),
            format!("{:?}", have.retention),
        ),
        (
            "discard",
            format!("{:?}", want.discard),
            format!("{:?}", have.discard),
        ),
        (
            "storage",
            format!("{:?}", want.storage),
            format!("{:?}", have.storage),
        ),
        (
            "max_age",
            format!("{:?}", want.max_age),
            format!("{:?}", have.max_age),
        ),
        (
            "max_bytes",
            limit(want.max_bytes).to_string(),
            limit(have.max_bytes).to_string(),
        ),
        (
            "max_messages_per_subject",
            limit(want.max_messages_per_subject).to_string(),
            limit(have.max_messages_per_subject).to_string(),
        ),
        (
            "duplicate_window",
            format!("{:?}", want.duplicate_window),
            format!("{:?}", have.duplicate_window),
        ),
        (
            "replicas",
            want.num_replicas.max(1).to_string(),
            have.num_replicas.max(1).to_string(),
        ),
    ])
}

/// How a durable's config differs from the one its service binds.
fn consumer_differs(want: &consumer::Config, have: &consumer::Config) -> Option<String> {
    let filters = |c: &consumer::Config| {
        let mut f: Vec<String> = c.filter_subjects.clone();
        if !c.filter_subject.is_empty() {
            f.push(c.filter_subject.clone());
        }
        f.sort();
        format!("{f:?}")
    };
    first_difference(&[
        ("filter_subjects", filters(want), filters(have)),
        // Not where it starts: that cannot change, and a durable replaced
        // by `ensure_consumer` starts after its predecessor's ack floor.
        (
            "ack_policy",
            format!("{:?}", want.ack_policy),
            format!("{:?}", have.ack_policy),
        ),
        (
            "ack_wait",
            format!("{:?}", want.ack_wait),
            format!("{:?}", have.ack_wait),
        ),
        (
            "max_deliver",
            want.max_deliver.to_string(),
            have.max_deliver.to_string(),
        ),
        (
            "backoff",
            format!("{:?}", want.backoff),
            format!("{:?}", have.backoff),
        ),
        (
            "max_ack_pending",
            want.max_ack_pending.to_string(),
            have.max_ack_pending.to_string(),
        ),
        (
            "inactive_threshold",
            format!("{:?}", want.inactive_threshold),
            format!("{:?}", have.inactive_threshold),
        ),
        (
            "priority_policy",
            format!("{:?}", want.priority_policy),
            format!("{:?}", have.priority_policy),
        ),
        (
            "priority_groups",
            format!("{:?}", want.priority_groups),
            format!("{:?}", have.priority_groups),
        ),
        (
            "priority_timeout",
            format!("{:?}", want.priority_timeout),
            format!("{:?}", have.priority_timeout),
        ),
    ])
}

/// How a bucket's stream differs from what its service asks of the bucket.
fn bucket_differs(
    want: &jetstream::kv::Config,
    have: &jetstream::stream::Config,
) -> Option<String> {
    first_difference(&[
        (
            "history",
            want.history.max(1).to_string(),
            have.max_messages_per_subject.to_string(),
        ),
        (
            "storage",
            format!("{:?}", want.storage),
            format!("{:?}", have.storage),
        ),
        (
            "replicas",
            want.num_replicas.max(1).to_string(),
            have.num_replicas.max(1).to_string(),
        ),
        (
            "max_age",
            format!("{:?}", want.max_age),
            format!("{:?}", have.max_age),
        ),
        (
            "max_bytes",
            limit(want.max_bytes).to_string(),
            limit(have.max_bytes).to_string(),
        ),
        (
            "limit_markers",
            format!("{:?}", want.limit_markers),
            format!("{:?}", have.subject_delete_marker_ttl),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::Service;

    #[test]
    fn a_stream_as_the_server_keeps_it_matches() {
        let want = drivers_stream(&StreamSettings::default());
        let mut have = want.clone();
        // The server fills unset limits in as -1 and lists subjects its own way.
        have.max_bytes = -1;
        have.max_messages_per_subject = 1;
        have.num_replicas = 1;
        assert_eq!(stream_differs(&want, &have), None);
        have.duplicate_window = Duration::from_secs(1);
        let d = stream_differs(&want, &have).unwrap();
        assert!(d.starts_with("duplicate_window is 1s, needs 120s"), "{d}");
    }

    #[test]
    fn a_durable_differing_in_one_setting_names_it() {
        let want = Service::Matching
            .default_consumer_spec()
            .config()
            .into_consumer_config();
        let mut have = want.clone();
        // The server may keep one filter in either field.
        have.filter_subjects.reverse();
        assert_eq!(consumer_differs(&want, &have), None);
        have.max_deliver = 3;
        assert_eq!(
            consumer_differs(&want, &have).as_deref(),
            Some("max_deliver is 3, needs 5")
        );
    }
}
