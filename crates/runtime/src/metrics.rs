//! The runtime's metrics, registered once into the service's registry. Labels are
//! the service, the event type and the dead-letter reason kind: all bounded.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Metric names, as constants so tests and dashboards can refer to them.
pub mod names {
    pub const PROCESSED: &str = "hail_messages_processed_total";
    pub const RETRIED: &str = "hail_messages_retried_total";
    pub const SKIPPED: &str = "hail_messages_skipped_total";
    pub const DEAD_LETTERS: &str = "hail_dead_letters_total";
    pub const OUTPUTS: &str = "hail_outputs_published_total";
    pub const ALREADY_STORED: &str = "hail_outputs_already_stored_total";
    pub const CHECKED: &str = "hail_outputs_checked_total";
    pub const PUBLISH_ERRORS: &str = "hail_publish_errors_total";
    pub const PULL_ERRORS: &str = "hail_pull_errors_total";
    pub const HANDLER_SECONDS: &str = "hail_handler_duration_seconds";
    pub const EVENT_AGE_SECONDS: &str = "hail_event_age_seconds";
    pub const PENDING: &str = "hail_consumer_pending_messages";
    pub const IN_FLIGHT: &str = "hail_in_flight_messages";
    pub const READY: &str = "hail_ready";
}

/// Everything the runtime counts.
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    /// Inputs acked after success, by event type.
    pub processed: IntCounterVec,
    /// Inputs nak'ed for redelivery, by event type.
    pub retried: IntCounterVec,
    /// Inputs acked without handling, by why (a replay meant for another service).
    pub skipped: IntCounterVec,
    /// Inputs copied to the DLQ, by reason kind.
    pub dead_letters: IntCounterVec,
    /// Outputs published and PubAcked, by event type.
    pub outputs: IntCounterVec,
    /// Outputs the stream refused because the ride's subject already held that
    /// answer (a late redelivery), by event type.
    pub already_stored: IntCounterVec,
    /// Answers that took the fence's careful path (looked up in the stream).
    pub checked: IntCounterVec,
    /// Output or dead-letter publishes that failed.
    pub publish_errors: IntCounter,
    /// Errors from the pull subscription.
    pub pull_errors: IntCounter,
    /// Time in the handler.
    pub handler_seconds: Histogram,
    /// From storage in the stream to the ack of this service.
    pub event_age_seconds: Histogram,
    /// Messages left for the consumer group, as the last delivery reported.
    pub pending: IntGauge,
    /// Messages this process is working on.
    pub in_flight: IntGauge,
    /// 1 when bound to its consumer and connected.
    pub ready: IntGauge,
}

impl RuntimeMetrics {
    /// Creates the metrics with a constant `service` label and registers them.
    pub fn register(registry: &Registry, service: &str) -> prometheus::Result<Self> {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("service", service);
        let hopts = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramOpts::new(name, help)
                .const_label("service", service)
                .buckets(buckets)
        };
        let latency = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ];
        let age = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ];
        let m = RuntimeMetrics {
            processed: IntCounterVec::new(
                opts(names::PROCESSED, "inputs processed and acked"),
                &["event"],
            )?,
            retried: IntCounterVec::new(
                opts(names::RETRIED, "inputs nak'ed for redelivery"),
                &["event"],
            )?,
            skipped: IntCounterVec::new(
                opts(names::SKIPPED, "inputs acked without handling"),
                &["why"],
            )?,
            dead_letters: IntCounterVec::new(
                opts(names::DEAD_LETTERS, "inputs dead-lettered"),
                &["reason"],
            )?,
            outputs: IntCounterVec::new(
                opts(names::OUTPUTS, "outputs published and acknowledged"),
                &["event"],
            )?,
            already_stored: IntCounterVec::new(
                opts(
                    names::ALREADY_STORED,
                    "outputs refused because the ride already had that answer",
                ),
                &["event"],
            )?,
            checked: IntCounterVec::new(
                opts(
                    names::CHECKED,
                    "answers that took the fence's careful path: marker, read back, conditional publish",
                ),
                &["event"],
            )?,
            publish_errors: IntCounter::with_opts(opts(
                names::PUBLISH_ERRORS,
                "failed output or dead-letter publishes",
            ))?,
            pull_errors: IntCounter::with_opts(opts(
                names::PULL_ERRORS,
                "errors pulling from the consumer",
            ))?,
            handler_seconds: Histogram::with_opts(hopts(
                names::HANDLER_SECONDS,
                "time spent in the handler",
                latency,
            ))?,
            event_age_seconds: Histogram::with_opts(hopts(
                names::EVENT_AGE_SECONDS,
                "time from stream storage to ack",
                age,
            ))?,
            pending: IntGauge::with_opts(opts(
                names::PENDING,
                "messages pending for the consumer group",
            ))?,
            in_flight: IntGauge::with_opts(opts(
                names::IN_FLIGHT,
                "messages being processed by this process",
            ))?,
            ready: IntGauge::with_opts(opts(
                names::READY,
                "1 when connected and bound to the consumer",
            ))?,
        };
        registry.register(Box::new(m.processed.clone()))?;
        registry.register(Box::new(m.retried.clone()))?;
        registry.register(Box::new(m.skipped.clone()))?;
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.outputs.clone()))?;
        registry.register(Box::new(m.already_stored.clone()))?;
        registry.register(Box::new(m.checked.clone()))?;
        registry.register(Box::new(m.publish_errors.clone()))?;
        registry.register(Box::new(m.pull_errors.clone()))?;
        registry.register(Box::new(m.handler_seconds.clone()))?;
        registry.register(Box::new(m.event_age_seconds.clone()))?;
        registry.register(Box::new(m.pending.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        registry.register(Box::new(m.ready.clone()))?;
        Ok(m)
    }
}
