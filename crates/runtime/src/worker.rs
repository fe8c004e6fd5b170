//! The consumer-group worker: pull in batches, handle with bounded concurrency, and
//! turn each handler outcome into ack, nak-with-delay or dead-letter-then-term.
//!
//! Outputs are published and their PubAcks awaited before the input is acked. An
//! answer to a ride passes the ride's fence ([`fence`]), so a redelivery of any age
//! (after a crash between publish and ack, a pause past the ack wait, an outage)
//! cannot store a second answer: a first delivery is stored only while the fence
//! is empty, and a redelivery looks for the earlier answer before it stores one.
//! The deterministic `Nats-Msg-Id` still makes a retried publish a no-op.
//!
//! Each message is handled inside a tracing span carrying its trace id (from
//! its `traceparent`; a new trace when it has none) and its ride, so every log
//! line about it names both; every output continues that trace with a span of
//! its own ([`Output::in_trace`]).

use std::{future::Future, panic::AssertUnwindSafe, pin::Pin, sync::Arc, time::Duration};

use async_nats::jetstream::{
    self, AckKind, Message,
    consumer::{PriorityPolicy, PullConsumer},
    context::{PublishError, PublishErrorKind},
};
use futures::{FutureExt as _, StreamExt, stream::FuturesUnordered};
use tokio_util::sync::CancellationToken;

use hail_events::{headers, subjects, trace::TraceContext};
use tracing::Instrument as _;

use crate::{
    Handler, Outcome, Output,
    answered::Answers,
    dead_letter::{Origin, dead_letter_headers},
    fault::Faults,
    fence,
    metrics::RuntimeMetrics,
    outcome::{Delivery, event_name},
    pin::PinSeen,
    service::Service,
};

/// How the worker pulls and retries.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Messages per pull request.
    pub batch: usize,
    /// Messages handled at once.
    pub concurrency: usize,
    /// The consumer's max_deliver: the last delivery is dead-lettered on failure.
    pub max_deliver: i64,
    /// Nak delays by delivery count.
    pub backoff: Vec<Duration>,
    /// Time allowed for in-flight messages at shutdown.
    pub shutdown_timeout: Duration,
    /// Testing only: faults injected instead of the handler; `None` in production.
    pub faults: Option<Faults>,
    /// Where the pin of a one-active group is noted.
    pub pin: PinSeen,
}

impl WorkerSettings {
    fn delay_after(&self, delivered: i64) -> Duration {
        let i = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
        self.backoff[i.min(self.backoff.len().saturating_sub(1))]
    }
}

/// Everything one message's task needs.
struct Shared<H> {
    service: String,
    stream: String,
    js: jetstream::Context,
    handler: H,
    metrics: RuntimeMetrics,
    settings: WorkerSettings,
    shutdown: CancellationToken,
    /// Answers read back from the stream by the careful path ([`fence`]).
    answers: Answers,
    /// A first delivery younger than this takes the fast path ([`fence`]):
    /// half the stream's duplicate window.
    fast_age: Duration,
}

/// Messages being handled, all driven by the worker's own task.
type InFlight = FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Pulls from `consumer` until `shutdown` fires, then waits (time-boxed) for the
/// messages in flight. Returns when none of its messages is being handled.
pub async fn run<H: Handler>(
    service: &str,
    js: jetstream::Context,
    mut consumer: PullConsumer,
    handler: H,
    metrics: RuntimeMetrics,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let stream = consumer.cached_info().stream_name.clone();
    let window = js
        .get_stream(&stream)
        .await?
        .cached_info()
        .config
        .duplicate_window;
    let shared = Arc::new(Shared {
        service: service.to_string(),
        answers: Answers::new(js.clone(), &stream),
        fast_age: window / 2,
        stream,
        js,
        handler,
        metrics,
        settings,
        shutdown: shutdown.clone(),
    });
    let mut in_flight = InFlight::new();
    let result = pull_loop(&consumer, &shared, &mut in_flight, &shutdown).await;
    let timeout = shared.settings.shutdown_timeout;
    let finished = async { while in_flight.next().await.is_some() {} };
    if tokio::time::timeout(timeout, finished).await.is_err() {
        tracing::warn!(
            left = in_flight.len(),
            ?timeout,
            "in-flight messages did not finish; they will be redelivered"
        );
    }
    drop(in_flight);
    crate::pin::release(&shared.js, &mut consumer, &shared.settings.pin).await;
    result
}

/// Up to `concurrency` messages are handled at once, as futures of this one
/// task rather than a task each: no spawn, no hand-over between threads per
/// message (the handlers' own work is microseconds; the waiting is on NATS).
async fn pull_loop<H: Handler>(
    consumer: &PullConsumer,
    shared: &Arc<Shared<H>>,
    in_flight: &mut InFlight,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let concurrency = shared.settings.concurrency;
    while !shutdown.is_cancelled() {
        let setup = pull(consumer, shared.settings.batch).messages();
        tokio::pin!(setup);
        let mut messages = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                m = &mut setup => break m?,
            }
        };
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                next = messages.next(), if in_flight.len() < concurrency => match next {
                    Some(Ok(msg)) => {
                        let shared = shared.clone();
                        in_flight.push(Box::pin(async move { process(&shared, msg).await }));
                    }
                    Some(Err(e)) => {
                        shared.metrics.pull_errors.inc();
                        tracing::warn!(error = %e, "pull error");
                    }
                    None => {
                        tracing::warn!("pull subscription ended, subscribing again");
                        break;
                    }
                },
            }
        }
    }
    Ok(())
}

/// The pull stream: for a pinned group ([`crate::service::Service::one_active`])
/// it pulls as a member of the group, and often enough (half the pinned TTL) that
/// an idle pinned instance keeps its pin while a stopped one loses it.
pub fn pull(consumer: &PullConsumer, batch: usize) -> jetstream::consumer::pull::StreamBuilder<'_> {
    let config = &consumer.cached_info().config;
    let stream = consumer.stream().max_messages_per_batch(batch);
    match config.priority_groups.first() {
        Some(group) if config.priority_policy == PriorityPolicy::PinnedClient => {
            let expires = (config.priority_timeout / 2).max(Duration::from_secs(1));
            stream
                .group(group.clone())
                .expires(expires)
                .heartbeat(expires / 4)
        }
        _ => stream,
    }
}

/// Handles one message inside its span: `trace_id` and `ride` on every log line.
async fn process<H: Handler>(shared: &Shared<H>, msg: Message) {
    let h = msg.headers.as_ref();
    let trace = TraceContext::from_headers(h).unwrap_or_else(TraceContext::root);
    let ride = h
        .and_then(|h| h.get(headers::RIDE_ID))
        .map_or("", |v| v.as_str())
        .to_string();
    let span = tracing::info_span!("message", trace_id = %trace.trace_id_hex(), ride);
    handle(shared, msg, trace).instrument(span).await
}

async fn handle<H: Handler>(shared: &Shared<H>, msg: Message, trace: TraceContext) {
    let m = &shared.metrics;
    m.in_flight.inc();
    let Ok(info) = msg.info() else {
        tracing::warn!(subject = %msg.subject, "message without jetstream metadata, ignored");
        m.in_flight.dec();
        return;
    };
    let (stream_seq, delivered, published, pending) = (
        info.stream_sequence,
        info.delivered,
        info.published,
        info.pending,
    );
    m.pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
    shared.settings.pin.note(msg.headers.as_ref());
    let delivery = Delivery {
        subject: msg.subject.as_str(),
        payload: &msg.payload,
        headers: msg.headers.as_ref(),
        stream_seq,
        delivered,
        published,
    };
    let event = event_name(delivery.headers);
    if crate::replay::is_for_another(delivery.headers, &shared.service) {
        ack(&msg, AckKind::Ack).await;
        m.skipped
            .with_label_values(&["replay_for_another_service"])
            .inc();
        m.in_flight.dec();
        return;
    }
    let timer = m.handler_seconds.start_timer();
    let faults = shared.settings.faults.as_ref();
    let outcome = match faults.and_then(|f| f.pick(stream_seq, delivered)) {
        Some(fault) => fault.outcome(&shared.shutdown).await,
        // A handler that panics on a message fails that message alone: it is
        // retried, and dead-lettered after the last delivery, like any failure.
        None => match AssertUnwindSafe(shared.handler.handle(&delivery))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(panic) => Outcome::Retry {
                reason: format!("the handler panicked: {}", panic_message(&*panic)),
            },
        },
    };
    timer.observe_duration();
    let replay_of = crate::replay::original_seq(delivery.headers);
    // How long ago the stream stored it (0 if this host's clock is behind).
    let stored_ago =
        Duration::try_from(time::OffsetDateTime::now_utc() - published).unwrap_or(Duration::ZERO);
    let origin = Origin {
        service: &shared.service,
        stream: &shared.stream,
        stream_seq,
        subject: msg.subject.as_str(),
        delivered,
    };
    tracing::debug!(
        seq = stream_seq,
        delivered,
        event,
        outcome = outcome.kind(),
        "handled"
    );
    match outcome {
        Outcome::Done(outputs) => {
            let outputs = outputs.into_iter().map(|o| o.in_trace(&trace)).collect();
            match publish_all(shared, outputs, &origin, replay_of, stored_ago).await {
                Ok(())
                    if faults.is_some_and(|f| {
                        f.loses_ack(stream_seq, delivered, shared.settings.max_deliver)
                    }) =>
                {
                    let reason = "injected lost ack after publishing (--fault-lost-ack-rate)";
                    retry(shared, &msg, &origin, event, reason).await
                }
                Ok(()) => {
                    ack(&msg, AckKind::Ack).await;
                    m.processed.with_label_values(&[event]).inc();
                    let age = (time::OffsetDateTime::now_utc() - published).as_seconds_f64();
                    m.event_age_seconds.observe(age.max(0.0));
                }
                Err(e) => {
                    m.publish_errors.inc();
                    let reason = format!("publishing outputs failed: {e}");
                    retry(shared, &msg, &origin, event, &reason).await
                }
            }
        }
        Outcome::Retry { reason } => retry(shared, &msg, &origin, event, &reason).await,
        Outcome::Poison { kind, reason } => dead_letter(shared, &msg, &origin, kind, &reason).await,
    }
    m.in_flight.dec();
}

/// What a panic said, when it said it with a string (as `panic!` and
/// `unwrap` do).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Publishes every output, then awaits every PubAck. An answer to a ride is
/// stored at most once per service ([`fence`]): a first delivery younger than
/// half the duplicate window publishes it on the condition that the ride's
/// fence is empty; anything else (a redelivery, a replay, an older delivery, a
/// first delivery the fence refused) takes the careful path.
async fn publish_all<H>(
    shared: &Shared<H>,
    outputs: Vec<Output>,
    origin: &Origin<'_>,
    replay_of: Option<u64>,
    age: Duration,
) -> anyhow::Result<()> {
    let first = origin.delivered <= 1 && replay_of.is_none() && age < shared.fast_age;
    let mut acks = Vec::with_capacity(outputs.len());
    let mut careful = Vec::new();
    for out in outputs {
        match &out.ride {
            Some(_) if !first => careful.push(out),
            ride => {
                let mut headers = out.headers.clone();
                if let Some(ride) = ride {
                    fence::first_delivery(&mut headers, &shared.service, ride);
                }
                let ack = shared
                    .js
                    .publish_with_headers(out.subject.clone(), headers, out.payload.clone())
                    .await?;
                acks.push((ack, out));
            }
        }
    }
    for (ack, out) in acks {
        match ack.await {
            Ok(_) => shared.metrics.outputs.with_label_values(&[out.event]).inc(),
            // Another delivery's answer went through the careful path: find out.
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => careful.push(out),
            Err(e) => return Err(e.into()),
        }
    }
    for out in careful {
        let Some(ride) = &out.ride else { continue };
        let scope = fence::Scope {
            service: &shared.service,
            subjects: answer_subjects(&shared.service, &out.subject),
            since: replay_of.unwrap_or(origin.stream_seq),
        };
        shared.metrics.checked.with_label_values(&[out.event]).inc();
        let stored = fence::publish_checked(&shared.js, &shared.answers, &scope, ride, &out);
        let counter = match stored.await? {
            fence::Stored::Now => &shared.metrics.outputs,
            // The ride already has this service's answer, however old.
            fence::Stored::Before => &shared.metrics.already_stored,
        };
        counter.with_label_values(&[out.event]).inc();
    }
    Ok(())
}

/// The subjects a service's answers to one city are on: all its answer kinds
/// (matching answers a ride matched or unmatched), or the output's own subject
/// for a service hail does not know.
fn answer_subjects(service: &str, subject: &str) -> Vec<String> {
    let known = Service::ALL.into_iter().find(|s| s.name() == service);
    match (known, subjects::city_of(subject)) {
        (Some(s), Some(city)) if !s.outputs().is_empty() => s
            .outputs()
            .iter()
            .map(|all| format!("{}{city}", all.trim_end_matches('>')))
            .collect(),
        _ => vec![subject.to_string()],
    }
}

async fn retry<H>(
    shared: &Shared<H>,
    msg: &Message,
    origin: &Origin<'_>,
    event: &str,
    reason: &str,
) {
    if origin.delivered >= shared.settings.max_deliver {
        let reason = format!("gave up after {} deliveries: {reason}", origin.delivered);
        return dead_letter(shared, msg, origin, "max_deliveries", &reason).await;
    }
    let delay = shared.settings.delay_after(origin.delivered);
    tracing::warn!(
        seq = origin.stream_seq,
        delivered = origin.delivered,
        ?delay,
        reason,
        "retrying later"
    );
    shared.metrics.retried.with_label_values(&[event]).inc();
    ack(msg, AckKind::Nak(Some(delay))).await;
}

/// Copies the message to its dead-letter subject with the reason, then terms it
/// (also when an earlier delivery stored the copy already). If the copy
/// cannot be stored, the message is nak'ed instead: never dropped.
async fn dead_letter<H>(
    shared: &Shared<H>,
    msg: &Message,
    origin: &Origin<'_>,
    kind: &str,
    reason: &str,
) {
    let (subject, headers) = dead_letter_headers(msg.headers.as_ref(), origin, kind, reason);
    let stored = async {
        shared
            .js
            .publish_with_headers(subject, headers, msg.payload.clone())
            .await?
            .await
    };
    match stored.await.map(|_| ()).or_else(already_dead_lettered) {
        Ok(_) => {
            tracing::warn!(seq = origin.stream_seq, kind, reason, "dead-lettered");
            shared.metrics.dead_letters.with_label_values(&[kind]).inc();
            ack(msg, AckKind::Term).await;
        }
        Err(e) => {
            shared.metrics.publish_errors.inc();
            tracing::error!(seq = origin.stream_seq, error = %e, "cannot store dead letter; will retry");
            ack(msg, AckKind::Nak(Some(shared.settings.delay_after(1)))).await;
        }
    }
}

/// A dead letter refused because its subject already holds it: an earlier
/// delivery (on any instance, at any age) stored it, which is success here.
pub(crate) fn already_dead_lettered(e: PublishError) -> Result<(), PublishError> {
    match e.kind() {
        PublishErrorKind::WrongLastSequence => Ok(()),
        _ => Err(e),
    }
}

async fn ack(msg: &Message, kind: AckKind) {
    if let Err(e) = msg.ack_with(kind).await {
        // The server redelivers after the ack wait; the effects are idempotent.
        tracing::warn!(error = %e, "ack failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_looks_for_its_answers_of_every_kind_in_the_city() {
        assert_eq!(
            answer_subjects("matching", "rides.unmatched.berlin"),
            ["rides.matched.berlin", "rides.unmatched.berlin"]
        );
        assert_eq!(
            answer_subjects("pricing", "rides.priced.paris"),
            ["rides.priced.paris"]
        );
        assert_eq!(
            answer_subjects("echo", "rides.echoed.paris"),
            ["rides.echoed.paris"]
        );
    }

    #[test]
    fn backoff_by_delivery() {
        let s = WorkerSettings {
            batch: 1,
            concurrency: 1,
            max_deliver: 3,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
            shutdown_timeout: Duration::ZERO,
            faults: None,
            pin: PinSeen::default(),
        };
        assert_eq!(s.delay_after(1), Duration::from_secs(1));
        assert_eq!(s.delay_after(2), Duration::from_secs(5));
        assert_eq!(s.delay_after(9), Duration::from_secs(5));
    }
}
