//! The gateway's side of NATS: publish an event and wait for its PubAck, the
//! idempotency bucket, the ride view bucket. Every call is bounded by the
//! `--publish-timeout`; a call that NATS does not answer in time, or any call
//! while the connection is down, is [`Unavailable`] (the handlers answer 503).

use std::time::Duration;

use async_nats::{
    Client,
    connection::State,
    jetstream::{self, kv},
};
use hail_events::{
    Event, codec, headers,
    ride_view::{self, RideView},
    trace::TraceContext,
};

use crate::idempotency::{self, Record};

/// NATS did not answer, or is not connected: nothing is known to be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// What creating an idempotency record found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This request created the record: its ride is new.
    Created(u64),
    /// The key was there already, with this record and revision.
    Exists(Record, u64),
}

/// A connected gateway's handle on NATS.
#[derive(Clone)]
pub struct Broker {
    client: Client,
    js: jetstream::Context,
    idempotency: kv::Store,
    view: std::sync::Arc<std::sync::OnceLock<kv::Store>>,
    timeout: Duration,
}

impl Broker {
    /// Binds the idempotency bucket (created when missing: see
    /// [`idempotency::bucket_config`]); `timeout` bounds every later call.
    pub async fn bind(client: Client, replicas: usize, timeout: Duration) -> anyhow::Result<Self> {
        let js = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .build(client.clone());
        let idempotency =
            hail_runtime::provision::bind_bucket(&js, idempotency::bucket_config(replicas)).await?;
        Ok(Broker {
            client,
            js,
            idempotency,
            view: Default::default(),
            timeout,
        })
    }

    /// The client (readiness, shutdown).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn connected(&self) -> Result<(), Unavailable> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            other => Err(Unavailable(format!("not connected to NATS ({other})"))),
        }
    }

    async fn bounded<T, E: std::fmt::Display>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Unavailable> {
        self.connected()?;
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unavailable(format!("{what}: {e}"))),
            Err(_) => Err(Unavailable(format!(
                "{what}: NATS did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// Publishes `event` with its standard headers, in `trace` (a span of the
    /// caller's trace, or a new one), and returns once JetStream acknowledged it
    /// (stored, or dropped as a duplicate of a stored one).
    pub async fn publish<E: Event>(
        &self,
        event: &E,
        trace: &TraceContext,
    ) -> Result<(), Unavailable> {
        let payload =
            codec::encode(event).map_err(|e| Unavailable(format!("cannot encode: {e}")))?;
        let subject = event.subject();
        let h = headers::for_event_in(event, trace);
        self.bounded("publish", async {
            let ack = self
                .js
                .publish_with_headers(subject, h, payload)
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        })
        .await
        .map(|_| ())
    }

    /// Creates the record of an idempotency key unless it exists.
    pub async fn claim(&self, key: &str, record: &Record) -> Result<Claim, Unavailable> {
        let bytes = serde_json::to_vec(record).expect("a record serializes");
        let created = self
            .bounded("idempotency record", async {
                match self.idempotency.create(key, bytes.into()).await {
                    Ok(rev) => Ok(Some(rev)),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await?;
        if let Some(rev) = created {
            return Ok(Claim::Created(rev));
        }
        let entry = self
            .bounded("idempotency record", self.idempotency.entry(key))
            .await?;
        match entry {
            Some(e) => match serde_json::from_slice::<Record>(&e.value) {
                Ok(r) => Ok(Claim::Exists(r, e.revision)),
                Err(err) => Err(Unavailable(format!(
                    "idempotency record {key} is unreadable: {err}"
                ))),
            },
            // Expired or deleted between the two calls: a short race; retry.
            None => Err(Unavailable(format!(
                "idempotency record {key} vanished; retry"
            ))),
        }
    }

    /// Marks a record accepted (its ride's PubAck came). A failure is only
    /// logged: the next retry with the key republishes the same event.
    pub async fn mark_accepted(&self, key: &str, record: &Record, revision: u64) {
        let accepted = Record {
            accepted: true,
            ..record.clone()
        };
        let bytes = serde_json::to_vec(&accepted).expect("a record serializes");
        if let Err(e) = self
            .bounded(
                "idempotency record",
                self.idempotency.update(key, bytes.into(), revision),
            )
            .await
        {
            tracing::warn!(key, error = %e, "could not mark the idempotency record accepted");
        }
    }

    /// The ride view record of `ride`, if ride-view has one (and its bucket exists).
    pub async fn view(&self, ride: &hail_events::RideId) -> Result<Option<RideView>, Unavailable> {
        let Some(store) = self.view_bucket().await? else {
            return Ok(None);
        };
        let bytes = self
            .bounded("ride view", store.get(ride_view::key(ride)))
            .await?;
        match bytes {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Unavailable(format!("ride view of {ride} is unreadable: {e}"))),
        }
    }

    /// The ride view bucket, once it exists (ride-view creates it).
    async fn view_bucket(&self) -> Result<Option<&kv::Store>, Unavailable> {
        if let Some(s) = self.view.get() {
            return Ok(Some(s));
        }
        let found = self
            .bounded("ride view bucket", async {
                match self.js.get_key_value(ride_view::BUCKET).await {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if bucket_missing(&e) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await?;
        Ok(found.map(|s| self.view.get_or_init(|| s)))
    }
}

/// Whether `get_key_value` failed because the bucket's stream does not exist.
fn bucket_missing(e: &jetstream::context::KeyValueError) -> bool {
    use jetstream::context::{GetStreamError, GetStreamErrorKind};
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<GetStreamError>())
        .is_some_and(|g| {
            matches!(g.kind(), GetStreamErrorKind::JetStream(js)
                if js.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND)
        })
}
