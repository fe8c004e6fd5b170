//! The null pipeline: the broker's own ceiling for hail's message pattern.
//!
//! Four consumers in this process, one connection each, each binding the very
//! durable its service binds without flags ([`Service::default_consumer_spec`]).
//! Each pulls in batches of the services' default `--batch` and, like their
//! workers, keeps up to their default `--concurrency` messages in flight as
//! futures of its one task; for each request publishes what its
//! service would (real codec, real headers, PubAck awaited) and then acks, doing
//! no work in between. Analytics only acks. The gap between this and the real
//! services is what the services themselves cost.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use async_nats::{
    Client,
    jetstream::{self, AckKind, Message, consumer::PullConsumer, context::PublishErrorKind},
};
use futures::{StreamExt, stream::FuturesUnordered};
use hail_events::trace::TraceContext;
use hail_runtime::{config::defaults, service::Service};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::outputs;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Delay before a message whose output could not be stored is redelivered.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// What the null consumers did, summed over the four.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NullStats {
    /// Messages acked.
    pub acked: u64,
    /// Outputs stored (PubAck received).
    pub published: u64,
    /// Messages naked or termed (publish failed, no ride id) and pull errors.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    acked: AtomicU64,
    published: AtomicU64,
    errors: AtomicU64,
}

/// The four running null consumers.
pub struct NullPipeline {
    clients: Vec<Client>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    counters: Arc<Counters>,
}

impl NullPipeline {
    /// Connects `instances` clients per durable, creates or updates the four
    /// durables (RIDES must exist) and starts consuming.
    pub async fn start(nats_url: &str, instances: usize) -> Result<Self> {
        Self::start_for(nats_url, &Service::ALL, instances).await
    }

    /// [`NullPipeline::start`] for only `services`' durables (one process per
    /// service: [`crate::null_processes`]).
    pub async fn start_for(nats_url: &str, services: &[Service], instances: usize) -> Result<Self> {
        let mut pipeline = NullPipeline {
            clients: Vec::new(),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            counters: Arc::default(),
        };
        let each = services
            .iter()
            .flat_map(|s| std::iter::repeat_n(*s, instances.max(1)));
        for service in each {
            if let Err(e) = pipeline.add(service, nats_url).await {
                pipeline.stop().await;
                return Err(e);
            }
        }
        Ok(pipeline)
    }

    async fn add(&mut self, service: Service, nats_url: &str) -> Result<()> {
        let name = format!("hail-loadgen-null-{}", service.durable());
        let client = hail_runtime::connect::connect(nats_url, &name, CONNECT_TIMEOUT).await?;
        self.clients.push(client.clone());
        let js = jetstream::new(client);
        let consumer =
            hail_runtime::provision::ensure_consumer(&js, &service.default_consumer_spec()).await?;
        let worker = Worker {
            service,
            js,
            counters: self.counters.clone(),
            shutdown: self.shutdown.clone(),
        };
        self.tracker.spawn(worker.run(consumer));
        Ok(())
    }

    /// Counts so far.
    pub fn stats(&self) -> NullStats {
        let c = &self.counters;
        NullStats {
            acked: c.acked.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Stops pulling, lets in-flight messages finish (time-boxed), flushes the
    /// buffered acks and drains the connections.
    pub async fn stop(self) -> NullStats {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(STOP_TIMEOUT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.len(),
                "null consumers did not stop in time"
            );
        }
        for client in &self.clients {
            if let Err(e) = client.flush().await {
                tracing::warn!(error = %e, "flushing acks failed");
            }
            if let Err(e) = client.drain().await {
                tracing::warn!(error = %e, "draining a connection failed");
            }
        }
        self.stats()
    }
}

/// One null consumer.
#[derive(Clone)]
struct Worker {
    service: Service,
    js: jetstream::Context,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
}

impl Worker {
    /// Like the services' workers: up to `--concurrency` messages in flight as
    /// futures of this one task. A message with no output (analytics, or a
    /// completion for matching) is acked where it is read, as a service with
    /// nothing to wait for would.
    async fn run(self, consumer: PullConsumer) {
        let mut in_flight = FuturesUnordered::new();
        while !self.shutdown.is_cancelled() {
            let pulled = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                m = hail_runtime::worker::pull(&consumer, defaults::BATCH).messages() => m,
            };
            let mut messages = match pulled {
                Ok(m) => m,
                Err(e) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(durable = self.service.durable(), error = %e, "cannot pull, retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    biased;
                    _ = self.shutdown.cancelled() => break,
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                    next = messages.next(), if in_flight.len() < defaults::CONCURRENCY => match next {
                        Some(Ok(msg)) => match self.output(&msg) {
                            Ok(Some(out)) => in_flight.push(self.clone().answer(msg, out)),
                            Ok(None) => self.settle(&msg, AckKind::Ack, true).await,
                            Err(reason) => {
                                tracing::warn!(durable = self.service.durable(), subject = %msg.subject, reason, "unusable message, terminated");
                                self.settle(&msg, AckKind::Term, false).await;
                            }
                        },
                        Some(Err(e)) => {
                            self.counters.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(durable = self.service.durable(), error = %e, "pull error");
                        }
                        None => break,
                    },
                }
            }
        }
        let finished = async { while in_flight.next().await.is_some() {} };
        if tokio::time::timeout(STOP_TIMEOUT, finished).await.is_err() {
            tracing::warn!(
                durable = self.service.durable(),
                "in-flight messages did not finish in time"
            );
        }
    }

    /// What the service would publish for `msg`, with the first delivery's fence.
    fn output(&self, msg: &Message) -> Result<Option<hail_runtime::Output>, String> {
        // As the services' worker does: the output is a span of its request's
        // trace (read only when there is an output; analytics has none).
        let mut out =
            outputs::for_message(self.service, &msg.subject, msg.headers.as_ref())?.map(|out| {
                let h = msg.headers.as_ref();
                out.in_trace(&TraceContext::from_headers(h).unwrap_or_else(TraceContext::root))
            });
        // Like the services' first deliveries: stored only while the ride's fence is empty.
        if let Some(out) = &mut out
            && let Some(ride) = &out.ride
        {
            hail_runtime::fence::first_delivery(&mut out.headers, self.service.name(), ride);
        }
        Ok(out)
    }

    /// Publishes the service's output (PubAck awaited), then acks.
    async fn answer(self, msg: Message, out: hail_runtime::Output) {
        let stored = async {
            self.js
                .publish_with_headers(out.subject, out.headers, out.payload)
                .await?
                .await
        };
        // Like the services: an answer the fence refuses was stored before.
        let stored = stored.await.map(|_| ()).or_else(|e| match e.kind() {
            PublishErrorKind::WrongLastSequence => Ok(()),
            _ => Err(e),
        });
        if let Err(e) = stored {
            tracing::warn!(durable = self.service.durable(), error = %e, "publishing the output failed, retrying");
            return self
                .settle(&msg, AckKind::Nak(Some(RETRY_DELAY)), false)
                .await;
        }
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        self.settle(&msg, AckKind::Ack, true).await;
    }

    async fn settle(&self, msg: &Message, kind: AckKind, ok: bool) {
        let counter = match (msg.ack_with(kind).await, ok) {
            (Ok(()), true) => &self.counters.acked,
            (Ok(()), false) => &self.counters.errors,
            (Err(e), _) => {
                tracing::warn!(durable = self.service.durable(), error = %e, "ack failed");
                &self.counters.errors
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
