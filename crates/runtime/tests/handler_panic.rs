//! A handler that panics on one message fails that message alone: the worker
//! keeps handling the others, and the panicking one is retried and then
//! dead-lettered with the panic's message as its reason. Real nats-server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::{self, consumer::pull, stream};
use hail_events::headers;
use hail_runtime::{Delivery, Handler, Outcome, metrics::RuntimeMetrics, pin::PinSeen, worker};
use hail_testkit::{NatsServer, wait_until};
use tokio_util::sync::CancellationToken;

/// Panics on the payload `boom`, counts every other message.
#[derive(Clone)]
struct Fragile(Arc<AtomicUsize>);

impl Handler for Fragile {
    async fn handle(&self, d: &Delivery<'_>) -> Outcome {
        assert!(d.payload != b"boom", "boom at sequence {}", d.stream_seq);
        self.0.fetch_add(1, Ordering::SeqCst);
        Outcome::done()
    }
}

#[tokio::test]
async fn a_panicking_handler_fails_its_message_alone() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    let work = js
        .create_stream(stream::Config {
            name: "WORK".into(),
            subjects: vec!["work.>".into()],
            ..Default::default()
        })
        .await?;
    js.create_stream(stream::Config {
        name: "DLQ".into(),
        subjects: vec!["dlq.>".into()],
        ..Default::default()
    })
    .await?;
    let consumer = work
        .create_consumer(pull::Config {
            durable_name: Some("fragile".into()),
            ack_wait: Duration::from_secs(5),
            max_deliver: 3,
            ..Default::default()
        })
        .await?;
    for payload in ["boom", "a", "b", "c"] {
        js.publish("work.x", payload.into()).await?.await?;
    }

    let handled = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let settings = worker::WorkerSettings {
        batch: 16,
        concurrency: 4,
        max_deliver: 3,
        backoff: vec![Duration::from_millis(100)],
        shutdown_timeout: Duration::from_secs(2),
        faults: None,
        pin: PinSeen::default(),
    };
    let metrics = RuntimeMetrics::register(&prometheus::Registry::new(), "fragile")?;
    let running = tokio::spawn(worker::run(
        "fragile",
        js.clone(),
        consumer,
        Fragile(handled.clone()),
        metrics,
        settings,
        shutdown.clone(),
    ));

    let dlq = js.get_stream("DLQ").await?;
    wait_until(
        Duration::from_secs(30),
        "the three good messages handled and the bad one dead-lettered",
        || {
            let (handled, mut dlq) = (handled.clone(), dlq.clone());
            async move {
                handled.load(Ordering::SeqCst) == 3
                    && dlq.info().await.is_ok_and(|i| i.state.messages == 1)
            }
        },
    )
    .await?;
    assert!(!running.is_finished(), "the worker stopped after the panic");

    let letter = dlq.get_raw_message(1).await?;
    let reason = letter
        .headers
        .get(headers::dlq::REASON)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    assert!(
        reason.contains("the handler panicked: boom at sequence 1"),
        "reason: {reason}"
    );
    assert_eq!(&letter.payload[..], b"boom");

    shutdown.cancel();
    running.await??;
    let mut left = js
        .get_consumer_from_stream::<pull::Config, _, _>("fragile", "WORK")
        .await?;
    let info = left.info().await?;
    assert_eq!(
        (info.num_pending, info.num_ack_pending),
        (0, 0),
        "every message was acknowledged or terminated"
    );
    Ok(())
}
