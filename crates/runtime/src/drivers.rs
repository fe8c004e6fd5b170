//! Following the DRIVERS stream: the last known location and status of every
//! driver, loaded at start and kept live. matching and pricing build their supply
//! views on it.

use anyhow::{Context as _, Result};
use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
use hail_events::{DriverLocationUpdated, codec, subjects};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Reads every driver's last update (calling `apply` for each) and returns how
/// many there were; then keeps calling `apply` for live updates in a task tracked
/// by `tracker` until `shutdown` fires. Undecodable updates are logged and skipped:
/// DRIVERS keeps one message per driver, and the next update replaces a bad one.
pub async fn follow<F>(
    js: &jetstream::Context,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    mut apply: F,
) -> Result<u64>
where
    F: FnMut(DriverLocationUpdated) + Send + 'static,
{
    let stream = js
        .get_stream(subjects::DRIVERS_STREAM)
        .await
        .context("cannot open the DRIVERS stream")?;
    let config = OrderedConfig {
        filter_subject: subjects::DRIVERS_ALL.into(),
        deliver_policy: DeliverPolicy::LastPerSubject,
        ..Default::default()
    };
    let consumer = crate::ordered_feed::create(&stream, config)
        .await
        .context("cannot follow the DRIVERS stream")?;
    crate::ordered_feed::load_then_follow(
        consumer,
        "DRIVERS",
        tracker,
        shutdown,
        move |msg| {
            decode_and_apply(&msg.payload, &mut apply);
            true
        },
        || tracing::error!("DRIVERS feed ended; driver positions are no longer live"),
    )
    .await
}

fn decode_and_apply<F: FnMut(DriverLocationUpdated)>(payload: &[u8], apply: &mut F) {
    match codec::decode::<DriverLocationUpdated>(payload) {
        Ok(update) => apply(update),
        Err(e) => tracing::warn!(error = %e, "skipping a bad driver update"),
    }
}
