//! Following the driver claims in the claims bucket: every claim held at start,
//! then every claim and release as it happens, whichever instance made it — and
//! every claim the server expires (its TTL, `--claim-ttl`), which is a release.

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use async_nats::{
    header::NATS_MARKER_REASON,
    jetstream::{
        self, Message,
        consumer::{DeliverPolicy, pull::OrderedConfig},
    },
};
use hail_events::DriverId;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    claims::{Claims, DRIVER_PREFIX},
    index::DriverIndex,
    lock,
};

/// Applies every held claim to `index` and returns how many there were; then keeps
/// applying claims and releases in a task tracked by `tracker` until `shutdown`.
pub async fn follow(
    js: &jetstream::Context,
    claims: &Claims,
    index: Arc<Mutex<DriverIndex>>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<u64> {
    let prefix = claims.subject(DRIVER_PREFIX);
    let stream = js
        .get_stream(claims.stream_name())
        .await
        .with_context(|| format!("cannot open the stream {}", claims.stream_name()))?;
    let config = OrderedConfig {
        filter_subject: format!("{prefix}>"),
        deliver_policy: DeliverPolicy::LastPerSubject,
        ..Default::default()
    };
    let consumer = hail_runtime::ordered_feed::create(&stream, config)
        .await
        .context("cannot follow the driver claims")?;
    hail_runtime::ordered_feed::load_then_follow(
        consumer,
        "the driver claims",
        tracker,
        shutdown,
        move |msg| apply(msg, &prefix, &index),
        || tracing::error!("driver claims feed ended; other instances' claims are no longer seen"),
    )
    .await
}

/// Applies one claim or release; returns whether the driver is held.
fn apply(msg: &Message, prefix: &str, index: &Mutex<DriverIndex>) -> bool {
    let Some(change) = parse(msg, prefix) else {
        tracing::warn!(subject = %msg.subject, "skipping an unreadable driver claim");
        return false;
    };
    lock(index).apply_claim(&change.driver, change.held, change.revision);
    change.held
}

struct Change {
    driver: DriverId,
    held: bool,
    revision: u64,
}

fn parse(msg: &Message, prefix: &str) -> Option<Change> {
    let driver = msg.subject.as_str().strip_prefix(prefix)?;
    let driver = DriverId::new(driver).ok()?;
    let revision = msg.info().ok()?.stream_sequence;
    let headers = msg.headers.as_ref();
    let operation = headers
        .and_then(|h| h.get("KV-Operation"))
        .map(|v| v.as_str());
    // The marker the server leaves when a claim's TTL expires has no operation,
    // only a reason: it is a release.
    let expired = headers.is_some_and(|h| h.get(NATS_MARKER_REASON).is_some());
    let held = !expired && matches!(operation, None | Some("PUT"));
    Some(Change {
        driver,
        held,
        revision,
    })
}
