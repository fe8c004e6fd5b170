//! Registration with the NATS services API: `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS`
//! answer for this instance, and STATS carries the consumer group's lag and
//! what this instance has processed, so `hail status` can count instances and
//! sum their rates wherever they run.

use std::collections::HashMap;

use async_nats::service::{Service, ServiceExt};
use futures::StreamExt;
use prometheus::{IntCounterVec, IntGauge, core::Collector};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::pin::PinSeen;

/// What the STATS data and the status endpoint report.
#[derive(Clone)]
pub struct LagSource {
    /// The durable this instance reads.
    pub durable: String,
    /// This instance's name (`--instance`).
    pub instance: String,
    /// Pending messages as the last delivery reported.
    pub pending: IntGauge,
    /// Messages in flight in this process.
    pub in_flight: IntGauge,
    /// Inputs this process has processed and acked, by event.
    pub processed: IntCounterVec,
    /// The pin this instance last received, for a one-active group.
    pub pin: PinSeen,
}

impl LagSource {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "durable": self.durable,
            "instance": self.instance,
            "lag_messages": self.pending.get(),
            "in_flight": self.in_flight.get(),
            "processed": total(&self.processed),
            "pin_id": self.pin.get(),
        })
    }
}

/// The sum of a counter's samples.
fn total(counter: &IntCounterVec) -> u64 {
    counter
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// Registers the service and answers its `status` endpoint until `stop` fires.
pub async fn register(
    client: &async_nats::Client,
    service: &str,
    instance: &str,
    lag: LagSource,
    tracker: &TaskTracker,
    stop: CancellationToken,
) -> anyhow::Result<Service> {
    let stats = lag.clone();
    let metadata = HashMap::from([
        ("durable".to_string(), lag.durable.clone()),
        ("instance".to_string(), instance.to_string()),
    ]);
    let svc = client
        .service_builder()
        .description(format!("hail {service}"))
        .metadata(metadata)
        .stats_handler(move |_endpoint, _stats| stats.json())
        .start(service, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot register with the NATS services API: {e}"))?;
    let mut endpoint = svc
        .endpoint(format!("hail.{service}.status"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot add the status endpoint: {e}"))?;
    tracker.spawn(async move {
        loop {
            let request = tokio::select! {
                _ = stop.cancelled() => break,
                r = endpoint.next() => r,
            };
            let Some(request) = request else { break };
            let body = lag.json().to_string();
            if let Err(e) = request.respond(Ok(body.into())).await {
                tracing::debug!(error = %e, "status reply failed");
            }
        }
    });
    Ok(svc)
}
